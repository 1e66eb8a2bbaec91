package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// ErrNotRunning is returned by DeletePod for an attempt that is not running (it has not
// started yet, or it is over).
var ErrNotRunning = errors.New("task attempt is not running")

// DeletePod ends a running task attempt as Kubernetes ends a deleted pod: SIGTERM, then
// SIGKILL after the kill grace period. The attempt fails whatever its exit code, and the
// task's retry policy applies, as when a pod of a KFP run is deleted.
func (e *Engine) DeletePod(ctx context.Context, runID, execID string, attempt int) error {
	x, err := e.cfg.Meta.GetExecution(ctx, runID, execID)
	if err != nil {
		return err
	}
	if x.Kind != meta.KindContainer || x.Attempt != attempt || (x.State != meta.ExecQueued && x.State != meta.ExecRunning) {
		return fmt.Errorf("task %q attempt %d is %s: %w", x.TaskName, attempt, x.State, ErrNotRunning)
	}
	id := runtimeID(runID, execID, attempt)
	t, err := e.cfg.Runtime.Lookup(ctx, id)
	if errors.Is(err, runtime.ErrNotFound) {
		return fmt.Errorf("task %q attempt %d has not started yet: %w", x.TaskName, attempt, ErrNotRunning)
	}
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.deletedPods[id] = true
	e.mu.Unlock()
	if err := t.Kill(ctx, e.cfg.KillGrace); err != nil {
		e.mu.Lock()
		delete(e.deletedPods, id)
		e.mu.Unlock()
		return err
	}
	return nil
}

// podDeleted says, once, whether the attempt with runtime id id was killed by DeletePod.
func (e *Engine) podDeleted(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.deletedPods[id] {
		return false
	}
	delete(e.deletedPods, id)
	return true
}
