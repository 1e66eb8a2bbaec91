package engine

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/spec"
)

// chainPipeline is n tasks running `true`, each depending on the previous one.
func chainPipeline(n int) *spec.Pipeline {
	ps := basePipeline("bench-chain")
	dag := ps.Root.DAG
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("t%d", i)
		t := &spec.PipelineTaskSpec{TaskInfo: spec.TaskInfo{Name: k}, ComponentRef: spec.ComponentRef{Name: "comp-true"}}
		if i > 0 {
			t.DependentTasks = []string{fmt.Sprintf("t%d", i-1)}
		}
		dag.Tasks[k] = t
	}
	return &spec.Pipeline{Spec: ps}
}

// loopPipeline is a ParallelFor of n items running `true`, parallelism limit par.
func loopPipeline(n, par int) *spec.Pipeline {
	ps := basePipeline("bench-loop")
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprint(i)
	}
	ps.Components["comp-for-loop-1"] = &spec.ComponentSpec{DAG: &spec.DAGSpec{Tasks: map[string]*spec.PipelineTaskSpec{
		"t": {TaskInfo: spec.TaskInfo{Name: "t"}, ComponentRef: spec.ComponentRef{Name: "comp-true"}},
	}}}
	ps.Root.DAG.Tasks["for-loop-1"] = &spec.PipelineTaskSpec{
		TaskInfo: spec.TaskInfo{Name: "for-loop-1"}, ComponentRef: spec.ComponentRef{Name: "comp-for-loop-1"},
		ParameterIterator: &spec.ParameterIteratorSpec{Items: spec.ParameterItems{Raw: "[" + strings.Join(items, ",") + "]"}, ItemInput: "item"},
		IteratorPolicy:    &spec.IteratorPolicy{ParallelismLimit: par},
	}
	return &spec.Pipeline{Spec: ps}
}

func basePipeline(name string) *spec.PipelineSpec {
	return &spec.PipelineSpec{
		PipelineInfo:   spec.PipelineInfo{Name: name},
		SchemaVersion:  "2.1.0",
		Root:           &spec.ComponentSpec{DAG: &spec.DAGSpec{Tasks: map[string]*spec.PipelineTaskSpec{}}},
		Components:     map[string]*spec.ComponentSpec{"comp-true": {ExecutorLabel: "exec-true"}},
		DeploymentSpec: &spec.DeploymentSpec{Executors: map[string]*spec.ExecutorSpec{"exec-true": {Container: &spec.ContainerSpec{Image: "busybox", Command: []string{"true"}}}}},
	}
}

// rawRun fork/execs `true` n times with par workers: the baseline.
func rawRun(b *testing.B, n, par int) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan struct{})
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				if err := exec.Command("true").Run(); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	return time.Since(start)
}

// benchPipeline runs p through the engine with the host runtime b.N times and reports the
// per-task overhead against raw fork/exec of the same commands measured in the same run.
func benchPipeline(b *testing.B, p *spec.Pipeline, tasks, par int) {
	h := newHarness(b, harnessOpts{})
	var box, raw time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		id := h.submit(p, nil)
		r := h.waitRun(id, 10*time.Minute)
		box += time.Since(start)
		if r.State != "SUCCEEDED" {
			b.Fatalf("run %s", r.State)
		}
		b.StopTimer()
		raw += rawRun(b, tasks, par)
		b.StartTimer()
	}
	n := float64(b.N * tasks)
	b.ReportMetric(float64(box.Microseconds())/1000/n, "box-ms/task")
	b.ReportMetric(float64(raw.Microseconds())/1000/n, "raw-ms/task")
	b.ReportMetric(float64((box-raw).Microseconds())/1000/n, "overhead-ms/task")
}

// BenchmarkEngineChain100 runs a 100-task chain of `true` (one task at a time).
func BenchmarkEngineChain100(b *testing.B) { benchPipeline(b, chainPipeline(100), 100, 1) }

// BenchmarkEngineParallelFor1000 runs a 1,000-item ParallelFor of `true`, parallelism 16.
func BenchmarkEngineParallelFor1000(b *testing.B) { benchPipeline(b, loopPipeline(1000, 16), 1000, 16) }

// BenchmarkRawChain100 is the baseline of BenchmarkEngineChain100: fork/exec `true` 100
// times, one at a time.
func BenchmarkRawChain100(b *testing.B) {
	for i := 0; i < b.N; i++ {
		rawRun(b, 100, 1)
	}
}

// BenchmarkRawParallelFor1000 is the baseline of BenchmarkEngineParallelFor1000.
func BenchmarkRawParallelFor1000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		rawRun(b, 1000, 16)
	}
}

// BenchmarkEngineOnlyChain100 measures the engine alone: a 100-task chain over a runtime
// whose tasks exit at once (bbolt with fsync).
func BenchmarkEngineOnlyChain100(b *testing.B) {
	h := newHarness(b, harnessOpts{rt: &fakeRuntime{}, sync: true})
	p := chainPipeline(100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := h.submit(p, nil)
		if r := h.waitRun(id, time.Minute); r.State != "SUCCEEDED" {
			b.Fatalf("run %s", r.State)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*100), "ms/task")
}

// BenchmarkEngineOnlyParallelFor1000 is the engine alone on a 1,000-item ParallelFor.
func BenchmarkEngineOnlyParallelFor1000(b *testing.B) {
	h := newHarness(b, harnessOpts{rt: &fakeRuntime{}, sync: true})
	p := loopPipeline(1000, 16)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := h.submit(p, nil)
		if r := h.waitRun(id, time.Minute); r.State != "SUCCEEDED" {
			b.Fatalf("run %s", r.State)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*1000), "ms/task")
}

// BenchmarkEngineOnlyChain100NoSync is BenchmarkEngineOnlyChain100 without fsync: the
// engine's CPU cost apart from the disk's.
func BenchmarkEngineOnlyChain100NoSync(b *testing.B) {
	h := newHarness(b, harnessOpts{rt: &fakeRuntime{}})
	p := chainPipeline(100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := h.submit(p, nil)
		if r := h.waitRun(id, time.Minute); r.State != "SUCCEEDED" {
			b.Fatalf("run %s", r.State)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*100), "ms/task")
}
