package gpu

import "errors"

// Sentinel errors. Callers test them with errors.Is; messages wrapping them are meant for
// users (the engine shows ErrUnsatisfiable's message as a pending task's reason).
var (
	// ErrUnsatisfiable means a request can never be granted on this box as it is: it asks for
	// more matching GPUs than exist, for an accelerator the box lacks, or the box has no GPUs.
	ErrUnsatisfiable = errors.New("gpu request cannot be satisfied")
	// ErrInvalid means a request or an accelerator field is malformed.
	ErrInvalid = errors.New("invalid gpu request")
	// ErrNotFound means a GPU UUID is unknown to this box.
	ErrNotFound = errors.New("gpu not found")
	// ErrInUse means a GPU is already held by another owner.
	ErrInUse = errors.New("gpu in use")
	// ErrUnavailable means GPUs cannot be injected into a task (a device node or driver file
	// is missing) or NVML cannot be used.
	ErrUnavailable = errors.New("gpu unavailable")
	// ErrReleased means a lease was used after it was released.
	ErrReleased = errors.New("gpu lease released")
)
