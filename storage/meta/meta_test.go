package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func mkRun(i int, exp string) *Run {
	state := RunSucceeded
	if i%3 == 0 {
		state = RunFailed
	}
	return &Run{
		ID: fmt.Sprintf("run-%05d", i), ExperimentID: exp, DisplayName: fmt.Sprintf("train %d", i%10),
		StorageState: StorageAvailable, State: state, CreatedAt: t0.Add(time.Duration(i%50) * time.Second),
	}
}

func TestMigrationCreatesDefaultExperimentOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	s := openAt(t, path)
	id, err := s.DefaultExperimentID(ctx)
	if err != nil || id == "" {
		t.Fatalf("default experiment: %q %v", id, err)
	}
	e, err := s.GetExperiment(ctx, id)
	if err != nil || e.DisplayName != DefaultExperimentName || e.StorageState != StorageAvailable {
		t.Fatalf("default experiment = %+v, %v", e, err)
	}
	if err := s.KV().Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openAt(t, path)
	id2, _ := s2.DefaultExperimentID(ctx)
	if id2 != id {
		t.Fatalf("reopen made a second default experiment: %q != %q", id2, id)
	}
	p, err := s2.ListExperiments(ctx, ListOptions{})
	if err != nil || p.TotalSize != 1 {
		t.Fatalf("experiments after reopen: %+v %v", p, err)
	}
}

func TestMigrationRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	kvs, err := bolt.Open(ctx, kv.Options{Path: filepath.Join(t.TempDir(), "m.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer kvs.Close()
	if _, err := kvs.Update(ctx, func(tx kv.Tx) error { return tx.Put(keySchemaVersion, []byte(strconv.Itoa(SchemaVersion+1))) }); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, kvs, nil); !errors.Is(err, ErrFailedPrecondition) {
		t.Fatalf("Open over a newer schema = %v, want ErrFailedPrecondition", err)
	}
}

func TestExperimentRules(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	e := &Experiment{ID: "e1", DisplayName: "exp", CreatedAt: t0}
	if err := s.CreateExperiment(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateExperiment(ctx, &Experiment{ID: "e2", DisplayName: "exp"}); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate name = %v", err)
	}
	r := mkRun(1, "e1")
	r.CreatedAt = t0.Add(time.Hour)
	if err := s.CreateRun(ctx, r, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetExperiment(ctx, "e1")
	if !got.LastRunCreatedAt.Equal(r.CreatedAt) {
		t.Fatalf("last_run_created_at = %v, want %v", got.LastRunCreatedAt, r.CreatedAt)
	}
	rr := &RecurringRun{ID: "rr1", DisplayName: "nightly", ExperimentID: "e1", Enabled: true}
	if err := s.CreateRecurringRun(ctx, rr); err != nil {
		t.Fatal(err)
	}
	if err := s.ArchiveExperiment(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if run, _ := s.GetRun(ctx, r.ID); run.StorageState != StorageArchived {
		t.Fatalf("run not archived with its experiment: %s", run.StorageState)
	}
	if rec, _ := s.GetRecurringRun(ctx, "rr1"); rec.Enabled {
		t.Fatal("recurring run still enabled after archiving its experiment")
	}
	if _, err := s.UnarchiveRun(ctx, r.ID); !errors.Is(err, ErrFailedPrecondition) {
		t.Fatalf("unarchive run of archived experiment = %v", err)
	}
	if err := s.CreateRun(ctx, mkRun(2, "e1"), nil); !errors.Is(err, ErrFailedPrecondition) {
		t.Fatalf("run in archived experiment = %v", err)
	}
	if err := s.UnarchiveExperiment(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if run, err := s.UnarchiveRun(ctx, r.ID); err != nil || run.StorageState != StorageAvailable {
		t.Fatalf("unarchive run = %+v %v", run, err)
	}
	def, _ := s.DefaultExperimentID(ctx)
	if err := s.DeleteExperiment(ctx, def); !errors.Is(err, ErrFailedPrecondition) {
		t.Fatalf("delete Default = %v", err)
	}
	if _, err := s.SetRecurringRunEnabled(ctx, "rr1", true); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteExperiment(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRun(ctx, r.ID); err != nil {
		t.Fatalf("run lost with its experiment (KFP keeps runs): %v", err)
	}
	if rec, _ := s.GetRecurringRun(ctx, "rr1"); rec.Enabled {
		t.Fatal("recurring run of a deleted experiment still enabled")
	}
	if err := s.CreateExperiment(ctx, &Experiment{ID: "e3", DisplayName: "exp"}); err != nil {
		t.Fatalf("name not released by delete: %v", err)
	}
}

func TestPipelinesAndVersions(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	p := &Pipeline{ID: "p1", Name: "hello", DisplayName: "hello", CreatedAt: t0}
	v := &PipelineVersion{ID: "v1", Name: "hello", DisplayName: "hello", CreatedAt: t0, Spec: json.RawMessage(`{"a":1}`)}
	if err := s.CreatePipelineWithVersion(ctx, p, v); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePipeline(ctx, &Pipeline{ID: "p2", Name: "hello"}); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate pipeline name = %v", err)
	}
	v2 := &PipelineVersion{ID: "v2", PipelineID: "p1", Name: "second", CreatedAt: t0.Add(time.Second)}
	if err := s.CreatePipelineVersion(ctx, v2); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePipelineVersion(ctx, &PipelineVersion{ID: "v3", PipelineID: "p1", Name: "second"}); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate version name = %v", err)
	}
	if lv, err := s.LatestPipelineVersion(ctx, "p1"); err != nil || lv.ID != "v2" {
		t.Fatalf("latest = %+v %v", lv, err)
	}
	if fv, err := s.FindPipelineVersion(ctx, "v1"); err != nil || string(fv.Spec) != `{"a":1}` {
		t.Fatalf("find = %+v %v", fv, err)
	}
	page, err := s.ListPipelineVersions(ctx, "p1", ListOptions{SortBy: "created_at desc"})
	if err != nil || page.TotalSize != 2 || page.Items[0].ID != "v2" {
		t.Fatalf("versions = %+v %v", page, err)
	}
	if err := s.DeletePipeline(ctx, "p1", false); !errors.Is(err, ErrFailedPrecondition) {
		t.Fatalf("delete with versions = %v", err)
	}
	if err := s.DeletePipeline(ctx, "p1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindPipelineVersion(ctx, "v1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("version survived cascade: %v", err)
	}
}

func TestListRunsFilterSortPage(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	for i := 0; i < 95; i++ {
		if err := s.CreateRun(ctx, mkRun(i, ""), nil); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		opts   ListOptions
		total  int
		first  string
		wantEr bool
	}{
		{"default sort", ListOptions{}, 95, "run-00000", false},
		{"desc", ListOptions{SortBy: "created_at desc"}, 95, "run-00049", false},
		{"by name", ListOptions{SortBy: "display_name"}, 95, "run-00000", false},
		{"sdk filter", ListOptions{Filter: `{"predicates":[{"operation":1,"key":"display_name","stringValue":"train 3"}]}`}, 10, "run-00003", false},
		{"named op", ListOptions{Filter: `{"predicates":[{"operation":"NOT_EQUALS","key":"state","string_value":"FAILED"}]}`}, 63, "run-00050", false},
		{"in", ListOptions{Filter: `{"predicates":[{"operation":8,"key":"id","stringValues":{"values":["run-00007","run-00094"]}}]}`}, 2, "run-00007", false},
		{"substring", ListOptions{Filter: `{"predicates":[{"operation":9,"key":"name","string_value":"TRAIN 9"}]}`}, 9, "run-00009", false},
		{"time", ListOptions{Filter: `{"predicates":[{"operation":5,"key":"created_at","timestamp_value":"2026-01-02T03:04:53Z"}]}`}, 2, "run-00048", false},
		{"long as string", ListOptions{Filter: fmt.Sprintf(`{"predicates":[{"operation":3,"key":"created_at","long_value":"%d"}]}`, t0.Unix()-1)}, 95, "run-00000", false},
		{"unknown key", ListOptions{Filter: `{"predicates":[{"operation":1,"key":"colour","string_value":"x"}]}`}, 0, "", true},
		{"wrong type", ListOptions{Filter: `{"predicates":[{"operation":1,"key":"display_name","int_value":3}]}`}, 0, "", true},
		{"bad sort", ListOptions{SortBy: "colour"}, 0, "", true},
		{"bad direction", ListOptions{SortBy: "created_at up"}, 0, "", true},
		{"negative size", ListOptions{PageSize: -1}, 0, "", true},
		{"bad token", ListOptions{PageToken: "!!!"}, 0, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.ListRuns(ctx, "", tc.opts)
			if tc.wantEr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.TotalSize != tc.total || len(p.Items) == 0 || p.Items[0].ID != tc.first {
				t.Fatalf("total %d items %d, want %d first %s", p.TotalSize, len(p.Items), tc.total, tc.first)
			}
		})
	}
}

func TestPagingVisitsEveryRowOnce(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	for i := 0; i < 53; i++ {
		if err := s.CreateRun(ctx, mkRun(i, ""), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, sortBy := range []string{"", "created_at desc", "display_name", "display_name desc", "state"} {
		seen := map[string]bool{}
		opts := ListOptions{PageSize: 7, SortBy: sortBy, Filter: `{"predicates":[{"operation":2,"key":"run_id","string_value":"run-00010"}]}`}
		var prev *Run
		for pages := 0; ; pages++ {
			p, err := s.ListRuns(ctx, "", opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Items {
				if seen[r.ID] {
					t.Fatalf("sort %q: %s twice", sortBy, r.ID)
				}
				seen[r.ID] = true
				if prev != nil && sortBy == "" && r.CreatedAt.Before(prev.CreatedAt) {
					t.Fatalf("out of order: %s before %s", prev.ID, r.ID)
				}
				prev = r
			}
			if p.NextPageToken == "" {
				break
			}
			opts.PageToken = p.NextPageToken
		}
		if len(seen) != 52 {
			t.Fatalf("sort %q: saw %d runs, want 52", sortBy, len(seen))
		}
		// A token is bound to its sort and filter.
		p, _ := s.ListRuns(ctx, "", ListOptions{PageSize: 7, SortBy: sortBy})
		if _, err := s.ListRuns(ctx, "", ListOptions{PageToken: p.NextPageToken, SortBy: sortBy, Filter: opts.Filter}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("token with another filter = %v", err)
		}
	}
}

func TestIndexFollowsUpdatesAndDeletes(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	if err := s.CreateRun(ctx, mkRun(1, ""), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateRun(ctx, "run-00001", func(r *Run) error { r.State = RunRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	// A failed update must not leak into the index.
	boom := errors.New("boom")
	if _, err := s.UpdateRun(ctx, "run-00001", func(r *Run) error { r.State = RunFailed; return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	f := `{"predicates":[{"operation":1,"key":"state","string_value":"RUNNING"}]}`
	if p, _ := s.ListRuns(ctx, "", ListOptions{Filter: f}); p.TotalSize != 1 {
		t.Fatalf("running runs = %d, want 1", p.TotalSize)
	}
	if ids, _ := s.ActiveRunIDs(ctx); len(ids) != 1 {
		t.Fatalf("active = %v", ids)
	}
	if err := s.DeleteRun(ctx, "run-00001"); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.ListRuns(ctx, "", ListOptions{}); p.TotalSize != 0 {
		t.Fatalf("deleted run still listed")
	}
	if _, err := s.GetRunSpec(ctx, "run-00001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("spec survived: %v", err)
	}
}

func TestConcurrentBatchedRunWrites(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	const n = 40
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		go func() { errs <- s.CreateRun(ctx, mkRun(i, ""), nil) }()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		go func() {
			_, err := s.UpdateRunBatch(ctx, fmt.Sprintf("run-%05d", i), func(r *Run) error { r.State = RunRunning; return nil })
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	f := `{"predicates":[{"operation":1,"key":"state","string_value":"RUNNING"}]}`
	if p, err := s.ListRuns(ctx, "", ListOptions{Filter: f}); err != nil || p.TotalSize != n {
		t.Fatalf("running = %+v %v", p, err)
	}
	// The index agrees with a fresh load from disk.
	fresh := &Store{kv: s.kv}
	if err := fresh.loadIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := fresh.ListRuns(ctx, "", ListOptions{Filter: f}); p.TotalSize != n {
		t.Fatalf("reloaded index: %d running", p.TotalSize)
	}
}

// TestMigrationFromVersion1 opens a store written by schema 1 (no Default experiment yet).
func TestMigrationFromVersion1(t *testing.T) {
	ctx := context.Background()
	kvs, err := bolt.Open(ctx, kv.Options{Path: filepath.Join(t.TempDir(), "m.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer kvs.Close()
	_, err = kvs.Update(ctx, func(tx kv.Tx) error {
		if err := tx.Put(keySchemaVersion, []byte("1")); err != nil {
			return err
		}
		return putJSON(tx, runKey("old"), &Run{ID: "old", State: RunSucceeded, DisplayName: "from v1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, kvs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := s.DefaultExperimentID(ctx); err != nil || id == "" {
		t.Fatalf("no Default experiment after migrating from 1: %v", err)
	}
	var v []byte
	_ = kvs.View(ctx, func(tx kv.Tx) error { v, _ = tx.Get(keySchemaVersion); v = append([]byte(nil), v...); return nil })
	if string(v) != strconv.Itoa(SchemaVersion) {
		t.Fatalf("schema version %q", v)
	}
	if p, _ := s.ListRuns(ctx, "", ListOptions{}); p.TotalSize != 1 || p.Items[0].DisplayName != "from v1" {
		t.Fatalf("old run not indexed: %+v", p)
	}
}

// TestReopenWritesNothing reopens a store whose schema is current: opening must only read
// the file (the bbolt buckets, the schema version), so that kfp-box starts on a full disk
// and serves reads.
func TestReopenWritesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	open := func() kv.Store {
		kvs, err := bolt.Open(ctx, kv.Options{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, kvs, nil); err != nil {
			t.Fatal(err)
		}
		return kvs
	}
	if err := open().Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := open().Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("reopening the store wrote to its file")
	}
}
