package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/kfp-box/kfp-box/storage/kv"
)

// ExecOmitted marks a task that will never run because an upstream task failed or was
// skipped, or because its DAG failed fast (Argo's "Omitted"). It is terminal.
const ExecOmitted = "OMITTED"

// IsTerminalExecState reports whether an execution in state s is final.
func IsTerminalExecState(s string) bool {
	switch s {
	case ExecSucceeded, ExecFailed, ExecSkipped, ExecCached, ExecCanceled, ExecOmitted:
		return true
	}
	return false
}

func executionKey(runID, id string) string { return "/executions/" + runID + "/" + id }

func idCounterKey(kind string) string { return "/counters/" + kind }

// ReserveIDs reserves n consecutive numeric ids of a kind ("execution", "artifact") and
// returns the first. Ids are never handed out twice, also across restarts; unused ids of a
// reserved block are simply skipped.
func (s *Store) ReserveIDs(ctx context.Context, kind string, n int64) (int64, error) {
	if n <= 0 {
		return 0, fmt.Errorf("reserve %d ids: %w", n, ErrInvalid)
	}
	var first int64
	err := s.update(ctx, func(tx kv.Tx) error {
		var cur int64
		b, err := tx.Get([]byte(idCounterKey(kind)))
		switch {
		case err == nil:
			cur, err = strconv.ParseInt(string(b), 10, 64)
			if err != nil {
				return fmt.Errorf("id counter %q: %w", kind, ErrInvalid)
			}
		case !errors.Is(err, kv.ErrNotFound):
			return err
		}
		first = cur + 1
		return tx.Put([]byte(idCounterKey(kind)), []byte(strconv.FormatInt(cur+n, 10)))
	})
	return first, err
}

// Writes is a group of execution, artifact and cache writes committed together. The
// engine persists every state change of a run step this way before acting on it.
type Writes struct {
	Executions []*Execution
	// DeleteExecutions are (run id, execution id) pairs to remove.
	DeleteExecutions [][2]string
	Artifacts        []*Artifact
	CacheEntries     []*CacheEntry
}

// Empty reports whether w holds nothing.
func (w *Writes) Empty() bool {
	return len(w.Executions) == 0 && len(w.DeleteExecutions) == 0 && len(w.Artifacts) == 0 && len(w.CacheEntries) == 0
}

// Commit writes w durably in one transaction. It fails with ErrNotFound, writing nothing,
// when an execution's run does not exist (any more). It uses kv Update rather than Batch: the
// engine already groups a run step's writes, and Batch's coalescing delay would be added to
// every step of a sequential pipeline.
func (s *Store) Commit(ctx context.Context, w *Writes) error {
	if w.Empty() {
		return nil
	}
	type kvp struct{ k, v []byte }
	puts := make([]kvp, 0, len(w.Executions)+len(w.Artifacts)+len(w.CacheEntries)*2)
	for _, e := range w.Executions {
		if e.ID == "" || e.RunID == "" {
			return fmt.Errorf("execution without id or run: %w", ErrInvalid)
		}
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		puts = append(puts, kvp{[]byte(executionKey(e.RunID, e.ID)), b})
	}
	for _, a := range w.Artifacts {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		puts = append(puts, kvp{[]byte(artifactKey(a.ID)), b})
		if a.Scope != "" {
			puts = append(puts, kvp{[]byte(artifactURIKey(a.Scope, a.URI)), []byte(a.ID)})
		}
	}
	for _, c := range w.CacheEntries {
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		puts = append(puts, kvp{[]byte(cacheKey(c.Scope, c.Fingerprint, c.ExecutionID)), b})
	}
	runs := map[string]bool{}
	for _, e := range w.Executions {
		runs[e.RunID] = true
	}
	return s.update(ctx, func(tx kv.Tx) error {
		// Executions of a deleted run are not written back.
		for id := range runs {
			if _, err := tx.Get([]byte(runKey(id))); err != nil {
				return fmt.Errorf("run %q: %w", id, ErrNotFound)
			}
		}
		for _, p := range puts {
			if err := tx.Put(p.k, p.v); err != nil {
				return err
			}
		}
		for _, d := range w.DeleteExecutions {
			if err := tx.Delete([]byte(executionKey(d[0], d[1]))); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutExecutions stores executions (created or updated) in one durable batch.
func (s *Store) PutExecutions(ctx context.Context, execs ...*Execution) error {
	return s.Commit(ctx, &Writes{Executions: execs})
}

// GetExecution returns one execution of a run.
func (s *Store) GetExecution(ctx context.Context, runID, id string) (*Execution, error) {
	var e Execution
	err := s.kv.View(ctx, func(tx kv.Tx) error { return getJSON(tx, executionKey(runID, id), &e) })
	if err != nil {
		return nil, fmt.Errorf("execution %q of run %q: %w", id, runID, err)
	}
	return &e, nil
}

// ListExecutions returns every execution of a run ordered by numeric id (creation order).
func (s *Store) ListExecutions(ctx context.Context, runID string) ([]*Execution, error) {
	var out []*Execution
	err := s.kv.View(ctx, func(tx kv.Tx) error {
		return scanJSON(tx, "/executions/"+runID+"/", func(e *Execution) error {
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("executions of run %q: %w", runID, err)
	}
	SortExecutions(out)
	return out, nil
}

// SortExecutions orders executions by numeric id, then by id text.
func SortExecutions(es []*Execution) {
	sort.Slice(es, func(i, j int) bool {
		a, errA := strconv.ParseInt(es[i].ID, 10, 64)
		b, errB := strconv.ParseInt(es[j].ID, 10, 64)
		if errA == nil && errB == nil && a != b {
			return a < b
		}
		return es[i].ID < es[j].ID
	})
}

// DeleteExecutions removes every execution of a run (used when a run is deleted).
func (s *Store) DeleteExecutions(ctx context.Context, runID string) error {
	return s.update(ctx, func(tx kv.Tx) error {
		var keys [][]byte
		err := tx.Scan([]byte("/executions/"+runID+"/"), nil, false, func(k, _ []byte, _ int64) error {
			keys = append(keys, append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}
