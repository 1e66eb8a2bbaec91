package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kfp-box/kfp-box/storage/kv"
)

// RunOrigin says where an imported run came from: the server and run it was exported from,
// when, and when it was imported.
type RunOrigin struct {
	Server     string    `json:"server,omitempty"`
	RunID      string    `json:"run_id,omitempty"`
	ExportedAt time.Time `json:"exported_at,omitempty"`
	ImportedAt time.Time `json:"imported_at"`
	// Version is the exporting box's version.
	Version string `json:"version,omitempty"`
}

// ImportRun stores a finished run recreated from an export (r.ImportedFrom set, a terminal
// state), its frozen IR, its executions and its artifact records in one transaction. The
// engine never sees it: it resumes only runs in non-terminal states. Imported artifacts are
// not indexed by URI (an importer task never reuses them) and no cache entries are written.
func (s *Store) ImportRun(ctx context.Context, r *Run, spec json.RawMessage, execs []*Execution, arts []*Artifact) error {
	if r.ID == "" || r.ImportedFrom == nil {
		return fmt.Errorf("imported run without id or origin: %w", ErrInvalid)
	}
	if !IsTerminalRunState(r.State) {
		return fmt.Errorf("run %q is %s; only finished runs are imported: %w", r.ID, r.State, ErrInvalid)
	}
	if err := CheckName("run display_name", r.DisplayName); err != nil {
		return err
	}
	for _, e := range execs {
		if e.ID == "" || e.RunID != r.ID {
			return fmt.Errorf("imported execution %q does not belong to run %q: %w", e.ID, r.ID, ErrInvalid)
		}
	}
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
		for _, e := range execs {
			if err := putJSON(tx, executionKey(e.RunID, e.ID), e); err != nil {
				return err
			}
		}
		for _, a := range arts {
			if err := putJSON(tx, artifactKey(a.ID), a); err != nil {
				return err
			}
		}
		return s.putRun(tx, w, r)
	})
}
