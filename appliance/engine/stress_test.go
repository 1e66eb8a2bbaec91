package engine

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// TestDeleteAndTerminateStressFreesEverySlot: runs deleted at once, runs deleted while their
// tasks run and runs terminated must give back every task slot and leave no task behind, so
// that a new run still starts at once (a leaked slot used to wedge the engine: after about 40
// runs created and deleted at once, new tasks stayed PENDING until a restart).
func TestDeleteAndTerminateStressFreesEverySlot(t *testing.T) {
	const (
		perPhase = 50
		parallel = 4
	)
	h := newHarness(t, harnessOpts{maxParallel: parallel})
	sleep := testdataPipeline(t, "sleep.yaml")
	long := map[string]any{"seconds": "30"}

	// 1. Created and deleted at once: most are deleted before their first task starts, some
	// while it is starting.
	for i := 0; i < perPhase; i++ {
		id := h.submit(sleep, long)
		h.apiCall(http.MethodDelete, "/runs/"+id)
	}
	h.waitIdle(t, "runs deleted at once")

	// 2. Deleted while their tasks run, and 3. terminated while they run: in batches as large
	// as the slots, so that every run of a batch has a running task.
	for _, phase := range []string{"delete", "terminate"} {
		for done := 0; done < perPhase; done += parallel {
			var ids []string
			for i := 0; i < parallel && done+i < perPhase; i++ {
				ids = append(ids, h.submit(sleep, long))
			}
			for _, id := range ids {
				deadline := time.Now().Add(30 * time.Second)
				for {
					x := h.tasks(id)["first"]
					if x != nil && x.State == meta.ExecRunning {
						break
					}
					if time.Now().After(deadline) {
						r, _ := h.meta.GetRun(context.Background(), id)
						t.Fatalf("%s phase, %d runs done: run %s (%s) has no running task after 30s; slots %+v; tasks:\n  %s",
							phase, done, id, r.State, h.engine.Slots(), states(h.tasks(id)))
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			for _, id := range ids {
				if phase == "delete" {
					h.apiCall(http.MethodDelete, "/runs/"+id)
				} else {
					h.apiCall(http.MethodPost, "/runs/"+id+":terminate")
				}
			}
			if phase == "terminate" {
				for _, id := range ids {
					if r := h.waitRun(id, 30*time.Second); r.State != meta.RunFailed {
						t.Fatalf("terminated run %s ended %s, want FAILED as KFP", id, r.State)
					}
				}
			}
		}
		h.waitIdle(t, "runs "+phase+"d while running")
	}

	// A new run starts at once and succeeds in its normal time.
	start := time.Now()
	id := h.submit(sleep, map[string]any{"seconds": "0"})
	h.check(id, h.waitRun(id, 30*time.Second), expectation{state: meta.RunSucceeded,
		tasks: map[string]string{"first": meta.ExecSucceeded, "second": meta.ExecSucceeded}})
	t.Logf("a two-task run after the stress took %v", time.Since(start))
	h.waitIdle(t, "the last run")
}

// waitIdle waits until the engine holds no task slot and the runtime runs no task.
func (h *harness) waitIdle(t *testing.T, after string) {
	t.Helper()
	var st SlotStats
	var n int
	deadline := time.Now().Add(60 * time.Second)
	for {
		st = h.engine.Slots()
		tasks, err := h.rt.List(context.Background())
		if err != nil {
			t.Fatalf("list runtime tasks: %v", err)
		}
		n = len(tasks)
		if st.Used == 0 && st.Reserved == 0 && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: slots %+v and %d runtime tasks still there a minute later", after, st, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Max != 4 {
		t.Fatalf("slot stats %+v: want Max 4", st)
	}
}

// apiCall sends a bodiless request to the API and fails the test unless it answers 200.
func (h *harness) apiCall(method, path string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+"/apis/v2beta1"+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
}

// retryingPipeline has one task that is retried after a long backoff.
const retryingPipeline = `
components:
  comp-flaky: {executorLabel: exec-flaky}
deploymentSpec:
  executors:
    exec-flaky:
      container: {image: busybox, command: [sh, -c, 'exit 0']}
pipelineInfo: {name: flaky}
root:
  dag:
    tasks:
      flaky:
        componentRef: {name: comp-flaky}
        retryPolicy: {maxRetryCount: 3, backoffDuration: 1h}
        taskInfo: {name: flaky}
schemaVersion: 2.1.0
`

// TestDeleteRunWhoseTaskFailedToStart: a run whose task could not start and waits for a
// retry is deleted; the engine forgets it without touching the task that never existed
// (this used to crash the box) and holds no slot afterwards.
func TestDeleteRunWhoseTaskFailedToStart(t *testing.T) {
	t.Parallel()
	rt := &fakeRuntime{StartFn: func(runtime.TaskSpec) error { return errors.New("no such image") }}
	h := newHarness(t, harnessOpts{rt: rt, maxParallel: 2})
	id := h.submit(loadPipelineBytes(t, []byte(retryingPipeline)), nil)
	waitFor(t, 10*time.Second, "the failed start to be recorded", func() bool {
		x := h.tasks(id)["flaky"]
		return x != nil && x.State == meta.ExecPending && x.Attempt == 1
	})
	h.apiCall(http.MethodDelete, "/runs/"+id)
	waitFor(t, 10*time.Second, "the deleted run's slots to be free", func() bool {
		st := h.engine.Slots()
		return st.Used == 0 && st.Reserved == 0
	})
	// The engine still works: another run is planned and its start attempted.
	id2 := h.submit(loadPipelineBytes(t, []byte(retryingPipeline)), nil)
	waitFor(t, 10*time.Second, "the next run's first attempt", func() bool {
		x := h.tasks(id2)["flaky"]
		return x != nil && x.Attempt == 1
	})
}
