package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/spec"
)

// apiBox is a harness used through its HTTP API.
type apiBox struct {
	*harness
}

func newAPIBox(t *testing.T, o harnessOpts) *apiBox {
	return &apiBox{harness: newHarness(t, o)}
}

func (b *apiBox) do(method, path string, body any, out any) int {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, b.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if s, ok := out.(*string); ok {
			*s = string(raw)
		} else if err := json.Unmarshal(raw, out); err != nil {
			b.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

type apiTask struct {
	TaskID       string `json:"task_id"`
	DisplayName  string `json:"display_name"`
	State        string `json:"state"`
	ExecutionID  string `json:"execution_id"`
	ParentTaskID string `json:"parent_task_id"`
	Error        *struct {
		Message string `json:"message"`
	} `json:"error"`
	Outputs map[string]struct {
		ArtifactIDs []string `json:"artifact_ids"`
	} `json:"outputs"`
	OutputParameters map[string]any `json:"output_parameters"`
	CacheSource      *struct {
		RunID string `json:"run_id"`
	} `json:"cache_source"`
	StateHistory []struct {
		State string `json:"state"`
	} `json:"state_history"`
}

type apiRun struct {
	RunID string `json:"run_id"`
	State string `json:"state"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
	RunDetails struct {
		TaskDetails []apiTask `json:"task_details"`
		Warnings    []string  `json:"warnings"`
	} `json:"run_details"`
}

// createRun creates a run of p through POST /apis/v2beta1/runs and returns its id.
func (b *apiBox) createRun(p *spec.Pipeline, params map[string]any) string {
	b.t.Helper()
	var created apiRun
	body := map[string]any{
		"display_name":   "e2e",
		"pipeline_spec":  json.RawMessage(p.StoredJSON()),
		"runtime_config": map[string]any{"parameters": params},
	}
	var raw string
	if code := b.do("POST", "/apis/v2beta1/runs", body, &raw); code != 200 {
		b.t.Fatalf("create run: %d %s", code, raw)
	}
	if err := json.Unmarshal([]byte(raw), &created); err != nil || created.RunID == "" {
		b.t.Fatalf("create run: %s", raw)
	}
	return created.RunID
}

// waitRunAPI polls GET /runs/{id} every interval until the run is final.
func (b *apiBox) waitRunAPI(id string, timeout, interval time.Duration) apiRun {
	b.t.Helper()
	var r apiRun
	deadline := time.Now().Add(timeout)
	for {
		b.do("GET", "/apis/v2beta1/runs/"+id, nil, &r)
		switch strings.ToLower(r.State) {
		case "succeeded", "failed", "skipped", "error", "canceled":
			return r
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("run %s still %s after %v", id, r.State, timeout)
		}
		time.Sleep(interval)
	}
}

// runThroughAPI creates a run with an inline spec (as kfp.Client does from a package) and
// waits for it with GET, as wait_for_run_completion does.
func (b *apiBox) runThroughAPI(p *spec.Pipeline, params map[string]any, timeout time.Duration) apiRun {
	b.t.Helper()
	var created apiRun
	body := map[string]any{
		"display_name":   "e2e",
		"pipeline_spec":  json.RawMessage(p.StoredJSON()),
		"runtime_config": map[string]any{"parameters": params},
	}
	var raw string
	if code := b.do("POST", "/apis/v2beta1/runs", body, &raw); code != 200 {
		b.t.Fatalf("create run: %d %s", code, raw)
	}
	if err := json.Unmarshal([]byte(raw), &created); err != nil || created.RunID == "" {
		b.t.Fatalf("create run: %s", raw)
	}
	var r apiRun
	waitFor(b.t, timeout, "run to finish", func() bool {
		b.do("GET", "/apis/v2beta1/runs/"+created.RunID, nil, &r)
		switch strings.ToLower(r.State) {
		case "succeeded", "failed", "skipped", "error":
			return true
		}
		return false
	})
	return r
}

func (r apiRun) task(name string) *apiTask {
	for i := range r.RunDetails.TaskDetails {
		if r.RunDetails.TaskDetails[i].DisplayName == name {
			return &r.RunDetails.TaskDetails[i]
		}
	}
	return nil
}

func TestAPIRunDetailsAndLogs(t *testing.T) {
	t.Parallel()
	b := newAPIBox(t, harnessOpts{cache: true})
	p := testdataPipeline(t, "nested_and_exit.yaml")
	r := b.runThroughAPI(p, nil, 20*time.Second)
	if r.State != "FAILED" {
		t.Fatalf("run state %s, want FAILED", r.State)
	}
	want := map[string]string{"nested-and-exit": "FAILED", "exit-handler-1": "FAILED", "inner": "SUCCEEDED", "make": "SUCCEEDED",
		"read": "SUCCEEDED", "fail": "FAILED", "exit": "SUCCEEDED", "after": "RUNTIME_STATE_UNSPECIFIED"}
	for name, st := range want {
		task := r.task(name)
		if task == nil {
			t.Errorf("no task_details entry named %q", name)
			continue
		}
		if task.State != st {
			t.Errorf("task %s: state %s, want %s", name, task.State, st)
		}
		if task.ExecutionID == "" || task.TaskID == "" {
			t.Errorf("task %s: no ids: %+v", name, task)
		}
	}
	if f := r.task("fail"); f != nil && (f.Error == nil || !strings.Contains(f.Error.Message, `task "fail" failed: exit code 3`)) {
		t.Errorf("fail task error %+v", f.Error)
	}
	if m := r.task("make"); m != nil && len(m.Outputs["out"].ArtifactIDs) != 1 {
		t.Errorf("make outputs %+v, want one artifact id", m.Outputs)
	}
	if e := r.task("exit"); e != nil && len(e.StateHistory) < 3 {
		t.Errorf("exit state history %+v", e.StateHistory)
	}

	// Logs are kept after the run; follow on a finished task returns at once.
	fail := r.task("fail")
	for _, q := range []string{"", "?follow=true"} {
		var text string
		if code := b.do("GET", fmt.Sprintf("/apis/v2beta1/runs/%s/tasks/%s/logs%s", r.RunID, fail.TaskID, q), nil, &text); code != 200 {
			t.Fatalf("logs: %d %s", code, text)
		}
		if text != "about to fail\n" {
			t.Errorf("logs%s = %q, want the task's output", q, text)
		}
	}
	if code := b.do("GET", "/apis/v2beta1/runs/"+r.RunID+"/tasks/999999/logs", nil, nil); code != 404 {
		t.Errorf("logs of an unknown task: %d, want 404", code)
	}
}

func TestAPILogsFollowStreamsWhileRunning(t *testing.T) {
	t.Parallel()
	b := newAPIBox(t, harnessOpts{})
	p := loadPipelineBytes(t, []byte(followPipeline))
	id := b.submit(p, nil)
	var taskID string
	waitFor(t, 10*time.Second, "task to run", func() bool {
		x := b.tasks(id)["ticker"]
		if x != nil && x.State == "RUNNING" {
			taskID = x.ID
			return true
		}
		return false
	})
	resp, err := http.Get(fmt.Sprintf("%s/apis/v2beta1/runs/%s/tasks/%s/logs?follow=true", b.srv.URL, id, taskID))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("read the first line while the task runs: %v", err)
	}
	if x := b.tasks(id)["ticker"]; x.State != "RUNNING" {
		t.Fatalf("the first line arrived only after the task ended (%s)", x.State)
	}
	rest, _ := io.ReadAll(resp.Body)
	if got := string(first) + string(rest); got != "tick1\ntick2\ntick3\n" {
		t.Errorf("followed log %q", got)
	}
	b.waitRun(id, 10*time.Second)
}

const followPipeline = `
components:
  comp-ticker: {executorLabel: exec-ticker}
deploymentSpec:
  executors:
    exec-ticker:
      container:
        image: busybox
        command: [sh, -c, 'echo tick1; sleep 1.5; echo tick2; sleep 0.3; echo tick3']
pipelineInfo: {name: follow}
root:
  dag:
    tasks:
      ticker:
        componentRef: {name: comp-ticker}
        taskInfo: {name: ticker}
schemaVersion: 2.1.0
`

func loadPipelineBytes(t testing.TB, b []byte) *spec.Pipeline {
	t.Helper()
	p, err := spec.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var _ = filepath.Join

func TestAPICachedTaskShowsSourceLog(t *testing.T) {
	t.Parallel()
	b := newAPIBox(t, harnessOpts{cache: true})
	p := loadPipelineBytes(t, []byte(cachedLogPipeline))
	first := b.runThroughAPI(p, nil, 20*time.Second)
	second := b.runThroughAPI(p, nil, 20*time.Second)
	if first.State != "SUCCEEDED" || second.State != "SUCCEEDED" {
		t.Fatalf("runs %s and %s", first.State, second.State)
	}
	task := second.task("hello")
	if task == nil || task.CacheSource == nil || task.CacheSource.RunID != first.RunID {
		t.Fatalf("second run's task %+v should name the first run as its cache source", task)
	}
	var text string
	b.do("GET", fmt.Sprintf("/apis/v2beta1/runs/%s/tasks/%s/logs", second.RunID, task.TaskID), nil, &text)
	if text != "hello from the source\n" {
		t.Errorf("cached task log %q, want the source's", text)
	}
}

const cachedLogPipeline = `
components:
  comp-hello: {executorLabel: exec-hello}
deploymentSpec:
  executors:
    exec-hello:
      container: {image: busybox, command: [echo, hello from the source]}
pipelineInfo: {name: cached-log}
root:
  dag:
    tasks:
      hello:
        cachingOptions: {enableCache: true}
        componentRef: {name: comp-hello}
        taskInfo: {name: hello}
schemaVersion: 2.1.0
`
