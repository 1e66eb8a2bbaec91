// Package runtime defines how kfp-box runs one task: the Runtime interface, the TaskSpec a
// backend receives, and a tiny registry of backends. It knows nothing about KFP, runs or the
// metadata store; the engine translates a KFP task into a TaskSpec.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kfp-box/kfp-box/internal/registry"
)

// Sentinel errors. Backends wrap them with %w and a quoted id.
var (
	// ErrNotFound means no task with that id exists in the backend.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means a task with that id already exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalid means the TaskSpec cannot be run as given.
	ErrInvalid = errors.New("invalid task spec")
	// ErrImageNotFound means the task's image is not present and cannot be pulled.
	ErrImageNotFound = errors.New("image not present")
	// ErrUnavailable means the backend cannot run tasks on this machine.
	ErrUnavailable = errors.New("runtime unavailable")
)

// Mount is a bind mount of a host path into the task.
type Mount struct {
	// Source is an absolute host path (file or directory).
	Source string `json:"source"`
	// Target is the absolute path inside the task.
	Target string `json:"target"`
	// ReadOnly mounts the source read-only.
	ReadOnly bool `json:"read_only,omitempty"`
}

// Resources are the limits and requests of one task. Zero means unset.
type Resources struct {
	// CPULimit is in cores (for example 0.5).
	CPULimit float64 `json:"cpu_limit,omitempty"`
	// CPURequest is in cores; used as the CPU shares weight.
	CPURequest float64 `json:"cpu_request,omitempty"`
	// MemoryLimit is in bytes.
	MemoryLimit int64 `json:"memory_limit,omitempty"`
	// MemoryRequest is in bytes.
	MemoryRequest int64 `json:"memory_request,omitempty"`
	// ShmSize is the size of /dev/shm in bytes (0 = backend default).
	ShmSize int64 `json:"shm_size,omitempty"`
}

// Device is a host device node handed to the task (for example /dev/nvidia0).
type Device struct {
	// Path is the device node on the host.
	Path string `json:"path"`
	// ContainerPath is the path inside the task; empty means the same as Path.
	ContainerPath string `json:"container_path,omitempty"`
	// Permissions is the cgroup access string, "rwm" when empty.
	Permissions string `json:"permissions,omitempty"`
}

// GPUs describes the GPUs a task holds and how to inject them. It is filled by the gpu
// package; backends apply what they can (the host backend applies only Env).
type GPUs struct {
	// UUIDs of the allocated GPUs.
	UUIDs []string `json:"uuids,omitempty"`
	// CDIDevices are fully qualified CDI names (nvidia.com/gpu=UUID), used when a CDI spec exists.
	CDIDevices []string `json:"cdi_devices,omitempty"`
	// Devices are device nodes to create in the task when CDI is not used.
	Devices []Device `json:"devices,omitempty"`
	// Mounts are driver libraries and binaries, bind-mounted read-only.
	Mounts []Mount `json:"mounts,omitempty"`
	// Env is added to the task's environment (NVIDIA_VISIBLE_DEVICES, CUDA_VISIBLE_DEVICES).
	Env map[string]string `json:"env,omitempty"`
}

// PullPolicy follows Kubernetes: Always, IfNotPresent (default) or Never.
type PullPolicy string

// Pull policies.
const (
	PullIfNotPresent PullPolicy = "IfNotPresent"
	PullAlways       PullPolicy = "Always"
	PullNever        PullPolicy = "Never"
)

// TaskSpec is everything a backend needs to run one task.
type TaskSpec struct {
	// ID is unique per attempt, chosen by the caller, safe as a container id
	// ([a-zA-Z0-9][a-zA-Z0-9_.-]*), at most 76 characters.
	ID string `json:"id"`
	// Image is the OCI image reference. The host backend ignores it.
	Image string `json:"image,omitempty"`
	// PullPolicy for Image.
	PullPolicy PullPolicy `json:"pull_policy,omitempty"`
	// Args is the full argv (command followed by args).
	Args []string `json:"args"`
	// Env is KEY=VALUE pairs in order.
	Env []string `json:"env,omitempty"`
	// WorkDir is the working directory inside the task ("" = image default or /).
	WorkDir string `json:"work_dir,omitempty"`
	// Mounts are bind mounts.
	Mounts []Mount `json:"mounts,omitempty"`
	// Resources are CPU and memory limits.
	Resources Resources `json:"resources,omitempty"`
	// GPUs to inject, if any.
	GPUs *GPUs `json:"gpus,omitempty"`
	// User and Group to run as (nil = image default / current user).
	User  *int64 `json:"user,omitempty"`
	Group *int64 `json:"group,omitempty"`
	// Hide are absolute host paths the task must not see (kfp-box's data directory): a
	// backend that shows the task the host's filesystem covers each with an empty read-only
	// file system in the task's view, after the mounts are made, so mount sources inside
	// them stay reachable at their targets. A mount target or WorkDir inside a hidden path
	// is invalid. Backends whose tasks see only an image and their mounts (containerd) have
	// nothing to hide; the host backend without root cannot make a mount namespace and runs
	// the task as kfp-box's own user, which can read those paths anyway.
	Hide []string `json:"hide,omitempty"`
	// LogPath is the host file that receives stdout and stderr, one timestamped line each
	// ("2006-01-02T15:04:05.000000000Z07:00 stdout|stderr text").
	LogPath string `json:"log_path"`
	// Labels are stored with the task and returned by List (run id, task key...).
	Labels map[string]string `json:"labels,omitempty"`
}

// ExitStatus is how a task ended.
type ExitStatus struct {
	// Code is the process exit code; 137 for SIGKILL, 143 for SIGTERM.
	Code int `json:"code"`
	// OOMKilled is true when the kernel killed the task for memory.
	OOMKilled bool `json:"oom_killed,omitempty"`
	// StartedAt and ExitedAt are wall-clock times as seen by the backend.
	StartedAt time.Time `json:"started_at"`
	ExitedAt  time.Time `json:"exited_at"`
	// Message adds detail for non-zero exits (for example "image not present").
	Message string `json:"message,omitempty"`
}

// Runtime starts tasks and finds them again after a restart of kfp-box.
type Runtime interface {
	// Name is the backend's registered id ("host", "containerd").
	Name() string
	// Start creates and starts the task. It returns once the process runs.
	Start(ctx context.Context, spec TaskSpec) (Task, error)
	// Lookup finds a task started earlier, possibly by a previous kfp-box process.
	Lookup(ctx context.Context, id string) (Task, error)
	// List returns every task the backend knows, running or exited but not deleted.
	List(ctx context.Context) ([]Task, error)
	// Close releases the backend's resources; running tasks keep running.
	Close() error
}

// Task is one started task.
type Task interface {
	// ID is the TaskSpec.ID.
	ID() string
	// Labels are the TaskSpec.Labels.
	Labels() map[string]string
	// Wait blocks until the task exits or ctx ends.
	Wait(ctx context.Context) (ExitStatus, error)
	// Kill sends SIGTERM, then SIGKILL after grace. It returns once the signal is sent.
	Kill(ctx context.Context, grace time.Duration) error
	// Delete removes the task's resources; the task must have exited.
	Delete(ctx context.Context) error
}

// Image is one image a runtime keeps for its tasks.
type Image struct {
	// Name is the full reference.
	Name string `json:"name"`
	// Digest is the manifest or index digest.
	Digest string `json:"digest"`
	// Size is the compressed size of the content for this platform in bytes (-1 unknown).
	Size int64 `json:"size"`
	// CreatedAt is when the image was stored.
	CreatedAt time.Time `json:"created_at"`
}

// ImageStore is the optional ability of a runtime that keeps the images tasks run from
// (containerd), found by type assertion; the API's image routes use it.
type ImageStore interface {
	// Images lists the stored images, sorted by name.
	Images(ctx context.Context) ([]Image, error)
	// ImportImages stores the images of a docker-archive (docker save) or OCI image-layout
	// tarball read from r; name names an OCI layout image whose index names none. A
	// tarball that is not an image archive wraps ErrInvalid.
	ImportImages(ctx context.Context, r io.Reader, name string) ([]string, error)
	// RemoveImage deletes an image by short or full name; a missing one wraps
	// ErrImageNotFound.
	RemoveImage(ctx context.Context, ref string) error
	// PullImage fetches ref from its registry, calling progress (when not nil) with the
	// bytes fetched and known so far, and returns the image's full name.
	PullImage(ctx context.Context, ref string, progress func(done, total int64)) (string, error)
}

// Options are passed to a backend's factory, beside its configuration section.
type Options struct {
	// DataDir is kfp-box's data directory; backends keep their state under it.
	DataDir string
	// Logger is scoped to the backend.
	Logger *slog.Logger
}

// factory opens a backend from its section (already of the backend's type).
type factory func(ctx context.Context, opts Options, section registry.Section) (Runtime, error)

// backends are the registered runtimes.
var backends = registry.New[factory]("runtime")

// Register makes a backend available under id with its typed configuration section:
// newSection returns the section with its defaults (a pointer to a struct, see
// registry.Section), open creates the backend from one. It panics on a duplicate id; call
// it from init.
func Register[S registry.Section](id string, newSection func() S, open func(ctx context.Context, opts Options, section S) (Runtime, error)) {
	backends.Register(id, func() registry.Section { return newSection() },
		func(ctx context.Context, opts Options, section registry.Section) (Runtime, error) {
			s, ok := section.(S)
			if !ok {
				return nil, fmt.Errorf("runtime %q: configuration section is a %T, want a %T: %w", id, section, *new(S), ErrInvalid)
			}
			return open(ctx, opts, s)
		})
}

// Open creates the backend registered under id from section, which must be of the type
// the backend registered; nil opens it with its defaults. The section is validated first.
func Open(ctx context.Context, id string, opts Options, section registry.Section) (Runtime, error) {
	f, ok := backends.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("%s: %w", backends.Missing(id), ErrNotFound)
	}
	if section == nil {
		section = backends.NewSection(id)
	}
	if err := section.Validate(); err != nil {
		return nil, fmt.Errorf("runtime %q: %w: %w", id, err, ErrInvalid)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return f(ctx, opts, section)
}

// Registered lists the registered backend ids, sorted.
func Registered() []string { return backends.IDs() }

// Backends is the runtime family for the configuration: ids and their sections.
func Backends() registry.Family { return backends }
