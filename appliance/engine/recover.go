package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// adopt resolves the QUEUED and RUNNING records of a run loaded from the store, after a
// restart: a task the runtime still knows is waited for again (its exit may already be
// recorded by the runtime); a QUEUED task the runtime never saw is started again at the
// same attempt; a RUNNING task the runtime lost is a failed attempt, retried per policy.
func (e *Engine) adopt(ctx context.Context, rs *runState) error {
	w := &meta.Writes{}
	now := e.cfg.Now()
	for _, x := range rs.list() {
		if x.Kind != meta.KindContainer || (x.State != meta.ExecQueued && x.State != meta.ExecRunning) {
			continue
		}
		if _, live := rs.handles[x.ID]; live {
			continue
		}
		var t runtime.Task
		var err error
		if x.RuntimeTaskID != "" {
			t, err = e.cfg.Runtime.Lookup(ctx, x.RuntimeTaskID)
		} else {
			err = runtime.ErrNotFound
		}
		switch {
		case err == nil:
			rs.handles[x.ID] = t
			e.restoreGPUs(rs, x)
			e.restoreVolumes(ctx, rs, x)
			e.holdSlot(rs.id, x.RuntimeTaskID, false)
			e.log.Info("re-adopted task", "run", rs.id, "task", x.TaskName, "runtime_id", x.RuntimeTaskID)
			runID, execID, attempt := rs.id, x.ID, x.Attempt
			e.tasks.Add(1)
			go func() {
				defer e.tasks.Done()
				e.wait(runID, execID, attempt, t, x)
				if e.cfg.Volumes != nil {
					e.cfg.Volumes.ReleaseVolumes(x.RuntimeTaskID)
				}
			}()
		case errors.Is(err, runtime.ErrNotFound) && x.State == meta.ExecQueued:
			c := cloneExec(x)
			c.RuntimeTaskID = ""
			setExecState(c, meta.ExecPending, "", now)
			w.Executions = append(w.Executions, c)
		case errors.Is(err, runtime.ErrNotFound):
			c := e.attemptOver(rs, x, fmt.Sprintf("task %q was lost: kfp-box restarted and the runtime no longer knows task %q", x.TaskName, x.RuntimeTaskID), -1, now)
			w.Executions = append(w.Executions, c)
		default:
			return fmt.Errorf("look up task %q: %w", x.RuntimeTaskID, err)
		}
	}
	return e.commit(ctx, rs, w)
}

// restoreGPUs takes back the GPUs a re-adopted task held before the restart.
func (e *Engine) restoreGPUs(rs *runState, x *meta.Execution) {
	r, ok := e.cfg.GPUs.(GPURestorer)
	if len(x.GPUs) == 0 || !ok {
		return
	}
	l, err := r.Restore(x.RuntimeTaskID, x.GPUs)
	if err != nil {
		e.log.Warn("re-adopted task's GPUs could not be restored", "run", rs.id, "task", x.TaskName, "gpus", x.GPUs, "err", err)
		return
	}
	e.mu.Lock()
	rs.leases[x.ID] = l
	e.mu.Unlock()
}

// restoreVolumes records a re-adopted task as holding the claims it mounts again.
func (e *Engine) restoreVolumes(ctx context.Context, rs *runState, x *meta.Execution) {
	names := e.taskVolumes(rs, x)
	if len(names) == 0 || e.cfg.Volumes == nil {
		return
	}
	if err := e.cfg.Volumes.AcquireVolumes(ctx, x.RuntimeTaskID, names); err != nil {
		e.log.Warn("re-adopted task's claims could not be held again", "run", rs.id, "task", x.TaskName, "claims", names, "err", err)
	}
}
