package engine

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
)

const lostTaskPipeline = `
components:
  comp-t: {executorLabel: exec-t}
deploymentSpec:
  executors:
    exec-t:
      container: {image: busybox, command: ["true"]}
pipelineInfo: {name: lost}
root:
  dag:
    tasks:
      with-retry:
        componentRef: {name: comp-t}
        retryPolicy: {maxRetryCount: 1}
        taskInfo: {name: with-retry}
      without-retry:
        componentRef: {name: comp-t}
        taskInfo: {name: without-retry}
schemaVersion: 2.1.0
`

// TestRestartWithLostTasks restarts the engine over a runtime that no longer knows the
// tasks it had started (their fate is unknown): a task with retries left runs again, one
// without fails naming the cause.
func TestRestartWithLostTasks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	block := make(chan struct{})
	defer close(block)
	rt1 := &fakeRuntime{RunFn: func(ctx context.Context, _ runtime.TaskSpec) runtime.ExitStatus {
		<-block
		return runtime.ExitStatus{}
	}}
	h1 := newHarness(t, harnessOpts{dir: dir, rt: rt1})
	id := h1.submit(loadPipelineBytes(t, []byte(lostTaskPipeline)), nil)
	waitFor(t, 10*time.Second, "both tasks to be RUNNING in the store", func() bool {
		n := 0
		for _, x := range h1.tasks(id) {
			if x.Kind == meta.KindContainer && x.State == meta.ExecRunning {
				n++
			}
		}
		return n == 2
	})
	ctx := context.Background()
	if err := h1.engine.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h1.kv.Close(); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, harnessOpts{dir: dir, rt: &fakeRuntime{}})
	r := h2.waitRun(id, 10*time.Second)
	h2.check(id, r, expectation{state: "FAILED", tasks: map[string]string{"with-retry": "SUCCEEDED", "without-retry": "FAILED"}})
	got := h2.tasks(id)
	if a := got["with-retry"].Attempt; a != 1 {
		t.Errorf("with-retry attempt %d, want 1", a)
	}
	if msg := got["without-retry"].Error; !strings.Contains(msg, "was lost") {
		t.Errorf("without-retry error %q should say the task was lost", msg)
	}
}

// TestRestartReadoptsRunningTasks restarts the engine while a task runs: the new engine
// finds it with Lookup and records its exit without starting it again.
func TestRestartReadoptsRunningTasks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	release := make(chan struct{})
	starts := 0
	rt := &fakeRuntime{}
	rt.RunFn = func(ctx context.Context, _ runtime.TaskSpec) runtime.ExitStatus {
		rt.mu.Lock()
		starts++
		rt.mu.Unlock()
		<-release
		return runtime.ExitStatus{}
	}
	h1 := newHarness(t, harnessOpts{dir: dir, rt: rt})
	id := h1.submit(loadPipelineBytes(t, []byte(lostTaskPipeline)), nil)
	waitFor(t, 10*time.Second, "tasks to be queued", func() bool {
		n := 0
		for _, x := range h1.tasks(id) {
			if x.Kind == meta.KindContainer && (x.State == meta.ExecQueued || x.State == meta.ExecRunning) {
				n++
			}
		}
		return n == 2
	})
	if err := h1.engine.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h1.kv.Close(); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, harnessOpts{dir: dir, rt: rt})
	close(release)
	r := h2.waitRun(id, 10*time.Second)
	h2.check(id, r, expectation{state: "SUCCEEDED", tasks: map[string]string{"with-retry": "SUCCEEDED", "without-retry": "SUCCEEDED"}})
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if starts != 2 {
		t.Errorf("%d task starts, want 2 (re-adopted, not restarted)", starts)
	}
	for _, x := range h2.tasks(id) {
		if x.Kind == meta.KindContainer && x.Attempt != 0 {
			t.Errorf("task %s attempt %d, want 0", x.TaskKey, x.Attempt)
		}
	}
}

const gpuTaskPipeline = `
components:
  comp-train:
    executorLabel: exec-train
deploymentSpec:
  executors:
    exec-train:
      container:
        image: busybox
        command: [sh, -c, "true"]
        resources:
          accelerator: {resourceType: nvidia.com/gpu, resourceCount: "1"}
pipelineInfo: {name: gpu-restart}
root:
  dag:
    tasks:
      train:
        componentRef: {name: comp-train}
        taskInfo: {name: train}
schemaVersion: 2.1.0
`

// restoringGPUs is a GPU allocator that records restores and releases.
type restoringGPUs struct {
	mu       sync.Mutex
	restored map[string][]string
	released int
}

type countedLease struct {
	g     *restoringGPUs
	uuids []string
}

func (l countedLease) UUIDs() []string        { return l.uuids }
func (l countedLease) Env() map[string]string { return nil }
func (l countedLease) Release()               { l.g.mu.Lock(); l.g.released++; l.g.mu.Unlock() }
func (g *restoringGPUs) Allocate(context.Context, string, int, string, func(string)) (GPULease, error) {
	return countedLease{g: g, uuids: []string{"GPU-1"}}, nil
}
func (g *restoringGPUs) Restore(owner string, uuids []string) (GPULease, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.restored == nil {
		g.restored = map[string][]string{}
	}
	g.restored[owner] = uuids
	return countedLease{g: g, uuids: uuids}, nil
}

// TestRestartRestoresGPUs checks that a task re-adopted after a restart holds its GPUs
// again, so they are not handed out twice, and gives them back when it ends.
func TestRestartRestoresGPUs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	release := make(chan struct{})
	rt := &fakeRuntime{}
	rt.RunFn = func(ctx context.Context, _ runtime.TaskSpec) runtime.ExitStatus {
		<-release
		return runtime.ExitStatus{}
	}
	h1 := newHarness(t, harnessOpts{dir: dir, rt: rt, gpus: &restoringGPUs{}})
	id := h1.submit(loadPipelineBytes(t, []byte(gpuTaskPipeline)), nil)
	var runtimeID string
	waitFor(t, 10*time.Second, "the GPU task to run", func() bool {
		x := h1.tasks(id)["train"]
		if x != nil && x.State == meta.ExecRunning && len(x.GPUs) == 1 {
			runtimeID = x.RuntimeTaskID
			return true
		}
		return false
	})
	if err := h1.engine.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h1.kv.Close(); err != nil {
		t.Fatal(err)
	}
	g2 := &restoringGPUs{}
	h2 := newHarness(t, harnessOpts{dir: dir, rt: rt, gpus: g2})
	waitFor(t, 10*time.Second, "the re-adopted task's GPUs to be restored", func() bool {
		g2.mu.Lock()
		defer g2.mu.Unlock()
		return len(g2.restored[runtimeID]) == 1 && g2.restored[runtimeID][0] == "GPU-1"
	})
	close(release)
	r := h2.waitRun(id, 10*time.Second)
	h2.check(id, r, expectation{state: "SUCCEEDED", tasks: map[string]string{"train": "SUCCEEDED"}})
	waitFor(t, 10*time.Second, "the restored lease to be released", func() bool {
		g2.mu.Lock()
		defer g2.mu.Unlock()
		return g2.released == 1
	})
}
