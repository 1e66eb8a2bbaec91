package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kfp-box/kfp-box/storage/kv"
)

const (
	runPrefix       = "/runs/"
	runSpecPrefix   = "/runspecs/"
	executionPrefix = "/executions/"
)

func runKey(id string) string     { return runPrefix + id }
func runSpecKey(id string) string { return runSpecPrefix + id }

// IsTerminalRunState reports whether a run in state s will not change on its own.
func IsTerminalRunState(s string) bool {
	switch s {
	case RunSucceeded, RunFailed, RunSkipped, RunCanceled:
		return true
	}
	return false
}

// CreateRun stores a new run and the IR it executes in one transaction. When the run has an
// experiment, the experiment must exist and be available, and its last_run_created_at is
// set to the run's creation time in the same transaction. A run id that exists already
// fails with ErrAlreadyExists (the scheduler relies on it to create each slot once).
func (s *Store) CreateRun(ctx context.Context, r *Run, spec json.RawMessage) error {
	if r.ID == "" {
		return fmt.Errorf("run without id: %w", ErrInvalid)
	}
	if err := CheckName("run display_name", r.DisplayName); err != nil {
		return err
	}
	// Update, not Batch: bbolt's Batch waits up to its batch delay (10 ms) for company, which
	// a lone POST /runs would pay every time.
	return s.write(ctx, false, func(tx kv.Tx, w *writeSet) error {
		if _, err := tx.Get([]byte(runKey(r.ID))); err == nil {
			return fmt.Errorf("run %q: %w", r.ID, ErrAlreadyExists)
		}
		if r.ExperimentID != "" {
			if err := touchExperiment(tx, w, s.idx.experiments, r.ExperimentID, r.CreatedAt); err != nil {
				return err
			}
		}
		if err := putJSON(tx, runSpecKey(r.ID), RunSpec{RunID: r.ID, Spec: spec}); err != nil {
			return err
		}
		return s.putRun(tx, w, r)
	})
}

// putRun writes a run and queues its index row.
func (s *Store) putRun(tx kv.Tx, w *writeSet, r *Run) error {
	if err := putJSON(tx, runKey(r.ID), r); err != nil {
		return err
	}
	w.put(s.idx.runs, runRow(r))
	return nil
}

// GetRun returns a run.
func (s *Store) GetRun(ctx context.Context, id string) (*Run, error) {
	var r Run
	err := s.kv.View(ctx, func(tx kv.Tx) error { return getJSON(tx, runKey(id), &r) })
	if err != nil {
		return nil, fmt.Errorf("run %q: %w", id, err)
	}
	return &r, nil
}

// UpdateRun applies fn to the stored run in one transaction and returns the result. If fn
// returns an error nothing is written.
func (s *Store) UpdateRun(ctx context.Context, id string, fn func(*Run) error) (*Run, error) {
	return s.updateRun(ctx, false, id, fn)
}

// UpdateRunBatch is UpdateRun for hot paths with many concurrent writers: concurrent calls may
// share one commit (and one fsync), at the price of bbolt's batch delay (up to 10 ms) for a
// lone caller. fn may be called more than once, each time on a freshly read run, so it must
// only change the run it is given (no side effects outside it).
func (s *Store) UpdateRunBatch(ctx context.Context, id string, fn func(*Run) error) (*Run, error) {
	return s.updateRun(ctx, true, id, fn)
}

func (s *Store) updateRun(ctx context.Context, batch bool, id string, fn func(*Run) error) (*Run, error) {
	var r Run
	err := s.write(ctx, batch, func(tx kv.Tx, w *writeSet) error {
		r = Run{}
		if err := getJSON(tx, runKey(id), &r); err != nil {
			return fmt.Errorf("run %q: %w", id, err)
		}
		if err := fn(&r); err != nil {
			return err
		}
		return s.putRun(tx, w, &r)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// GetRunSpec returns the IR a run executes.
func (s *Store) GetRunSpec(ctx context.Context, runID string) (json.RawMessage, error) {
	var rs RunSpec
	err := s.kv.View(ctx, func(tx kv.Tx) error { return getJSON(tx, runSpecKey(runID), &rs) })
	if err != nil {
		return nil, fmt.Errorf("run spec %q: %w", runID, err)
	}
	return rs.Spec, nil
}

// ActiveRunIDs lists the runs that are not in a terminal state, for the engine to resume.
func (s *Store) ActiveRunIDs(ctx context.Context) ([]string, error) {
	var ids []string
	s.idx.runs.each(func(r *row) bool {
		if !IsTerminalRunState(s.idx.runs.str(r, "state")) {
			ids = append(ids, r.id)
		}
		return true
	})
	return ids, ctx.Err()
}

// ListRuns lists runs, optionally of one experiment.
func (s *Store) ListRuns(ctx context.Context, experimentID string, opts ListOptions) (*Page[Run], error) {
	var scope map[string]string
	if experimentID != "" {
		scope = map[string]string{"experiment_id": experimentID}
	}
	return listPage[Run](ctx, s, s.idx.runs, opts, scope, runKey)
}

// DeleteRun removes a run, its frozen spec and its executions.
func (s *Store) DeleteRun(ctx context.Context, id string) error {
	return s.write(ctx, false, func(tx kv.Tx, w *writeSet) error { return s.deleteRunTx(tx, w, id) })
}

func (s *Store) deleteRunTx(tx kv.Tx, w *writeSet, id string) error {
	if _, err := tx.Get([]byte(runKey(id))); err != nil {
		return fmt.Errorf("run %q: %w", id, ErrNotFound)
	}
	var execKeys [][]byte
	err := tx.Scan([]byte(executionPrefix+id+"/"), nil, false, func(k, _ []byte, _ int64) error {
		execKeys = append(execKeys, append([]byte(nil), k...))
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range append(execKeys, []byte(runSpecKey(id)), []byte(runKey(id))) {
		if err := tx.Delete(k); err != nil {
			return err
		}
	}
	w.del(s.idx.runs, id)
	return nil
}

// ArchiveRun sets a run's storage state to ARCHIVED.
func (s *Store) ArchiveRun(ctx context.Context, id string) (*Run, error) {
	return s.UpdateRun(ctx, id, func(r *Run) error {
		r.StorageState = StorageArchived
		return nil
	})
}

// UnarchiveRun makes a run available again; it fails with ErrFailedPrecondition when the
// run's experiment is archived.
func (s *Store) UnarchiveRun(ctx context.Context, id string) (*Run, error) {
	return s.UpdateRun(ctx, id, func(r *Run) error {
		if r.ExperimentID != "" {
			e, err := s.GetExperiment(ctx, r.ExperimentID)
			if err == nil && e.StorageState == StorageArchived {
				return fmt.Errorf("run %q belongs to archived experiment %q; unarchive the experiment first: %w", id, r.ExperimentID, ErrFailedPrecondition)
			}
		}
		r.StorageState = StorageAvailable
		return nil
	})
}

// SetRunState records a state change with its history entry; a helper for the API and tests
// (the engine may use its own UpdateRun calls).
func SetRunState(r *Run, state string, at time.Time, errStatus *Status) {
	r.State = state
	r.StateHistory = append(r.StateHistory, StateEvent{UpdateTime: at, State: state, Error: errStatus})
	if IsTerminalRunState(state) && r.FinishedAt.IsZero() {
		r.FinishedAt = at
	}
	if errStatus != nil {
		r.Error = errStatus
	}
}
