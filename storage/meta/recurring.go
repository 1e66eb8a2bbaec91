package meta

import (
	"context"
	"fmt"
	"time"

	"github.com/kfp-box/kfp-box/storage/kv"
)

const recurringPrefix = "/recurringruns/"

func recurringKey(id string) string { return recurringPrefix + id }

// CreateRecurringRun stores a new recurring run.
func (s *Store) CreateRecurringRun(ctx context.Context, r *RecurringRun) error {
	if r.ID == "" || r.DisplayName == "" {
		return fmt.Errorf("recurring run needs an id and a display name: %w", ErrInvalid)
	}
	if err := CheckName("recurring run display_name", r.DisplayName); err != nil {
		return err
	}
	return s.write(ctx, false, func(tx kv.Tx, w *writeSet) error {
		if _, err := tx.Get([]byte(recurringKey(r.ID))); err == nil {
			return fmt.Errorf("recurring run %q: %w", r.ID, ErrAlreadyExists)
		}
		if r.ExperimentID != "" {
			var e Experiment
			if err := getJSON(tx, experimentKey(r.ExperimentID), &e); err != nil {
				return fmt.Errorf("experiment %q: %w", r.ExperimentID, err)
			}
			if e.StorageState == StorageArchived {
				return fmt.Errorf("experiment %q is archived: %w", r.ExperimentID, ErrFailedPrecondition)
			}
		}
		if err := putJSON(tx, recurringKey(r.ID), r); err != nil {
			return err
		}
		w.put(s.idx.recurring, recurringRow(r))
		return nil
	})
}

// GetRecurringRun returns a recurring run.
func (s *Store) GetRecurringRun(ctx context.Context, id string) (*RecurringRun, error) {
	var r RecurringRun
	err := s.kv.View(ctx, func(tx kv.Tx) error { return getJSON(tx, recurringKey(id), &r) })
	if err != nil {
		return nil, fmt.Errorf("recurring run %q: %w", id, err)
	}
	return &r, nil
}

// ListRecurringRuns lists recurring runs, optionally of one experiment.
func (s *Store) ListRecurringRuns(ctx context.Context, experimentID string, opts ListOptions) (*Page[RecurringRun], error) {
	var scope map[string]string
	if experimentID != "" {
		scope = map[string]string{"experiment_id": experimentID}
	}
	return listPage[RecurringRun](ctx, s, s.idx.recurring, opts, scope, recurringKey)
}

// EnabledRecurringRuns returns every enabled recurring run, for the scheduler. It reads the
// kv store, not the index: a kv watch event may arrive before the index row is published, and
// the scheduler reacts to watch events.
func (s *Store) EnabledRecurringRuns(ctx context.Context) ([]*RecurringRun, error) {
	var out []*RecurringRun
	err := s.kv.View(ctx, func(tx kv.Tx) error {
		return scanJSON(tx, recurringPrefix, func(r *RecurringRun) error {
			if r.Enabled {
				out = append(out, r)
			}
			return nil
		})
	})
	return out, err
}

// UpdateRecurringRun applies fn to the stored recurring run in one transaction.
func (s *Store) UpdateRecurringRun(ctx context.Context, id string, fn func(*RecurringRun) error) (*RecurringRun, error) {
	var r RecurringRun
	err := s.write(ctx, false, func(tx kv.Tx, w *writeSet) error {
		r = RecurringRun{}
		if err := getJSON(tx, recurringKey(id), &r); err != nil {
			return fmt.Errorf("recurring run %q: %w", id, err)
		}
		if err := fn(&r); err != nil {
			return err
		}
		if err := putJSON(tx, recurringKey(id), &r); err != nil {
			return err
		}
		w.put(s.idx.recurring, recurringRow(&r))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// SetRecurringRunEnabled enables or disables a recurring run. Enabling one whose experiment
// is archived fails with ErrFailedPrecondition.
func (s *Store) SetRecurringRunEnabled(ctx context.Context, id string, enabled bool) (*RecurringRun, error) {
	return s.UpdateRecurringRun(ctx, id, func(r *RecurringRun) error {
		if enabled && r.ExperimentID != "" {
			e, err := s.GetExperiment(ctx, r.ExperimentID)
			if err == nil && e.StorageState == StorageArchived {
				return fmt.Errorf("experiment %q is archived: %w", r.ExperimentID, ErrFailedPrecondition)
			}
		}
		if r.Enabled != enabled {
			r.Enabled, r.UpdatedAt = enabled, time.Now().UTC()
		}
		return nil
	})
}

// DeleteRecurringRun removes a recurring run; the runs it created stay.
func (s *Store) DeleteRecurringRun(ctx context.Context, id string) error {
	return s.write(ctx, false, func(tx kv.Tx, w *writeSet) error { return s.deleteRecurringTx(tx, w, id) })
}

func (s *Store) deleteRecurringTx(tx kv.Tx, w *writeSet, id string) error {
	if _, err := tx.Get([]byte(recurringKey(id))); err != nil {
		return fmt.Errorf("recurring run %q: %w", id, ErrNotFound)
	}
	if err := tx.Delete([]byte(recurringKey(id))); err != nil {
		return err
	}
	w.del(s.idx.recurring, id)
	return nil
}

// ActiveRunsOf counts the runs of a recurring run that have not finished (max_concurrency).
func (s *Store) ActiveRunsOf(recurringRunID string) int {
	n := 0
	s.idx.runs.each(func(r *row) bool {
		if s.idx.runs.str(r, "recurring_run_id") == recurringRunID && !IsTerminalRunState(s.idx.runs.str(r, "state")) {
			n++
		}
		return true
	})
	return n
}

// RunsOf counts every run a recurring run created.
func (s *Store) RunsOf(recurringRunID string) int {
	return len(s.idsWhere(s.idx.runs, "recurring_run_id", recurringRunID))
}
