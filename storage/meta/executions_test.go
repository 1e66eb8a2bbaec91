package meta

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestReserveIDsNeverRepeats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s := openAt(t, path)
	ctx := context.Background()
	a, err := s.ReserveIDs(ctx, "execution", 10)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.ReserveIDs(ctx, "execution", 5)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.ReserveIDs(ctx, "artifact", 1)
	if err != nil {
		t.Fatal(err)
	}
	if a != 1 || b != 11 || c != 1 {
		t.Fatalf("blocks start at %d, %d and %d (artifact), want 1, 11 and 1", a, b, c)
	}
	if _, err := s.ReserveIDs(ctx, "execution", 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reserving 0 ids: %v, want ErrInvalid", err)
	}
}

func TestExecutionsCommitListDelete(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	for _, id := range []string{"r1", "r2"} {
		if err := s.CreateRun(ctx, &Run{ID: id, State: RunRunning, CreatedAt: t0}, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutExecutions(ctx, &Execution{ID: "1", RunID: "deleted"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("execution of a missing run: %v, want ErrNotFound", err)
	}
	mk := func(id, state string) *Execution {
		return &Execution{ID: id, RunID: "r1", TaskKey: "t" + id, State: state, Kind: KindContainer, CreatedAt: t0}
	}
	w := &Writes{
		Executions:   []*Execution{mk("10", ExecRunning), mk("9", ExecSucceeded), mk("2", ExecPending)},
		Artifacts:    []*Artifact{{ID: "7", RunID: "r1", URI: "minio://b/k", Scope: "p", CreatedAt: t0}},
		CacheEntries: []*CacheEntry{{Scope: "p", Fingerprint: "f", RunID: "r1", ExecutionID: "9", CreatedAt: t0}},
	}
	if err := s.Commit(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := s.PutExecutions(ctx, &Execution{ID: "1", RunID: "r2", State: ExecPending}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListExecutions(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range got {
		ids = append(ids, x.ID)
	}
	if len(ids) != 3 || ids[0] != "2" || ids[1] != "9" || ids[2] != "10" {
		t.Fatalf("executions of r1 = %v, want [2 9 10] in numeric order", ids)
	}
	if x, err := s.GetExecution(ctx, "r1", "9"); err != nil || x.State != ExecSucceeded {
		t.Fatalf("get execution: %+v %v", x, err)
	}
	if _, err := s.GetExecution(ctx, "r1", "404"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing execution: %v, want ErrNotFound", err)
	}
	if err := s.Commit(ctx, &Writes{DeleteExecutions: [][2]string{{"r1", "2"}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListExecutions(ctx, "r1"); len(got) != 2 {
		t.Fatalf("%d executions after deleting one, want 2", len(got))
	}
	if err := s.DeleteExecutions(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListExecutions(ctx, "r1"); len(got) != 0 {
		t.Fatalf("executions left after DeleteExecutions: %d", len(got))
	}
	if got, _ := s.ListExecutions(ctx, "r2"); len(got) != 1 {
		t.Fatalf("another run's executions were touched")
	}
	if err := s.Commit(ctx, &Writes{Executions: []*Execution{{ID: ""}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("execution without id: %v, want ErrInvalid", err)
	}
}

func TestArtifactsByIDAndURI(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	old := &Artifact{ID: "1", URI: "gs://b/data", Scope: "pipe", CreatedAt: t0}
	other := &Artifact{ID: "2", URI: "gs://b/data", Scope: "other", CreatedAt: t0}
	newer := &Artifact{ID: "3", URI: "gs://b/data", Scope: "pipe", CreatedAt: t0.Add(time.Hour)}
	if err := s.PutArtifacts(ctx, old, other); err != nil {
		t.Fatal(err)
	}
	if err := s.PutArtifacts(ctx, newer); err != nil {
		t.Fatal(err)
	}
	a, err := s.FindArtifactByURI(ctx, "pipe", "gs://b/data")
	if err != nil || a.ID != "3" {
		t.Fatalf("find by uri: %+v %v, want the newest of scope pipe (3)", a, err)
	}
	if _, err := s.FindArtifactByURI(ctx, "pipe", "gs://b/none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown uri: %v, want ErrNotFound", err)
	}
	list, err := s.GetArtifacts(ctx, []string{"2", "1"})
	if err != nil || list[0].Scope != "other" || list[1].ID != "1" {
		t.Fatalf("get artifacts: %+v %v", list, err)
	}
	if _, err := s.GetArtifact(ctx, "9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing artifact: %v, want ErrNotFound", err)
	}
}

func TestLookupCacheNewestWithinStaleness(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	for _, c := range []*CacheEntry{
		{Scope: "pipe", Fingerprint: "fp", ExecutionID: "1", RunID: "a", CreatedAt: t0},
		{Scope: "pipe", Fingerprint: "fp", ExecutionID: "2", RunID: "b", CreatedAt: t0.Add(2 * time.Hour)},
		{Scope: "pipe", Fingerprint: "other", ExecutionID: "3", RunID: "c", CreatedAt: t0.Add(3 * time.Hour)},
		{Scope: "pipe/2", Fingerprint: "fp", ExecutionID: "4", RunID: "d", CreatedAt: t0.Add(4 * time.Hour)},
	} {
		if err := s.PutCacheEntry(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, scope, fp string
		notBefore       time.Time
		want            string
	}{
		{"newest", "pipe", "fp", time.Time{}, "2"},
		{"fresh enough", "pipe", "fp", t0.Add(time.Hour), "2"},
		{"all stale", "pipe", "fp", t0.Add(3 * time.Hour), ""},
		{"scope is exact", "pipe/2", "fp", time.Time{}, "4"},
		{"unknown fingerprint", "pipe", "nope", time.Time{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := s.LookupCache(ctx, c.scope, c.fp, c.notBefore)
			if c.want == "" {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("got %+v %v, want ErrNotFound", e, err)
				}
				return
			}
			if err != nil || e.ExecutionID != c.want {
				t.Fatalf("got %+v %v, want execution %s", e, err, c.want)
			}
		})
	}
	if err := s.DeleteCacheEntries(ctx, "pipe"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupCache(ctx, "pipe", "fp", time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("entries left after DeleteCacheEntries: %v", err)
	}
	if _, err := s.LookupCache(ctx, "pipe/2", "fp", time.Time{}); err != nil {
		t.Fatalf("another scope's entries were deleted: %v", err)
	}
}
