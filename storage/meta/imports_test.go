package meta

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestImportRun(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Now().UTC()
	r := &Run{ID: "r1", DisplayName: "imported", State: RunSucceeded, CreatedAt: now, ImportedFrom: &RunOrigin{Server: "http://x", RunID: "r1", ImportedAt: now}}
	execs := []*Execution{{ID: "5", RunID: "r1", TaskName: "t", Kind: KindContainer, State: ExecSucceeded}}
	arts := []*Artifact{{ID: "9", RunID: "r1", ExecutionID: "5", Name: "a", URI: "minio://b/k"}}
	pending := *r
	pending.State = RunRunning
	if err := s.ImportRun(ctx, &pending, []byte(`{}`), nil, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a running run was imported: %v", err)
	}
	if err := s.ImportRun(ctx, r, []byte(`{"x":1}`), execs, arts); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRun(ctx, "r1")
	if err != nil || got.ImportedFrom == nil || got.ImportedFrom.Server != "http://x" {
		t.Fatalf("run %+v, %v", got, err)
	}
	xs, _ := s.ListExecutions(ctx, "r1")
	a, aerr := s.GetArtifact(ctx, "9")
	if len(xs) != 1 || aerr != nil || a.URI != "minio://b/k" {
		t.Fatalf("executions %v, artifact %v %v", xs, a, aerr)
	}
	active, _ := s.ActiveRunIDs(ctx)
	if len(active) != 0 {
		t.Fatalf("an imported run is active: %v", active)
	}
	if err := s.ImportRun(ctx, r, []byte(`{}`), nil, nil); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("second import: %v", err)
	}
}
