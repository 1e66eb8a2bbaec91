package engine

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// runInfo is what planning needs to know about the run itself.
type runInfo struct {
	ID           string
	DisplayName  string
	PipelineName string
	// ResourceName stands in for the Argo workflow name: <pipeline name>-<5 chars>.
	ResourceName string
	CreatedAt    time.Time
	ScheduledAt  time.Time
	// Params are the root inputs with defaults filled in.
	Params map[string]any
	// Canceling is true once the run was terminated.
	Canceling bool
}

// planInput is the whole input of one planning step.
type planInput struct {
	Pipe  *spec.Pipeline
	Run   runInfo
	Execs []*meta.Execution
	Now   time.Time
	// Slots is how many more tasks may start now (negative: unlimited).
	Slots int
	// NewID allocates execution ids.
	NewID func() string
}

// planOutput is what one planning step decided. Changed records must be persisted before
// any launch or kill is acted on.
type planOutput struct {
	// Changed are new or updated records, in the order they were first touched.
	Changed []*meta.Execution
	// Launch are PENDING container and importer records to start now.
	Launch []*meta.Execution
	// Kill are QUEUED or RUNNING records whose tasks must be stopped.
	Kill []*meta.Execution
	// Wake is the earliest time planning must run again on its own (zero: not needed).
	Wake time.Time
	// Starved is true when a task could start but no slot was free.
	Starved bool
	// Done is true when the run is finished; State and Error are its final state.
	Done  bool
	State string
	Error string
}

// plan is the reconciler's pure core: from the spec and the persisted executions it
// derives the record changes, launches and kills of one step. It does no I/O; the only
// outside input is NewID.
func plan(in planInput) planOutput {
	p := &planner{
		in:       in,
		execs:    make(map[string]*meta.Execution, len(in.Execs)),
		children: map[string]map[string]*meta.Execution{},
		iters:    map[string]map[int]*meta.Execution{},
		cloned:   map[string]bool{},
		launched: map[string]bool{},
		slots:    in.Slots,
	}
	for _, e := range in.Execs {
		p.index(e)
	}
	for i := 0; i < 10000; i++ {
		before := p.mutations
		p.step()
		if p.mutations == before {
			break
		}
	}
	for _, id := range p.order {
		p.out.Changed = append(p.out.Changed, p.execs[id])
	}
	for _, id := range p.launchOrder {
		p.out.Launch = append(p.out.Launch, p.execs[id])
	}
	return p.out
}

type planner struct {
	in       planInput
	execs    map[string]*meta.Execution
	children map[string]map[string]*meta.Execution
	iters    map[string]map[int]*meta.Execution
	root     *meta.Execution

	cloned      map[string]bool
	order       []string
	launched    map[string]bool
	launchOrder []string
	killed      map[string]bool
	mutations   int
	slots       int
	out         planOutput
}

func (p *planner) index(e *meta.Execution) {
	p.execs[e.ID] = e
	switch {
	case e.Kind == meta.KindRoot:
		p.root = e
	case e.Kind == meta.KindIteration:
		m := p.iters[e.ParentID]
		if m == nil {
			m = map[int]*meta.Execution{}
			p.iters[e.ParentID] = m
		}
		m[e.IterationIndex] = e
	default:
		m := p.children[e.ParentID]
		if m == nil {
			m = map[string]*meta.Execution{}
			p.children[e.ParentID] = m
		}
		m[e.TaskKey] = e
	}
}

// create adds a new record.
func (p *planner) create(e *meta.Execution) *meta.Execution {
	e.ID = p.in.NewID()
	e.RunID = p.in.Run.ID
	e.CreatedAt = p.in.Now
	if e.Kind != meta.KindIteration {
		e.IterationIndex = -1
	}
	st := e.State
	e.State = ""
	p.cloned[e.ID] = true
	p.order = append(p.order, e.ID)
	p.index(e)
	p.setState(e, st, e.Error)
	return e
}

// mutate returns a private copy of e that may be changed and records it as changed.
func (p *planner) mutate(e *meta.Execution) *meta.Execution {
	p.mutations++
	if p.cloned[e.ID] {
		return e
	}
	c := *e
	c.StateHistory = append([]meta.StateEvent(nil), e.StateHistory...)
	p.cloned[e.ID] = true
	p.order = append(p.order, e.ID)
	p.index(&c)
	return &c
}

// setState moves e (a private copy) to state, with timestamps and history.
func (p *planner) setState(e *meta.Execution, state, errMsg string) {
	p.mutations++
	if e.State == state && e.Error == errMsg {
		return
	}
	e.State = state
	e.Error = errMsg
	ev := meta.StateEvent{UpdateTime: p.in.Now, State: state}
	if errMsg != "" {
		ev.Error = &meta.Status{Code: 2, Message: errMsg}
	}
	e.StateHistory = append(e.StateHistory, ev)
	if state == meta.ExecRunning && e.StartedAt.IsZero() {
		e.StartedAt = p.in.Now
	}
	if meta.IsTerminalExecState(state) {
		e.FinishedAt = p.in.Now
		if e.StartedAt.IsZero() && state != meta.ExecOmitted && state != meta.ExecSkipped {
			e.StartedAt = p.in.Now
		}
	}
}

func (p *planner) transition(e *meta.Execution, state, errMsg string) *meta.Execution {
	c := p.mutate(e)
	p.setState(c, state, errMsg)
	return c
}

func (p *planner) step() {
	pipe := p.in.Pipe.Spec
	if p.root == nil {
		p.create(&meta.Execution{
			Kind: meta.KindRoot, TaskKey: "root", TaskName: pipe.PipelineInfo.Name,
			State:  meta.ExecRunning,
			Inputs: meta.IO{Parameters: copyParams(p.in.Run.Params)},
		})
	}
	if !meta.IsTerminalExecState(p.root.State) {
		p.visitDAG(p.root, pipe.Root)
	}
	if meta.IsTerminalExecState(p.root.State) && !p.anyActive() {
		p.out.Done = true
		p.out.Error = p.root.Error
		switch p.root.State {
		case meta.ExecSucceeded:
			p.out.State = meta.RunSucceeded
		case meta.ExecSkipped:
			p.out.State = meta.RunSkipped
		default:
			// Terminated runs end FAILED, as KFP's do, so wait_for_run_completion returns.
			p.out.State = meta.RunFailed
			if p.out.Error == "" && p.in.Run.Canceling {
				p.out.Error = "run was terminated"
			}
		}
	}
}

func (p *planner) anyActive() bool {
	for _, e := range p.execs {
		if e.State == meta.ExecQueued || e.State == meta.ExecRunning {
			return true
		}
	}
	return false
}

// taskKind says what record a task of a DAG becomes.
func (p *planner) taskKind(t *spec.PipelineTaskSpec) (string, *spec.ComponentSpec, error) {
	comp := p.in.Pipe.Spec.Components[t.ComponentRef.Name]
	if comp == nil {
		return "", nil, fmt.Errorf("component %q is not defined", t.ComponentRef.Name)
	}
	if t.ParameterIterator != nil || t.ArtifactIterator != nil {
		return meta.KindLoop, comp, nil
	}
	if comp.DAG != nil {
		return meta.KindDAG, comp, nil
	}
	var ex *spec.ExecutorSpec
	if d := p.in.Pipe.Spec.DeploymentSpec; d != nil {
		ex = d.Executors[comp.ExecutorLabel]
	}
	if ex == nil {
		return "", comp, fmt.Errorf("executor %q of component %q is not defined", comp.ExecutorLabel, t.ComponentRef.Name)
	}
	if ex.Importer != nil {
		return meta.KindImporter, comp, nil
	}
	return meta.KindContainer, comp, nil
}

func succeeded(state string) bool { return state == meta.ExecSucceeded || state == meta.ExecCached }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// visitDAG plans the tasks of a running DAG record (root, sub-DAG or iteration) whose
// component is comp, and completes it when every task reached a terminal state.
func (p *planner) visitDAG(d *meta.Execution, comp *spec.ComponentSpec) {
	if comp == nil || comp.DAG == nil {
		p.transition(d, meta.ExecFailed, fmt.Sprintf("task %q: component has no DAG", d.TaskKey))
		return
	}
	tasks := comp.DAG.Tasks
	keys := sortedKeys(tasks)
	kids := p.children[d.ID]
	failed := false
	for _, k := range keys {
		if c := kids[k]; c != nil && (c.State == meta.ExecFailed || c.State == meta.ExecCanceled) {
			failed = true
		}
	}
	for _, k := range keys {
		t := tasks[k]
		c := p.children[d.ID][k]
		if c == nil {
			p.maybeCreate(d, k, t, failed)
			continue
		}
		p.visitChild(c, t)
	}
	// Completion.
	kids = p.children[d.ID]
	var failedKids []string
	canceled := false
	for _, k := range keys {
		c := kids[k]
		if c == nil || !meta.IsTerminalExecState(c.State) {
			return
		}
		switch c.State {
		case meta.ExecFailed:
			msg := c.Error
			if msg == "" {
				msg = "failed"
			}
			failedKids = append(failedKids, msg)
		case meta.ExecCanceled:
			canceled = true
		}
	}
	switch {
	case len(failedKids) > 0:
		p.transition(d, meta.ExecFailed, strings.Join(failedKids, "; "))
	case canceled || p.in.Run.Canceling:
		p.transition(d, meta.ExecCanceled, "")
	default:
		outs, err := p.dagOutputs(d, comp)
		if err != nil {
			p.transition(d, meta.ExecFailed, fmt.Sprintf("task %q: outputs: %v", d.TaskName, err))
			return
		}
		c := p.mutate(d)
		c.Outputs = outs
		p.setState(c, meta.ExecSucceeded, "")
	}
}

// visitChild continues an existing child record.
func (p *planner) visitChild(c *meta.Execution, t *spec.PipelineTaskSpec) {
	if meta.IsTerminalExecState(c.State) {
		return
	}
	switch c.Kind {
	case meta.KindDAG:
		_, comp, _ := p.taskKind(t)
		p.visitDAG(c, comp)
	case meta.KindLoop:
		p.visitLoop(c, t)
	case meta.KindContainer, meta.KindImporter:
		p.visitTask(c)
	}
}

// visitTask launches, cancels or waits for a container or importer record.
func (p *planner) visitTask(c *meta.Execution) {
	switch c.State {
	case meta.ExecPending:
		if p.in.Run.Canceling {
			p.transition(c, meta.ExecCanceled, "run was terminated before the task started")
			return
		}
		if !c.RetryAt.IsZero() && p.in.Now.Before(c.RetryAt) {
			if p.out.Wake.IsZero() || c.RetryAt.Before(p.out.Wake) {
				p.out.Wake = c.RetryAt
			}
			return
		}
		if p.launched[c.ID] {
			return
		}
		if p.slots == 0 {
			p.out.Starved = true
			return
		}
		if p.slots > 0 {
			p.slots--
		}
		p.launched[c.ID] = true
		p.launchOrder = append(p.launchOrder, c.ID)
	case meta.ExecQueued, meta.ExecRunning:
		if p.in.Run.Canceling {
			if p.killed == nil {
				p.killed = map[string]bool{}
			}
			if !p.killed[c.ID] {
				p.killed[c.ID] = true
				p.out.Kill = append(p.out.Kill, c)
			}
		}
	}
}

// maybeCreate creates the record of a task that has none yet, once its upstream tasks
// allow it: OMITTED when it can never run, SKIPPED when its condition is false, FAILED
// when its inputs cannot be resolved, else PENDING (tasks) or RUNNING (DAGs, loops).
func (p *planner) maybeCreate(d *meta.Execution, key string, t *spec.PipelineTaskSpec, dagFailed bool) {
	allCompleted := t.TriggerPolicy != nil && t.TriggerPolicy.Strategy == spec.StrategyAllCompleted
	kind, comp, kerr := p.taskKind(t)
	if kind == "" {
		kind = meta.KindContainer
	}
	base := meta.Execution{ParentID: d.ID, TaskKey: key, TaskName: t.TaskInfo.Name, Kind: kind}
	if base.TaskName == "" {
		base.TaskName = key
	}
	omit := func(why string) {
		e := base
		e.State = meta.ExecOmitted
		e.Error = why
		p.create(&e)
	}
	if p.in.Run.Canceling {
		omit("run was terminated")
		return
	}
	for _, dep := range t.DependentTasks {
		u := p.children[d.ID][dep]
		if u == nil || !meta.IsTerminalExecState(u.State) {
			return // not ready yet
		}
		if !allCompleted && !succeeded(u.State) {
			omit(fmt.Sprintf("upstream task %q ended %s", dep, u.State))
			return
		}
	}
	if dagFailed && !allCompleted {
		omit("another task of the DAG failed")
		return
	}
	fail := func(err error) {
		e := base
		e.State = meta.ExecFailed
		e.Error = fmt.Sprintf("task %q: %v", base.TaskName, err)
		p.create(&e)
	}
	if kerr != nil {
		fail(kerr)
		return
	}
	inputs, err := p.resolveInputs(d, key, t, comp)
	if err != nil {
		fail(err)
		return
	}
	base.Inputs = inputs
	if t.TriggerPolicy != nil && t.TriggerPolicy.Condition != "" {
		ok, err := evalCondition(t.TriggerPolicy.Condition, inputs.Parameters)
		if err != nil {
			fail(err)
			return
		}
		if !ok {
			e := base
			e.State = meta.ExecSkipped
			p.create(&e)
			return
		}
	}
	switch kind {
	case meta.KindLoop:
		items, err := p.loopItems(&base, t)
		if err != nil {
			fail(err)
			return
		}
		e := base
		e.IterationCount = len(items)
		e.State = meta.ExecRunning
		p.create(&e)
	case meta.KindDAG:
		e := base
		e.State = meta.ExecRunning
		p.create(&e)
	default:
		e := base
		e.State = meta.ExecPending
		p.create(&e)
	}
}

// visitLoop creates iterations up to the parallelism limit and completes the loop when
// all its iterations are done.
func (p *planner) visitLoop(l *meta.Execution, t *spec.PipelineTaskSpec) {
	_, body, _ := p.taskKind(t)
	items, err := p.loopItems(l, t)
	if err != nil {
		p.transition(l, meta.ExecFailed, fmt.Sprintf("task %q: %v", l.TaskName, err))
		return
	}
	limit := 0
	if t.IteratorPolicy != nil {
		limit = t.IteratorPolicy.ParallelismLimit
	}
	its := p.iters[l.ID]
	active, failed, canceled := 0, false, false
	for _, it := range its {
		switch {
		case !meta.IsTerminalExecState(it.State):
			active++
		case it.State == meta.ExecFailed:
			failed = true
		case it.State == meta.ExecCanceled:
			canceled = true
		}
	}
	for i := range items {
		it := p.iters[l.ID][i]
		if it == nil {
			if failed || p.in.Run.Canceling || (limit > 0 && active >= limit) {
				continue
			}
			it = p.create(&meta.Execution{
				ParentID: l.ID, TaskKey: l.TaskKey, TaskName: l.TaskName, Kind: meta.KindIteration,
				IterationIndex: i, State: meta.ExecRunning,
				Inputs: p.iterationInputs(l, t, items[i]),
			})
			active++
		}
		if meta.IsTerminalExecState(it.State) {
			continue
		}
		p.visitDAG(it, body)
		if it2 := p.iters[l.ID][i]; meta.IsTerminalExecState(it2.State) {
			active--
			if it2.State == meta.ExecFailed {
				failed = true
			}
			if it2.State == meta.ExecCanceled {
				canceled = true
			}
		}
	}
	// Completion: every created iteration is terminal, and all exist unless the loop stops early.
	its = p.iters[l.ID]
	var errs []string
	for i := range items {
		it := its[i]
		if it == nil {
			if !failed && !p.in.Run.Canceling {
				return
			}
			continue
		}
		if !meta.IsTerminalExecState(it.State) {
			return
		}
		if it.State == meta.ExecFailed {
			errs = append(errs, fmt.Sprintf("iteration %d: %s", i, it.Error))
		}
	}
	switch {
	case len(errs) > 0:
		p.transition(l, meta.ExecFailed, strings.Join(errs, "; "))
	case canceled || p.in.Run.Canceling:
		p.transition(l, meta.ExecCanceled, "")
	default:
		c := p.mutate(l)
		c.Outputs = p.loopOutputs(c, body, len(items))
		p.setState(c, meta.ExecSucceeded, "")
	}
}

// checkGraph rejects what the spec validator lets through but planning cannot finish:
// dependency cycles inside a DAG, and components that contain themselves.
func checkGraph(ps *spec.PipelineSpec) error {
	const (
		visiting = 1
		done     = 2
	)
	compState := map[string]int{}
	var visitComp func(name string, c *spec.ComponentSpec) error
	visitComp = func(name string, c *spec.ComponentSpec) error {
		if c == nil || c.DAG == nil {
			return nil
		}
		switch compState[name] {
		case visiting:
			return fmt.Errorf("component %q contains itself", name)
		case done:
			return nil
		}
		compState[name] = visiting
		taskState := map[string]int{}
		var visitTask func(k string, path []string) error
		visitTask = func(k string, path []string) error {
			switch taskState[k] {
			case visiting:
				return fmt.Errorf("component %q: dependency cycle %s", name, strings.Join(append(path, k), " -> "))
			case done:
				return nil
			}
			taskState[k] = visiting
			if t := c.DAG.Tasks[k]; t != nil {
				for _, d := range t.DependentTasks {
					if err := visitTask(d, append(path, k)); err != nil {
						return err
					}
				}
			}
			taskState[k] = done
			return nil
		}
		for _, k := range sortedKeys(c.DAG.Tasks) {
			if err := visitTask(k, nil); err != nil {
				return err
			}
			if t := c.DAG.Tasks[k]; t != nil {
				if err := visitComp(t.ComponentRef.Name, ps.Components[t.ComponentRef.Name]); err != nil {
					return err
				}
			}
		}
		compState[name] = done
		return nil
	}
	return visitComp("root", ps.Root)
}
