package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
)

// TestMaxParallelTasks checks the box-wide cap on running tasks over several runs, and a
// loop's own parallelism limit, with a runtime that records how many tasks run at once.
func TestMaxParallelTasks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	running, peak := 0, 0
	rt := &fakeRuntime{RunFn: func(ctx context.Context, _ runtime.TaskSpec) runtime.ExitStatus {
		mu.Lock()
		running++
		if running > peak {
			peak = running
		}
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // keep tasks overlapping; the assertion is on the peak
		mu.Lock()
		running--
		mu.Unlock()
		return runtime.ExitStatus{}
	}}
	h := newHarness(t, harnessOpts{rt: rt, maxParallel: 3})
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, h.submit(loopPipeline(8, 0), nil))
	}
	for _, id := range ids {
		h.check(id, h.waitRun(id, 30*time.Second), expectation{state: "SUCCEEDED"})
	}
	mu.Lock()
	defer mu.Unlock()
	if peak > 3 {
		t.Errorf("%d tasks ran at once, cap is 3", peak)
	}
	if peak < 2 {
		t.Errorf("at most %d task ran at once: the cap serialised everything", peak)
	}
}
