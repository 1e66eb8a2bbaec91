package meta

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/kfp-box/kfp-box/storage/kv"
)

func runKey(id string) string     { return "/runs/" + id }
func runSpecKey(id string) string { return "/runspecs/" + id }

// IsTerminalRunState reports whether a run in state s will not change on its own.
func IsTerminalRunState(s string) bool {
	switch s {
	case RunSucceeded, RunFailed, RunSkipped, RunCanceled:
		return true
	}
	return false
}

// CreateRun stores a new run and the IR it executes in one transaction.
func (s *Store) CreateRun(ctx context.Context, r *Run, spec json.RawMessage) error {
	if r.ID == "" {
		return fmt.Errorf("run without id: %w", ErrInvalid)
	}
	return s.kv.Update(ctx, func(tx kv.Tx) error {
		if _, err := tx.Get([]byte(runKey(r.ID))); err == nil {
			return fmt.Errorf("run %q: %w", r.ID, ErrAlreadyExists)
		}
		if err := putJSON(tx, runSpecKey(r.ID), RunSpec{RunID: r.ID, Spec: spec}); err != nil {
			return err
		}
		return s.putRun(tx, r)
	})
}

// putRun writes a run and keeps the in-memory index current.
func (s *Store) putRun(tx kv.Tx, r *Run) error {
	if err := putJSON(tx, runKey(r.ID), r); err != nil {
		return err
	}
	s.indexRun(tx, r)
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
	var r Run
	err := s.kv.Update(ctx, func(tx kv.Tx) error {
		r = Run{}
		if err := getJSON(tx, runKey(id), &r); err != nil {
			return fmt.Errorf("run %q: %w", id, err)
		}
		if err := fn(&r); err != nil {
			return err
		}
		return s.putRun(tx, &r)
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
	err := s.kv.View(ctx, func(tx kv.Tx) error {
		return scanJSON(tx, "/runs/", func(r *Run) error {
			if !IsTerminalRunState(r.State) {
				ids = append(ids, r.ID)
			}
			return nil
		})
	})
	return ids, err
}
