package schedule

import (
	"context"
	"encoding/json"
	"time"

	"github.com/kfp-box/kfp-box/storage/meta"
)

// RunRequest is everything needed to create a run, whether it comes from POST /runs or from a
// schedule. Exactly one source is used: Spec (the stored form of an inline spec), or
// PipelineVersionID (with or without PipelineID), or PipelineID alone (its latest version).
type RunRequest struct {
	// RunID is used when set (the scheduler derives one per slot so that a slot is created
	// once even across crashes); otherwise a new UUID.
	RunID          string
	DisplayName    string
	Description    string
	ExperimentID   string
	RecurringRunID string

	PipelineID        string
	PipelineVersionID string
	Spec              json.RawMessage

	RuntimeConfig  meta.RuntimeConfig
	ServiceAccount string
	// ScheduledAt is the schedule slot (zero: the creation time).
	ScheduledAt time.Time
}

// Creator creates runs through the same path as POST /runs: parse, validate, resolve
// parameters, store as PENDING, submit to the engine.
type Creator interface {
	// CreateRun creates a run; errors wrap meta's or spec's sentinels
	// (meta.ErrAlreadyExists when RunID exists).
	CreateRun(ctx context.Context, req RunRequest) (*meta.Run, error)
}

// CreatorFunc adapts a function to Creator.
type CreatorFunc func(ctx context.Context, req RunRequest) (*meta.Run, error)

// CreateRun implements Creator.
func (f CreatorFunc) CreateRun(ctx context.Context, req RunRequest) (*meta.Run, error) {
	return f(ctx, req)
}
