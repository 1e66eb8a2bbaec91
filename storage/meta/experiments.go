package meta

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/kfp-box/kfp-box/storage/kv"
)

const (
	experimentPrefix = "/experiments/"
	// DefaultExperimentName is the name of the experiment that always exists.
	DefaultExperimentName = "Default"
)

var keyDefaultExperiment = []byte("/meta/default_experiment")

func experimentKey(id string) string { return experimentPrefix + id }

// nameKey is the uniqueness index entry of a name within a scope (a namespace, or a
// pipeline for versions).
func nameKey(kind, scope, name string) string { return "/names/" + kind + "/" + scope + "/" + name }

// MaxNameBytes bounds every name and display name the store keeps: names become index
// keys, and a key must stay far below the kv backends' limits.
const MaxNameBytes = 1024

// CheckName refuses a name that is too long, holds a NUL, or is not UTF-8, before it
// reaches the store.
func CheckName(field, name string) error {
	if len(name) > MaxNameBytes {
		return fmt.Errorf("%s is %d bytes long; at most %d: %w", field, len(name), MaxNameBytes, ErrInvalid)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%s is not valid UTF-8: %w", field, ErrInvalid)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%s holds a NUL character: %w", field, ErrInvalid)
	}
	return nil
}

// claimName records id as the owner of name, failing if another record holds it.
func claimName(tx kv.Tx, kind, scope, name, id string) error {
	if err := CheckName(kind+" name", name); err != nil {
		return err
	}
	if err := CheckName(kind+" scope", scope); err != nil {
		return err
	}
	k := []byte(nameKey(kind, scope, name))
	if v, err := tx.Get(k); err == nil && string(v) != id {
		return fmt.Errorf("%s name %q: %w", kind, name, ErrAlreadyExists)
	}
	return tx.Put(k, []byte(id))
}

// addDefaultExperiment is migration 1: the Default experiment every KFP has.
func addDefaultExperiment(tx kv.Tx) error {
	if _, err := tx.Get(keyDefaultExperiment); err == nil {
		return nil
	}
	e := &Experiment{
		ID:           uuid.NewString(),
		DisplayName:  DefaultExperimentName,
		Description:  "All runs created without specifying an experiment will be grouped here.",
		StorageState: StorageAvailable,
		CreatedAt:    time.Now().UTC(),
	}
	if err := claimName(tx, "experiments", e.Namespace, e.DisplayName, e.ID); err != nil {
		return err
	}
	if err := putJSON(tx, experimentKey(e.ID), e); err != nil {
		return err
	}
	return tx.Put(keyDefaultExperiment, []byte(e.ID))
}

// DefaultExperimentID returns the id of the Default experiment.
func (s *Store) DefaultExperimentID(ctx context.Context) (string, error) {
	var id string
	err := s.kv.View(ctx, func(tx kv.Tx) error {
		v, err := tx.Get(keyDefaultExperiment)
		if err != nil {
			return fmt.Errorf("default experiment: %w", ErrNotFound)
		}
		id = string(v)
		return nil
	})
	return id, err
}

// CreateExperiment stores a new experiment; its display name must be unique in its namespace.
func (s *Store) CreateExperiment(ctx context.Context, e *Experiment) error {
	if e.ID == "" || e.DisplayName == "" {
		return fmt.Errorf("experiment needs an id and a display name: %w", ErrInvalid)
	}
	if e.StorageState == "" {
		e.StorageState = StorageAvailable
	}
	return s.write(ctx, false, func(tx kv.Tx, w *writeSet) error {
		if _, err := tx.Get([]byte(experimentKey(e.ID))); err == nil {
			return fmt.Errorf("experiment %q: %w", e.ID, ErrAlreadyExists)
		}
		if err := claimName(tx, "experiments", e.Namespace, e.DisplayName, e.ID); err != nil {
			return err
		}
		if err := putJSON(tx, experimentKey(e.ID), e); err != nil {
			return err
		}
		w.put(s.idx.experiments, experimentRow(e))
		return nil
	})
}

// GetExperiment returns an experiment.
func (s *Store) GetExperiment(ctx context.Context, id string) (*Experiment, error) {
	var e Experiment
	err := s.kv.View(ctx, func(tx kv.Tx) error { return getJSON(tx, experimentKey(id), &e) })
	if err != nil {
		return nil, fmt.Errorf("experiment %q: %w", id, err)
	}
	return &e, nil
}

// ListExperiments lists experiments.
func (s *Store) ListExperiments(ctx context.Context, opts ListOptions) (*Page[Experiment], error) {
	return listPage[Experiment](ctx, s, s.idx.experiments, opts, nil, experimentKey)
}

// DeleteExperiment removes an experiment. As in KFP, its runs stay (still readable, listed
// with their experiment_id); its recurring runs are disabled so that they create no runs into
// a missing experiment. The Default experiment cannot be deleted.
func (s *Store) DeleteExperiment(ctx context.Context, id string) error {
	def, _ := s.DefaultExperimentID(ctx)
	if id == def {
		return fmt.Errorf("experiment %q is the Default experiment and cannot be deleted: %w", id, ErrFailedPrecondition)
	}
	recIDs := s.idsWhere(s.idx.recurring, "experiment_id", id)
	now := time.Now().UTC()
	return s.write(ctx, false, func(tx kv.Tx, w *writeSet) error {
		var e Experiment
		if err := getJSON(tx, experimentKey(id), &e); err != nil {
			return fmt.Errorf("experiment %q: %w", id, err)
		}
		if err := disableRecurringTx(tx, w, s.idx.recurring, recIDs, now); err != nil {
			return err
		}
		if err := tx.Delete([]byte(nameKey("experiments", e.Namespace, e.DisplayName))); err != nil {
			return err
		}
		if err := tx.Delete([]byte(experimentKey(id))); err != nil {
			return err
		}
		w.del(s.idx.experiments, id)
		return nil
	})
}

// disableRecurringTx disables the given recurring runs inside a transaction.
func disableRecurringTx(tx kv.Tx, w *writeSet, ix *index, ids []string, now time.Time) error {
	for _, rid := range ids {
		var rr RecurringRun
		if err := getJSON(tx, recurringKey(rid), &rr); err != nil {
			continue
		}
		if !rr.Enabled {
			continue
		}
		rr.Enabled, rr.UpdatedAt = false, now
		if err := putJSON(tx, recurringKey(rid), &rr); err != nil {
			return err
		}
		w.put(ix, recurringRow(&rr))
	}
	return nil
}

// ArchiveExperiment archives an experiment and its runs and disables its recurring runs.
func (s *Store) ArchiveExperiment(ctx context.Context, id string) error {
	runIDs := s.idsWhere(s.idx.runs, "experiment_id", id)
	recIDs := s.idsWhere(s.idx.recurring, "experiment_id", id)
	now := time.Now().UTC()
	return s.write(ctx, false, func(tx kv.Tx, w *writeSet) error {
		var e Experiment
		if err := getJSON(tx, experimentKey(id), &e); err != nil {
			return fmt.Errorf("experiment %q: %w", id, err)
		}
		e.StorageState = StorageArchived
		if err := putJSON(tx, experimentKey(id), &e); err != nil {
			return err
		}
		w.put(s.idx.experiments, experimentRow(&e))
		for _, rid := range runIDs {
			var r Run
			if err := getJSON(tx, runKey(rid), &r); err != nil {
				continue
			}
			if r.StorageState == StorageArchived {
				continue
			}
			r.StorageState = StorageArchived
			if err := putJSON(tx, runKey(rid), &r); err != nil {
				return err
			}
			w.put(s.idx.runs, runRow(&r))
		}
		return disableRecurringTx(tx, w, s.idx.recurring, recIDs, now)
	})
}

// UnarchiveExperiment makes an experiment available again; its runs stay archived, as in KFP.
func (s *Store) UnarchiveExperiment(ctx context.Context, id string) error {
	return s.write(ctx, false, func(tx kv.Tx, w *writeSet) error {
		var e Experiment
		if err := getJSON(tx, experimentKey(id), &e); err != nil {
			return fmt.Errorf("experiment %q: %w", id, err)
		}
		e.StorageState = StorageAvailable
		if err := putJSON(tx, experimentKey(id), &e); err != nil {
			return err
		}
		w.put(s.idx.experiments, experimentRow(&e))
		return nil
	})
}

// touchExperiment sets last_run_created_at inside a run's creating transaction.
func touchExperiment(tx kv.Tx, w *writeSet, ix *index, id string, at time.Time) error {
	var e Experiment
	if err := getJSON(tx, experimentKey(id), &e); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("experiment %q: %w", id, ErrNotFound)
		}
		return err
	}
	if e.StorageState == StorageArchived {
		return fmt.Errorf("experiment %q is archived: %w", id, ErrFailedPrecondition)
	}
	if !at.After(e.LastRunCreatedAt) {
		return nil
	}
	e.LastRunCreatedAt = at
	if err := putJSON(tx, experimentKey(id), &e); err != nil {
		return err
	}
	w.put(ix, experimentRow(&e))
	return nil
}

// idsWhere lists the ids of ix's rows whose string field equals v.
func (s *Store) idsWhere(ix *index, field, v string) []string {
	var ids []string
	ix.each(func(r *row) bool {
		if ix.str(r, field) == v {
			ids = append(ids, r.id)
		}
		return true
	})
	return ids
}
