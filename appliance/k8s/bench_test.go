package k8s_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/k8s"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
	"github.com/kfp-box/kfp-box/storage/meta"
)

const benchRun = "0107a8ec-329e-4496-a1d9-9d890924a87e"

// podBox is a store holding one finished run of 1,000 container tasks, serving pods.
func podBox(b *testing.B) (kv.Store, string) {
	b.Helper()
	db, m, _ := podStore(b, 1000, true)
	s := k8s.NewStore(db)
	s.ServePods(k8s.PodSource{Meta: m})
	return db, serveTB(b, s)
}

// podStore holds one run whose root DAG has n container tasks and its root execution; the
// tasks' executions (all succeeded) are stored too when write is set, and returned.
func podStore(b testing.TB, n int, write bool) (kv.Store, *meta.Store, []*meta.Execution) {
	b.Helper()
	ctx := context.Background()
	db, err := bolt.Open(ctx, kv.Options{Path: filepath.Join(b.TempDir(), "meta.db"), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	m, err := meta.Open(ctx, db, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	tasks := map[string]any{}
	for i := 0; i < n; i++ {
		tasks[fmt.Sprintf("t%d", i)] = map[string]any{"componentRef": map[string]string{"name": "comp-t"}, "taskInfo": map[string]string{"name": fmt.Sprintf("t%d", i)}}
	}
	spec, _ := json.Marshal(map[string]any{
		"pipelineInfo": map[string]string{"name": "bench"}, "schemaVersion": "2.1.0", "sdkVersion": "bench",
		"root":       map[string]any{"dag": map[string]any{"tasks": tasks}},
		"components": map[string]any{"comp-t": map[string]string{"executorLabel": "exec-t"}},
		"deploymentSpec": map[string]any{"executors": map[string]any{"exec-t": map[string]any{"container": map[string]any{
			"image": "python:3.11", "command": []string{"sh", "-c", "echo hello"}, "resources": map[string]string{"resourceCpuLimit": "1", "resourceMemoryLimit": "1Gi"}}}}},
	})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := m.CreateRun(ctx, &meta.Run{ID: benchRun, DisplayName: "bench", CreatedAt: t0}, spec); err != nil {
		b.Fatal(err)
	}
	execs := []*meta.Execution{{ID: "1", RunID: benchRun, Kind: meta.KindRoot, State: meta.ExecRunning, IterationIndex: -1, CreatedAt: t0}}
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		execs = append(execs, &meta.Execution{
			ID: fmt.Sprint(i + 2), RunID: benchRun, ParentID: "1", TaskKey: fmt.Sprintf("t%d", i), TaskName: fmt.Sprintf("t%d", i),
			Kind: meta.KindContainer, IterationIndex: -1, State: meta.ExecSucceeded, CreatedAt: at, StartedAt: at, FinishedAt: at.Add(time.Second),
			RuntimeTaskID: fmt.Sprintf("0107a8ec-%d-0", i+2), LogPath: "/nonexistent",
			Inputs: meta.IO{Parameters: map[string]any{"x": float64(i)}},
			StateHistory: []meta.StateEvent{{UpdateTime: at, State: meta.ExecPending}, {UpdateTime: at, State: meta.ExecQueued},
				{UpdateTime: at, State: meta.ExecRunning}, {UpdateTime: at.Add(time.Second), State: meta.ExecSucceeded}},
		})
	}
	if err := m.PutExecutions(ctx, execs[:1]...); err != nil {
		b.Fatal(err)
	}
	if write {
		if err := m.PutExecutions(ctx, execs[1:]...); err != nil {
			b.Fatal(err)
		}
	}
	return db, m, execs
}

// BenchmarkKubectlGetPods1000 is `kubectl get pods` for a run of 1,000 tasks: the Table
// kubectl asks for, over loopback HTTP, made from the execution records and the run's spec.
func BenchmarkKubectlGetPods1000(b *testing.B) {
	_, base := podBox(b)
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/namespaces/kubeflow/pods?limit=500", nil)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var t struct {
			Kind string
			Rows []json.RawMessage
		}
		err = json.NewDecoder(resp.Body).Decode(&t)
		resp.Body.Close()
		if err != nil || t.Kind != "Table" || len(t.Rows) != 1000 {
			b.Fatalf("%s with %d rows: %v", t.Kind, len(t.Rows), err)
		}
	}
}

// BenchmarkRawExecutionsHTTP1000 is the baseline: the same run's 1,000 execution records
// read straight from bbolt and sent as one JSON array over loopback HTTP, decoded by the
// client, with no pod made.
func BenchmarkRawExecutionsHTTP1000(b *testing.B) {
	db, _ := podBox(b)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var out []json.RawMessage
		_ = db.View(r.Context(), func(tx kv.Tx) error {
			return tx.Scan([]byte("/executions/"+benchRun+"/"), nil, false, func(_, v []byte, _ int64) error {
				var x meta.Execution
				if err := json.Unmarshal(v, &x); err != nil {
					return err
				}
				raw, _ := json.Marshal(&x)
				out = append(out, raw)
				return nil
			})
		})
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})}
	base := listen(b, srv)
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.Get(base)
		if err != nil {
			b.Fatal(err)
		}
		var rows []json.RawMessage
		err = json.NewDecoder(resp.Body).Decode(&rows)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || len(rows) != 1001 {
			b.Fatalf("%d rows: %v", len(rows), err)
		}
	}
}
