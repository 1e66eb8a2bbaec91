package engine

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
)

func TestPipelineParamsAndArtifacts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	p := testdataPipeline(t, "params_and_artifacts.yaml")
	id := h.submit(p, nil)
	r := h.waitRun(id, 20*time.Second)
	want := "line|hello x3|4|" + r.DisplayName + "|consume|got hello x3!|--no-opt|a-4-z|1"
	h.check(id, r, expectation{
		state:   "SUCCEEDED",
		tasks:   map[string]string{"produce": "SUCCEEDED", "consume": "SUCCEEDED"},
		outputs: map[string]map[string]any{"produce": {"out_text": "hello x3", "n_plus": 4}, "consume": {"summary": want}},
	})
	prod := h.tasks(id)["produce"]
	uri := prod.Outputs.Artifacts["data"][0].URI
	if !strings.HasPrefix(uri, "minio://mlpipeline/v2/artifacts/params-and-artifacts/"+id+"/produce/") {
		t.Errorf("artifact uri %q does not follow KFP's layout", uri)
	}

	// With the optional input given, IfPresent takes the Then branch.
	id2 := h.submit(p, map[string]any{"opt": "yes", "greeting": "hi", "count": 1})
	r2 := h.waitRun(id2, 20*time.Second)
	want2 := "line|hi x1|2|" + r2.DisplayName + "|consume|got hi x1!|--opt=yes|a-2-z|1"
	h.check(id2, r2, expectation{state: "SUCCEEDED", outputs: map[string]map[string]any{"consume": {"summary": want2}}})
}

func TestPipelineConditions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	p := testdataPipeline(t, "conditions.yaml")
	cases := []struct {
		name   string
		params map[string]any
		want   expectation
	}{
		{"if", map[string]any{"side": "heads"}, expectation{state: "SUCCEEDED",
			tasks: map[string]string{"condition-branches-1/condition-2": "SUCCEEDED", "condition-branches-1/condition-2/show": "SUCCEEDED",
				"condition-branches-1/condition-3": "SKIPPED", "condition-branches-1/condition-4": "SKIPPED",
				"condition-5": "SUCCEEDED", "condition-5/condition-6/big-and-small": "SUCCEEDED"},
			outputs: map[string]map[string]any{"after": {"Output": "H"}}}},
		{"elif", map[string]any{"side": "tails", "num": 1}, expectation{state: "SUCCEEDED",
			tasks: map[string]string{"condition-branches-1/condition-2": "SKIPPED", "condition-branches-1/condition-3": "SUCCEEDED",
				"condition-branches-1/condition-4": "SKIPPED", "condition-5": "SKIPPED"},
			outputs: map[string]map[string]any{"after": {"Output": "T"}}}},
		{"else", map[string]any{"side": "edge", "num": 500}, expectation{state: "SUCCEEDED",
			tasks: map[string]string{"condition-branches-1/condition-4/show-3": "SUCCEEDED",
				"condition-5": "SUCCEEDED", "condition-5/condition-6": "SKIPPED"},
			outputs: map[string]map[string]any{"after": {"Output": "E"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := h.with(t)
			id := h.submit(p, tc.params)
			h.check(id, h.waitRun(id, 20*time.Second), tc.want)
		})
	}
}

func TestPipelineLoops(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	id := h.submit(testdataPipeline(t, "loops.yaml"), nil)
	h.check(id, h.waitRun(id, 30*time.Second), expectation{
		state: "SUCCEEDED",
		tasks: map[string]string{
			"for-loop-1": "SUCCEEDED", "for-loop-1[2]/square": "SUCCEEDED",
			"for-loop-2[2]/write": "SUCCEEDED", "for-loop-3[2]/read": "SUCCEEDED",
			"for-loop-4[1]/for-loop-5[1]/pair": "SUCCEEDED", "empty-loop": "SUCCEEDED",
		},
		outputs: map[string]map[string]any{
			"sum":                              {"Output": "[1,4,9]"},
			"collect-reads":                    {"Output": `["n=3","n=4","n=5"]`},
			"for-loop-4[1]/for-loop-5[0]/pair": {"Output": "bp"},
		},
	})
}

func TestPipelineNestedAndExitHandler(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	id := h.submit(testdataPipeline(t, "nested_and_exit.yaml"), nil)
	r := h.waitRun(id, 20*time.Second)
	h.check(id, r, expectation{
		state: "FAILED",
		tasks: map[string]string{
			"exit-handler-1": "FAILED", "exit-handler-1/inner": "SUCCEEDED", "exit-handler-1/inner/make": "SUCCEEDED",
			"exit-handler-1/read": "SUCCEEDED", "exit-handler-1/fail": "FAILED", "exit": "SUCCEEDED", "after": "OMITTED",
		},
		outputs: map[string]map[string]any{"exit-handler-1/read": {"Output": "hey!/hey!"}},
	})
	got := h.tasks(id)
	status := got["exit"].Outputs.Parameters["Output"].(string)
	for _, want := range []string{`"state":"FAILED"`, `"pipelineTaskName":"exit-handler-1"`, `"pipelineJobResourceName":"nested-and-exit-`, `exit code 3`} {
		if !strings.Contains(status, want) {
			t.Errorf("final status %s lacks %s", status, want)
		}
	}
	if fail := got["exit-handler-1/fail"]; !strings.Contains(fail.Error, "exit code 3") || !strings.Contains(fail.Error, "about to fail") {
		t.Errorf("failure message %q should name the exit code and the last output", fail.Error)
	}
	if r.Error == nil || !strings.Contains(r.Error.Message, `task "fail"`) {
		t.Errorf("run error %+v should name the failed task", r.Error)
	}
}

func TestPipelineRetryAndIgnoreUpstreamFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	p := testdataPipeline(t, "retry_and_ignore.yaml")
	id := h.submit(p, nil)
	h.check(id, h.waitRun(id, 20*time.Second), expectation{
		state:   "FAILED",
		tasks:   map[string]string{"flaky": "SUCCEEDED", "fails": "FAILED", "cleanup": "SUCCEEDED"},
		outputs: map[string]map[string]any{"flaky": {"Output": "ok"}, "cleanup": {"Output": "fallback"}},
	})
	if a := h.tasks(id)["flaky"].Attempt; a != 1 {
		t.Errorf("flaky ran %d retries, want 1", a)
	}
	id2 := h.submit(p, map[string]any{"succeed": true})
	h.check(id2, h.waitRun(id2, 20*time.Second), expectation{
		state:   "SUCCEEDED",
		outputs: map[string]map[string]any{"cleanup": {"Output": "produced"}},
	})
}

// cacheClaims are the claims cache.yaml's volume task mounts, made before its runs as a
// user makes them.
func cacheClaims(t *testing.T) Volumes {
	return newFakeVolumes(filepath.Join(t.TempDir(), "volumes"), "vol-a", "vol-b")
}

func TestPipelineCache(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{cache: true, volumes: cacheClaims(t)})
	p := testdataPipeline(t, "cache.yaml")
	id1 := h.submit(p, nil)
	h.check(id1, h.waitRun(id1, 20*time.Second), expectation{state: "SUCCEEDED",
		tasks: map[string]string{"cached": "SUCCEEDED", "uncached": "SUCCEEDED", "keyed": "SUCCEEDED", "stale": "SUCCEEDED", "volume": "SUCCEEDED"}})
	id2 := h.submit(p, nil)
	h.check(id2, h.waitRun(id2, 20*time.Second), expectation{state: "SUCCEEDED",
		tasks: map[string]string{"cached": "CACHED", "uncached": "SUCCEEDED", "keyed": "CACHED", "stale": "SUCCEEDED", "volume": "CACHED"}})
	t1, t2 := h.tasks(id1), h.tasks(id2)
	for _, k := range []string{"cached", "keyed", "volume"} {
		if a, b := t1[k].Outputs.Parameters["Output"], t2[k].Outputs.Parameters["Output"]; a != b {
			t.Errorf("%s: cached output %v differs from the source's %v", k, b, a)
		}
		if cs := t2[k].CacheSource; cs == nil || cs.RunID != id1 || cs.ExecutionID != t1[k].ID {
			t.Errorf("%s: cache source %+v, want run %s execution %s", k, cs, id1, t1[k].ID)
		}
	}
	for _, k := range []string{"uncached", "stale"} {
		if t1[k].Outputs.Parameters["Output"] == t2[k].Outputs.Parameters["Output"] {
			t.Errorf("%s ran from cache", k)
		}
	}
	// Another salt is another fingerprint; another volume too, for the task that mounts it.
	id3 := h.submit(p, map[string]any{"salt": "other", "vol": "vol-b"})
	h.check(id3, h.waitRun(id3, 20*time.Second), expectation{state: "SUCCEEDED",
		tasks: map[string]string{"cached": "SUCCEEDED", "keyed": "CACHED", "volume": "SUCCEEDED"}})
	if a, b := t1["volume"].Outputs.Parameters["Output"], h.tasks(id3)["volume"].Outputs.Parameters["Output"]; a == b {
		t.Errorf("the task mounting vol-b reused the output %v of the one mounting vol-a", a)
	}
}

func TestPipelineCacheSwitchAndStaleness(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		opts  harnessOpts
		state string
	}{
		{"server switch off", harnessOpts{cache: false}, "SUCCEEDED"},
		{"stale entries ignored", harnessOpts{cache: true, staleness: time.Nanosecond}, "SUCCEEDED"},
		{"fresh entries reused", harnessOpts{cache: true, staleness: time.Hour}, "CACHED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.volumes = cacheClaims(t)
			h := newHarness(t, tc.opts)
			p := testdataPipeline(t, "cache.yaml")
			id1 := h.submit(p, nil)
			h.waitRun(id1, 20*time.Second)
			id2 := h.submit(p, nil)
			h.check(id2, h.waitRun(id2, 20*time.Second), expectation{state: "SUCCEEDED", tasks: map[string]string{"cached": tc.state}})
		})
	}
}

func TestPipelineImporterAndRunRetry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	obj := filepath.Join(h.dir, "objects", "mlpipeline", "datasets", "input.txt")
	if err := os.MkdirAll(filepath.Dir(obj), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(obj, []byte("rows"), 0o644); err != nil {
		t.Fatal(err)
	}
	gate := filepath.Join(t.TempDir(), "gate")
	p := testdataPipeline(t, "importer_and_gate.yaml")
	id := h.submit(p, map[string]any{"gate": gate})
	r := h.waitRun(id, 20*time.Second)
	h.check(id, r, expectation{state: "FAILED",
		tasks:   map[string]string{"importer": "SUCCEEDED", "read": "SUCCEEDED", "gate": "FAILED", "last": "OMITTED"},
		outputs: map[string]map[string]any{"read": {"Output": "rows:lab"}}})
	before := h.tasks(id)

	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.engine.Retry(context.Background(), id); err != nil {
		t.Fatalf("retry: %v", err)
	}
	r = h.waitRun(id, 20*time.Second)
	h.check(id, r, expectation{state: "SUCCEEDED",
		tasks:   map[string]string{"importer": "SUCCEEDED", "read": "SUCCEEDED", "gate": "SUCCEEDED", "last": "SUCCEEDED"},
		outputs: map[string]map[string]any{"gate": {"Output": "rows:lab"}, "last": {"Output": "rows:lab"}}})
	after := h.tasks(id)
	if before["read"].ID != after["read"].ID || !before["read"].FinishedAt.Equal(after["read"].FinishedAt) {
		t.Errorf("retry re-ran a task that had succeeded")
	}
	if err := h.engine.Retry(context.Background(), id); !errors.Is(err, ErrNotRetryable) {
		t.Errorf("retry of a succeeded run: %v, want ErrNotRetryable", err)
	}

	// A second run reuses the imported artifact record.
	id2 := h.submit(p, map[string]any{"gate": gate})
	h.waitRun(id2, 20*time.Second)
	a1 := after["importer"].Outputs.Artifacts["artifact"][0].ID
	a2 := h.tasks(id2)["importer"].Outputs.Artifacts["artifact"][0].ID
	if a1 != a2 {
		t.Errorf("importer made artifact %s, want the existing %s reused", a2, a1)
	}
}

func TestTerminate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	id := h.submit(testdataPipeline(t, "sleep.yaml"), nil)
	waitFor(t, 10*time.Second, "first task to run", func() bool {
		x := h.tasks(id)["first"]
		return x != nil && x.State == meta.ExecRunning
	})
	if err := h.engine.Terminate(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	r := h.waitRun(id, 10*time.Second)
	h.check(id, r, expectation{state: "FAILED", tasks: map[string]string{"first": "CANCELED", "second": "OMITTED"}})
	var sawCanceling bool
	for _, ev := range r.StateHistory {
		sawCanceling = sawCanceling || ev.State == meta.RunCanceling
	}
	if !sawCanceling {
		t.Errorf("state history %+v lacks CANCELING", r.StateHistory)
	}
}

func TestPipelineWorkspaceAndArtifactLists(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	id := h.submit(testdataPipeline(t, "workspace_and_lists.yaml"), nil)
	h.check(id, h.waitRun(id, 20*time.Second), expectation{state: "SUCCEEDED",
		tasks:   map[string]string{"writer": "SUCCEEDED", "reader": "SUCCEEDED"},
		outputs: map[string]map[string]any{"reader": {"Output": "shared:2"}}})
	if n := len(h.tasks(id)["writer"].Outputs.Artifacts["files"]); n != 2 {
		t.Errorf("writer recorded %d artifacts for its list output, want 2", n)
	}
}

func TestActiveDeadline(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	p := loadPipelineBytes(t, []byte(deadlinePipeline))
	id := h.submit(p, nil)
	h.check(id, h.waitRun(id, 20*time.Second), expectation{state: "FAILED", tasks: map[string]string{"slow": "FAILED"}})
	if msg := h.tasks(id)["slow"].Error; !strings.Contains(msg, "activeDeadlineSeconds") {
		t.Errorf("error %q should name the deadline", msg)
	}
}

const deadlinePipeline = `
components:
  comp-slow: {executorLabel: exec-slow}
deploymentSpec:
  executors:
    exec-slow:
      container: {image: busybox, command: [sleep, "30"]}
pipelineInfo: {name: deadline}
root:
  dag:
    tasks:
      slow:
        componentRef: {name: comp-slow}
        taskInfo: {name: slow}
schemaVersion: 2.1.0
---
platforms:
  kubernetes:
    deploymentSpec:
      executors:
        exec-slow:
          activeDeadlineSeconds: 1
`

func TestDeleteRunningRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	id := h.submit(testdataPipeline(t, "sleep.yaml"), nil)
	var runtimeID string
	waitFor(t, 10*time.Second, "first task to run", func() bool {
		x := h.tasks(id)["first"]
		if x != nil && x.State == meta.ExecRunning {
			runtimeID = x.RuntimeTaskID
			return true
		}
		return false
	})
	req, _ := http.NewRequest("DELETE", h.srv.URL+"/apis/v2beta1/runs/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("delete run: %v %v", err, resp)
	}
	resp.Body.Close()
	waitFor(t, 15*time.Second, "the deleted run's task to be gone", func() bool {
		_, err := h.rt.Lookup(context.Background(), runtimeID)
		return errors.Is(err, runtime.ErrNotFound)
	})
	if execs, _ := h.meta.ListExecutions(context.Background(), id); len(execs) != 0 {
		t.Errorf("%d execution records written after the run was deleted", len(execs))
	}
}
