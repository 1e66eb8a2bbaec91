package engine

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// genPipeline draws a random pipeline: container tasks with random dependencies, trigger
// strategies and retry policies, sub-DAGs and ParallelFor loops (raw items, parallelism),
// up to two levels deep.
func genPipeline(t *rapid.T) *spec.Pipeline {
	ps := &spec.PipelineSpec{
		PipelineInfo:   spec.PipelineInfo{Name: "prop"},
		Components:     map[string]*spec.ComponentSpec{"comp-task": {ExecutorLabel: "exec-task"}},
		DeploymentSpec: &spec.DeploymentSpec{Executors: map[string]*spec.ExecutorSpec{"exec-task": {Container: &spec.ContainerSpec{Image: "x", Command: []string{"true"}}}}},
		SchemaVersion:  "2.1.0",
	}
	n := 0
	var genDAG func(depth int) *spec.ComponentSpec
	genDAG = func(depth int) *spec.ComponentSpec {
		count := rapid.IntRange(1, 6).Draw(t, "tasks")
		dag := &spec.DAGSpec{Tasks: map[string]*spec.PipelineTaskSpec{}}
		keys := []string{}
		for i := 0; i < count; i++ {
			n++
			key := fmt.Sprintf("t%d", n)
			task := &spec.PipelineTaskSpec{TaskInfo: spec.TaskInfo{Name: key}, ComponentRef: spec.ComponentRef{Name: "comp-task"}}
			for _, k := range keys {
				if rapid.IntRange(0, 2).Draw(t, "dep") == 0 {
					task.DependentTasks = append(task.DependentTasks, k)
				}
			}
			if len(task.DependentTasks) > 0 && rapid.IntRange(0, 3).Draw(t, "allCompleted") == 0 {
				task.TriggerPolicy = &spec.TriggerPolicy{Strategy: spec.StrategyAllCompleted}
			}
			kind := 0
			if depth < 2 {
				kind = rapid.IntRange(0, 5).Draw(t, "kind")
			}
			switch kind {
			case 4, 5:
				name := "comp-" + key
				ps.Components[name] = genDAG(depth + 1)
				task.ComponentRef.Name = name
				if kind == 5 {
					items := rapid.IntRange(0, 4).Draw(t, "items")
					raw := "["
					for j := 0; j < items; j++ {
						if j > 0 {
							raw += ","
						}
						raw += strconv.Itoa(j)
					}
					task.ParameterIterator = &spec.ParameterIteratorSpec{Items: spec.ParameterItems{Raw: raw + "]"}, ItemInput: "item"}
					task.IteratorPolicy = &spec.IteratorPolicy{ParallelismLimit: rapid.IntRange(0, 2).Draw(t, "parallelism")}
				}
			default:
				if r := rapid.IntRange(0, 3).Draw(t, "retries"); r > 0 && r < 3 {
					task.RetryPolicy = &spec.RetryPolicy{MaxRetryCount: r}
				}
			}
			dag.Tasks[key] = task
			keys = append(keys, key)
		}
		return &spec.ComponentSpec{DAG: dag}
	}
	ps.Root = genDAG(0)
	return &spec.Pipeline{Spec: ps}
}

// sim drives the planner like the engine does, with tasks that finish at random.
type sim struct {
	t        *rapid.T
	pipe     *spec.Pipeline
	execs    map[string]*meta.Execution
	next     int
	now      time.Time
	launched map[string]bool // execution id + attempt
	final    map[string]string
	cancel   bool
	failures bool
}

func (s *sim) input() planInput {
	list := make([]*meta.Execution, 0, len(s.execs))
	for _, x := range s.execs {
		list = append(list, x)
	}
	return planInput{
		Pipe: s.pipe, Now: s.now, Slots: -1,
		Run:   runInfo{ID: "run", PipelineName: "prop", ResourceName: "prop-x", Canceling: s.cancel},
		Execs: list,
		NewID: func() string { s.next++; return strconv.Itoa(s.next) },
	}
}

// taskOf finds the spec of an execution's task.
func (s *sim) taskOf(x *meta.Execution) *spec.PipelineTaskSpec {
	var comp *spec.ComponentSpec
	p := s.execs[x.ParentID]
	switch p.Kind {
	case meta.KindRoot:
		comp = s.pipe.Spec.Root
	case meta.KindIteration:
		comp = s.pipe.Spec.Components[s.taskOf(s.execs[p.ParentID]).ComponentRef.Name]
	default:
		comp = s.pipe.Spec.Components[s.taskOf(p).ComponentRef.Name]
	}
	return comp.DAG.Tasks[x.TaskKey]
}

func (s *sim) sibling(x *meta.Execution, key string) *meta.Execution {
	for _, y := range s.execs {
		if y.ParentID == x.ParentID && y.TaskKey == key && y.Kind != meta.KindIteration {
			return y
		}
	}
	return nil
}

func (s *sim) apply(out planOutput) {
	for _, c := range out.Changed {
		if old := s.execs[c.ID]; old != nil && meta.IsTerminalExecState(old.State) && (old.State != c.State || old.FinishedAt != c.FinishedAt) {
			s.t.Fatalf("terminal record %s (%s %s) changed to %s", c.ID, c.TaskKey, old.State, c.State)
		}
		s.execs[c.ID] = c
	}
	for _, x := range out.Launch {
		if x.Kind != meta.KindContainer || x.State != meta.ExecPending {
			s.t.Fatalf("launch of %s record %s in state %s", x.Kind, x.TaskKey, x.State)
		}
		key := x.ID + "/" + strconv.Itoa(x.Attempt)
		if s.launched[key] {
			s.t.Fatalf("task %s attempt %d launched twice", x.TaskKey, x.Attempt)
		}
		s.launched[key] = true
		t := s.taskOf(x)
		all := t.TriggerPolicy != nil && t.TriggerPolicy.Strategy == spec.StrategyAllCompleted
		for _, d := range t.DependentTasks {
			u := s.sibling(x, d)
			if u == nil || !meta.IsTerminalExecState(u.State) || (!all && !succeeded(u.State)) {
				st := "none"
				if u != nil {
					st = u.State
				}
				s.t.Fatalf("task %s started while its dependency %s is %s", x.TaskKey, d, st)
			}
		}
		c := cloneExec(x)
		setExecState(c, meta.ExecRunning, "", s.now)
		s.execs[c.ID] = c
	}
	// Loop parallelism.
	for _, l := range s.execs {
		if l.Kind != meta.KindLoop {
			continue
		}
		limit := 0
		if p := s.taskOf(l).IteratorPolicy; p != nil {
			limit = p.ParallelismLimit
		}
		active := 0
		for _, it := range s.execs {
			if it.ParentID == l.ID && !meta.IsTerminalExecState(it.State) {
				active++
			}
		}
		if limit > 0 && active > limit {
			s.t.Fatalf("loop %s has %d active iterations, limit %d", l.TaskKey, active, limit)
		}
	}
}

func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := &sim{t: t, pipe: genPipeline(t), execs: map[string]*meta.Execution{}, now: time.Unix(1000, 0),
			launched: map[string]bool{}}
		cancelAt := rapid.IntRange(-1, 30).Draw(t, "cancelAt")
		for step := 0; step < 500; step++ {
			if step == cancelAt {
				s.cancel = true
			}
			out := plan(s.input())
			s.apply(out)
			if out.Done {
				s.checkDone(out)
				return
			}
			var running []*meta.Execution
			for _, x := range s.execs {
				if x.State == meta.ExecRunning && x.Kind == meta.KindContainer {
					running = append(running, x)
				}
			}
			if len(running) == 0 {
				s.now = s.now.Add(time.Second) // retries wait for RetryAt
				if step > 400 {
					t.Fatalf("no progress: nothing runs and the run is not done")
				}
				continue
			}
			sortExecs(running)
			x := running[rapid.IntRange(0, len(running)-1).Draw(t, "finish")]
			c := cloneExec(x)
			switch {
			case s.cancel:
				setExecState(c, meta.ExecCanceled, "terminated", s.now)
			case rapid.IntRange(0, 4).Draw(t, "fail") == 0:
				rp := s.taskOf(x).RetryPolicy
				if rp != nil && x.Attempt < rp.MaxRetryCount {
					c.Attempt++
					c.RetryAt = s.now.Add(time.Second)
					setExecState(c, meta.ExecPending, "retry", s.now)
				} else {
					s.failures = true
					setExecState(c, meta.ExecFailed, "boom", s.now)
				}
			default:
				setExecState(c, meta.ExecSucceeded, "", s.now)
			}
			s.execs[c.ID] = c
		}
		t.Fatalf("run did not finish in 500 steps")
	})
}

func (s *sim) checkDone(out planOutput) {
	for _, x := range s.execs {
		if !meta.IsTerminalExecState(x.State) {
			s.t.Fatalf("run done with %s %s in state %s", x.Kind, x.TaskKey, x.State)
		}
	}
	switch {
	case s.failures || s.cancel:
		if out.State != meta.RunFailed && !(s.cancel && !s.failures && out.State == meta.RunSucceeded) {
			s.t.Fatalf("run ended %s with failures=%v canceled=%v", out.State, s.failures, s.cancel)
		}
	default:
		if out.State != meta.RunSucceeded {
			s.t.Fatalf("run ended %s without failures: %s", out.State, out.Error)
		}
	}
	// A second plan of a finished run changes nothing.
	again := plan(s.input())
	if len(again.Changed) > 0 || len(again.Launch) > 0 || !again.Done {
		s.t.Fatalf("plan of a finished run is not a fixed point: %d changes, %d launches", len(again.Changed), len(again.Launch))
	}
}

func sortExecs(xs []*meta.Execution) { meta.SortExecutions(xs) }
