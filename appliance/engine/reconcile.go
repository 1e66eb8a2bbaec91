package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kfp-box/kfp-box/appliance/pyenv"
	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
	"github.com/kfp-box/kfp-box/storage/objects"
)

// Task event kinds.
const (
	evStarted = iota + 1
	evStartFailed
	evExited
	evWaiting
)

// taskEvent reports what happened to a task attempt; task goroutines post them and the
// run's worker applies them.
type taskEvent struct {
	execID  string
	attempt int
	kind    int
	task    runtime.Task
	status  runtime.ExitStatus
	err     error
	gpus    []string
	waiting string
}

func (e *Engine) post(runID string, ev taskEvent) {
	e.mu.Lock()
	if rs := e.runs[runID]; rs != nil {
		rs.events = append(rs.events, ev)
	}
	e.mu.Unlock()
	e.enqueue(runID)
}

// load returns the run's state, reading it from the store the first time. It returns nil
// for runs that are finished or gone.
func (e *Engine) load(ctx context.Context, id string) (*runState, error) {
	e.mu.Lock()
	rs := e.runs[id]
	e.mu.Unlock()
	if rs != nil {
		return rs, nil
	}
	run, err := e.cfg.Meta.GetRun(ctx, id)
	if err != nil {
		if errors.Is(err, meta.ErrNotFound) {
			e.reapDeleted(ctx, id)
			return nil, nil
		}
		return nil, err
	}
	if meta.IsTerminalRunState(run.State) {
		return nil, nil
	}
	raw, err := e.cfg.Meta.GetRunSpec(ctx, id)
	if err != nil {
		return nil, err
	}
	pipe, err := spec.FromJSON(raw)
	if err != nil {
		return nil, e.failRun(ctx, run, fmt.Sprintf("pipeline spec: %v", err))
	}
	if err := checkGraph(pipe.Spec); err != nil {
		return nil, e.failRun(ctx, run, fmt.Sprintf("pipeline spec: %v", err))
	}
	params, err := spec.ResolveRuntimeParameters(pipe.Spec, run.RuntimeConfig.Parameters)
	if err != nil {
		return nil, e.failRun(ctx, run, fmt.Sprintf("run parameters: %v", err))
	}
	execs, err := e.cfg.Meta.ListExecutions(ctx, id)
	if err != nil {
		return nil, err
	}
	name := pipe.Spec.PipelineInfo.Name
	rs = &runState{
		id: id, run: run, pipe: pipe,
		info: runInfo{
			ID: id, DisplayName: run.DisplayName, PipelineName: name,
			ResourceName: resourceName(name, id),
			CreatedAt:    run.CreatedAt, ScheduledAt: run.ScheduledAt,
			Params: params, Canceling: run.State == meta.RunCanceling,
		},
		pipelineRoot: firstNonEmpty(run.RuntimeConfig.PipelineRoot, pipe.Spec.DefaultPipelineRoot, e.cfg.DefaultPipelineRoot),
		execs:        make(map[string]*meta.Execution, len(execs)),
		handles:      map[string]runtime.Task{},
		leases:       map[string]GPULease{},
		allocCancel:  map[string]context.CancelFunc{},
	}
	// gs:// and unknown schemes have no store on the box: say so instead of running tasks
	// whose outputs would go nowhere.
	if _, err := (objects.Resolver{}).PipelineRoot(rs.pipelineRoot, ""); err != nil {
		return nil, e.failRun(ctx, run, err.Error())
	}
	if rs.info.ScheduledAt.IsZero() {
		rs.info.ScheduledAt = run.CreatedAt
	}
	for _, x := range execs {
		rs.execs[x.ID] = x
	}
	e.mu.Lock()
	if cur := e.runs[id]; cur != nil {
		rs = cur
	} else {
		e.runs[id] = rs
	}
	e.mu.Unlock()
	return rs, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// resourceName stands in for the Argo workflow name KFP exposes as
// {{$.pipeline_job_resource_name}}: <pipeline name>-<5 characters of the run id>.
func resourceName(pipeline, runID string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(runID) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
		if b.Len() == 5 {
			break
		}
	}
	return pipeline + "-" + b.String()
}

// forget drops a deleted run: its tasks are killed and removed, its slots and GPUs freed.
func (e *Engine) forget(rs *runState) {
	e.log.Info("run deleted while running; stopping its tasks", "run", rs.id)
	e.mu.Lock()
	delete(e.runs, rs.id)
	delete(e.starved, rs.id)
	if rs.wake != nil {
		rs.wake.Stop()
	}
	if rs.flush != nil {
		rs.flush.Stop()
	}
	e.mu.Unlock()
	var ids []string
	for id, t := range rs.handles {
		ids = append(ids, id)
		if t != nil { // a task that failed to start has no handle
			e.removeTask(t)
		}
	}
	// Tasks still starting hold slots too; those of them that start after this are found by
	// their run label and removed when their start is reported (reapDeleted).
	e.releaseRunSlots(rs.id)
	e.mu.Lock()
	for _, id := range ids {
		if l := rs.leases[id]; l != nil {
			l.Release()
		}
		delete(rs.leases, id)
	}
	e.mu.Unlock()
}

// reapDeleted stops and removes the runtime tasks of a run that no longer exists (deleted
// while the engine did not hold its state), found by their run label.
func (e *Engine) reapDeleted(ctx context.Context, runID string) {
	tasks, err := e.cfg.Runtime.List(ctx)
	if err != nil {
		return
	}
	for _, t := range tasks {
		if t.Labels()["kfp-box/run"] != runID {
			continue
		}
		e.log.Info("removing a task of a deleted run", "run", runID, "task", t.ID())
		e.removeTask(t)
	}
}

// removeTask kills, waits for and deletes a runtime task of a deleted run, once: a run's
// tasks can be found both through its handles and by their labels, and two removals of one
// task would race (a kill after the delete).
func (e *Engine) removeTask(t runtime.Task) {
	e.mu.Lock()
	if e.removing == nil {
		e.removing = map[string]bool{}
	}
	if e.removing[t.ID()] {
		e.mu.Unlock()
		return
	}
	e.removing[t.ID()] = true
	e.mu.Unlock()
	go func() {
		defer func() {
			e.mu.Lock()
			delete(e.removing, t.ID())
			e.mu.Unlock()
		}()
		// Waiting is bounded: a task another removal already deleted has nothing to wait for.
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.KillGrace+time.Minute)
		defer cancel()
		switch err := t.Kill(ctx, e.cfg.KillGrace); {
		case err == nil:
			_, _ = t.Wait(ctx)
		case !errors.Is(err, runtime.ErrNotFound):
			e.log.Warn("kill a task of a deleted run", "task", t.ID(), "err", err)
		}
		if err := t.Delete(ctx); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			e.log.Warn("delete a task of a deleted run", "task", t.ID(), "err", err)
		}
	}()
}

// failRun ends a run that cannot be executed at all.
func (e *Engine) failRun(ctx context.Context, run *meta.Run, msg string) error {
	e.log.Warn("run failed before start", "run", run.ID, "err", msg)
	return e.finishRun(ctx, run.ID, meta.RunFailed, msg)
}

func (e *Engine) finishRun(ctx context.Context, runID, state, msg string) error {
	now := e.cfg.Now()
	_, err := e.cfg.Meta.UpdateRun(ctx, runID, func(r *meta.Run) error {
		r.State = state
		r.FinishedAt = now
		ev := meta.StateEvent{UpdateTime: now, State: state}
		if msg != "" {
			r.Error = &meta.Status{Code: 2, Message: msg}
			ev.Error = r.Error
		}
		r.StateHistory = append(r.StateHistory, ev)
		return nil
	})
	e.mu.Lock()
	if rs := e.runs[runID]; rs != nil && rs.wake != nil {
		rs.wake.Stop()
	}
	delete(e.runs, runID)
	delete(e.starved, runID)
	e.mu.Unlock()
	if err == nil {
		e.log.Info("run finished", "run", runID, "state", state)
	}
	return err
}

// commit persists w and applies its executions to the in-memory view.
func (e *Engine) commit(ctx context.Context, rs *runState, w *meta.Writes) error {
	if err := e.cfg.Meta.Commit(ctx, w); err != nil {
		return err
	}
	for _, x := range w.Executions {
		rs.execs[x.ID] = x
	}
	for _, d := range w.DeleteExecutions {
		delete(rs.execs, d[1])
	}
	return nil
}

// reconcile brings one run forward: apply task events, plan, persist, then act.
func (e *Engine) reconcile(ctx context.Context, id string) error {
	rs, err := e.load(ctx, id)
	if err != nil || rs == nil {
		return err
	}
	// A run deleted while it ran: stop its tasks and forget it, writing nothing more.
	cur, err := e.cfg.Meta.GetRun(ctx, id)
	if errors.Is(err, meta.ErrNotFound) {
		e.forget(rs)
		return nil
	}
	if err != nil {
		return err
	}
	if cur.State == meta.RunCanceling {
		rs.run = cur
	}
	if !rs.adopted {
		if err := e.adopt(ctx, rs); err != nil {
			return err
		}
		rs.adopted = true
	}
	if rs.run.State == meta.RunPending {
		now := e.cfg.Now()
		r, err := e.cfg.Meta.UpdateRun(ctx, id, func(r *meta.Run) error {
			if r.State != meta.RunPending {
				return nil
			}
			r.State = meta.RunRunning
			r.StateHistory = append(r.StateHistory, meta.StateEvent{UpdateTime: now, State: meta.RunRunning})
			return nil
		})
		if err != nil {
			return err
		}
		rs.run = r
	}
	e.mu.Lock()
	evs := rs.events
	rs.events = nil
	if rs.cancelRequested || rs.run.State == meta.RunCanceling {
		rs.info.Canceling = true
	}
	e.mu.Unlock()
	// Task events and the first planning step are persisted together; nothing is acted on
	// before that commit.
	carry := &meta.Writes{}
	var finished, ended []string
	for _, ev := range evs {
		if done := e.applyEvent(ctx, rs, ev, carry); done {
			finished = append(finished, ev.execID)
			ended = append(ended, runtimeID(id, ev.execID, ev.attempt))
		}
	}
	// Slots are in-memory only: free them now so this very step can use them.
	e.releaseSlots(id, ended...)
	for round := 0; round < 1000; round++ {
		slots := e.claimSlots()
		out := plan(planInput{
			Pipe: rs.pipe, Run: rs.info, Execs: rs.list(), Now: e.cfg.Now(),
			Slots: slots, NewID: e.execIDs.new,
		})
		w := carry
		carry = &meta.Writes{}
		w.Executions = append(w.Executions, out.Changed...)
		for _, x := range out.Changed {
			rs.execs[x.ID] = x // a failed commit drops the whole view (see worker)
		}
		rs.pendingArts = map[string]*meta.Artifact{}
		for _, a := range w.Artifacts {
			rs.pendingArts[a.ID] = a
		}
		// Cache entries of tasks that just succeeded are committed with this step: a task
		// of the same run launched in it may already reuse them, as on KFP.
		rs.pendingCache = map[string]*meta.CacheEntry{}
		for _, ce := range w.CacheEntries {
			rs.pendingCache[ce.Scope+"\x00"+ce.Fingerprint] = ce
		}
		var starts []*startReq
		settled := false
		for _, x := range out.Launch {
			res := e.prepare(ctx, rs, x)
			w.Executions = append(w.Executions, res.exec)
			w.Artifacts = append(w.Artifacts, res.artifacts...)
			if res.start != nil {
				starts = append(starts, res.start)
			} else {
				settled = true
			}
		}
		if slots >= 0 {
			e.unclaimSlots(id, slots-len(starts))
		}
		e.addUnsaved(rs, w)
		if err := e.commit(ctx, rs, w); err != nil {
			e.unclaimSlots(id, len(starts))
			if errors.Is(err, meta.ErrNotFound) {
				e.forget(rs) // deleted while this step was planned
				return nil
			}
			return err
		}
		rs.unsaved = nil
		rs.pendingArts = nil
		rs.pendingCache = nil
		if len(finished) > 0 {
			e.releaseTasks(rs, finished)
			finished = nil
		}
		for _, s := range starts {
			e.startTask(rs, s)
		}
		for _, x := range out.Kill {
			if t := rs.handles[x.ID]; t != nil {
				go func() {
					if err := t.Kill(context.Background(), e.cfg.KillGrace); err != nil {
						e.log.Warn("kill task", "run", id, "task", x.TaskName, "err", err)
					}
				}()
			}
		}
		e.mu.Lock()
		recheck := false
		if out.Starved {
			e.starved[id] = true
			// A slot freed after this step claimed none woke the runs starved then, not
			// this one: look again rather than wait for the next release.
			recheck = e.freeSlotsLocked() > 0
		} else {
			delete(e.starved, id)
		}
		e.mu.Unlock()
		if recheck {
			e.enqueue(id)
		}
		if out.Done {
			return e.finishRun(ctx, id, out.State, out.Error)
		}
		if !out.Wake.IsZero() {
			e.setWake(rs, out.Wake)
		}
		if !settled {
			return nil
		}
	}
	return nil
}

func (e *Engine) setWake(rs *runState, at time.Time) {
	if !rs.wakeAt.IsZero() && !at.Before(rs.wakeAt) && rs.wakeAt.After(e.cfg.Now()) {
		return
	}
	if rs.wake != nil {
		rs.wake.Stop()
	}
	rs.wakeAt = at
	d := time.Until(at)
	if d < 0 {
		d = 0
	}
	id := rs.id
	rs.wake = time.AfterFunc(d, func() { e.enqueue(id) })
}

// runningFlush is how long a RUNNING state may stay unsaved.
const runningFlush = 100 * time.Millisecond

func (e *Engine) armFlush(rs *runState) {
	if rs.flush != nil {
		return
	}
	id := rs.id
	rs.flush = time.AfterFunc(runningFlush, func() { e.enqueue(id) })
}

// addUnsaved adds the records changed only in memory (RUNNING states) to w.
func (e *Engine) addUnsaved(rs *runState, w *meta.Writes) {
	if len(rs.unsaved) == 0 {
		return
	}
	have := map[string]bool{}
	for _, x := range w.Executions {
		have[x.ID] = true
	}
	for id := range rs.unsaved {
		if x := rs.execs[id]; x != nil && !have[id] {
			w.Executions = append(w.Executions, x)
		}
	}
	if rs.flush != nil {
		rs.flush.Stop()
		rs.flush = nil
	}
}

// releaseTasks deletes finished runtime tasks, once their end is persisted, and gives back
// their GPUs.
func (e *Engine) releaseTasks(rs *runState, execIDs []string) {
	for _, id := range execIDs {
		e.mu.Lock()
		l := rs.leases[id]
		delete(rs.leases, id)
		e.mu.Unlock()
		if l != nil {
			l.Release()
		}
		if t := rs.handles[id]; t != nil {
			delete(rs.handles, id)
			go func() {
				if err := t.Delete(context.Background()); err != nil {
					e.log.Debug("delete task", "task", t.ID(), "err", err)
				}
			}()
		}
	}
}

// applyEvent records one task event in w. It returns true when the attempt is over.
func (e *Engine) applyEvent(ctx context.Context, rs *runState, ev taskEvent, w *meta.Writes) bool {
	x := rs.execs[ev.execID]
	if x == nil || x.Attempt != ev.attempt || (x.State != meta.ExecQueued && x.State != meta.ExecRunning) {
		return ev.kind == evExited || ev.kind == evStartFailed
	}
	now := e.cfg.Now()
	switch ev.kind {
	case evWaiting:
		if x.State == meta.ExecQueued && x.Waiting != ev.waiting {
			c := cloneExec(x)
			c.Waiting = ev.waiting
			w.Executions = append(w.Executions, c)
			rs.execs[c.ID] = c
		}
		return false
	case evStarted:
		// RUNNING is not needed for recovery (QUEUED plus the runtime id is), so it is
		// persisted lazily: with the next commit of the run, or by the flush timer.
		rs.handles[x.ID] = ev.task
		if x.State == meta.ExecQueued {
			c := cloneExec(x)
			c.Waiting = ""
			c.GPUs = ev.gpus
			setExecState(c, meta.ExecRunning, "", now)
			rs.execs[c.ID] = c
			if rs.unsaved == nil {
				rs.unsaved = map[string]bool{}
			}
			rs.unsaved[c.ID] = true
			e.armFlush(rs)
		}
		return false
	case evStartFailed:
		if ev.task != nil {
			rs.handles[x.ID] = ev.task
		}
		c := e.attemptOver(rs, x, fmt.Sprintf("task %q could not start: %v", x.TaskName, ev.err), -1, now)
		w.Executions = append(w.Executions, c)
		rs.execs[c.ID] = c
		return true
	default:
		rs.handles[x.ID] = ev.task
		var c *meta.Execution
		st := ev.status
		switch {
		case ev.err != nil:
			c = e.attemptOver(rs, x, fmt.Sprintf("task %q: waiting for the task: %v", x.TaskName, ev.err), -1, now)
		case rs.info.Canceling:
			c = cloneExec(x)
			c.ExitCode = st.Code
			setExecState(c, meta.ExecCanceled, fmt.Sprintf("task %q was terminated", x.TaskName), now)
		case e.podDeleted(x.RuntimeTaskID):
			c = e.attemptOver(rs, x, fmt.Sprintf("task %q failed: its pod %s was deleted (exit code %d)", x.TaskName, x.RuntimeTaskID, st.Code), st.Code, now)
		case st.Code != 0:
			msg := fmt.Sprintf("task %q failed: exit code %d", x.TaskName, st.Code)
			if st.OOMKilled {
				msg += " (killed: out of memory)"
			}
			if st.Message != "" {
				msg += ": " + st.Message
			}
			if hint := pyenv.MissingHint(logTail(x.LogPath, 40), e.cfg.PackageUpstream); hint != "" {
				msg = fmt.Sprintf("task %q failed: %s", x.TaskName, hint)
			} else if tail := logTail(x.LogPath, 5); tail != "" {
				msg += "; last output: " + tail
			}
			c = e.attemptOver(rs, x, msg, st.Code, now)
		default:
			var arts []*meta.Artifact
			var ce *meta.CacheEntry
			var err error
			c, arts, ce, err = e.collectOutputs(ctx, rs, x, now)
			if err != nil {
				c = e.attemptOver(rs, x, fmt.Sprintf("task %q: %v", x.TaskName, err), 0, now)
			} else {
				w.Artifacts = append(w.Artifacts, arts...)
				if ce != nil {
					w.CacheEntries = append(w.CacheEntries, ce)
				}
			}
		}
		if !st.StartedAt.IsZero() && c.StartedAt.IsZero() {
			c.StartedAt = st.StartedAt
		}
		w.Executions = append(w.Executions, c)
		rs.execs[c.ID] = c
		return true
	}
}

// attemptOver ends a failed attempt: back to PENDING after the retry policy's backoff when
// retries are left, FAILED otherwise.
func (e *Engine) attemptOver(rs *runState, x *meta.Execution, msg string, code int, now time.Time) *meta.Execution {
	c := cloneExec(x)
	if code >= 0 {
		c.ExitCode = code
	}
	if rs.info.Canceling {
		setExecState(c, meta.ExecCanceled, msg, now)
		return c
	}
	t, _ := e.taskOf(rs, x)
	if t != nil && t.RetryPolicy != nil && x.Attempt < t.RetryPolicy.MaxRetryCount {
		c.Attempt = x.Attempt + 1
		c.RetryAt = now.Add(backoff(t.RetryPolicy, x.Attempt))
		c.RuntimeTaskID = ""
		setExecState(c, meta.ExecPending, fmt.Sprintf("%s (attempt %d of %d; retrying)", msg, x.Attempt+1, t.RetryPolicy.MaxRetryCount+1), now)
		return c
	}
	setExecState(c, meta.ExecFailed, msg, now)
	return c
}

// backoff is the delay before retry number attempt+1: duration*factor^attempt, capped.
func backoff(p *spec.RetryPolicy, attempt int) time.Duration {
	d, _ := time.ParseDuration(p.BackoffDuration)
	if d <= 0 {
		return 0
	}
	f := p.BackoffFactor
	if f <= 0 {
		f = 2
	}
	max := time.Hour
	if m, err := time.ParseDuration(p.BackoffMaxDuration); err == nil && m > 0 {
		max = m
	}
	v := float64(d)
	for i := 0; i < attempt; i++ {
		v *= f
		if v > float64(max) {
			return max
		}
	}
	if time.Duration(v) > max {
		return max
	}
	return time.Duration(v)
}

func cloneExec(x *meta.Execution) *meta.Execution {
	c := *x
	c.StateHistory = append([]meta.StateEvent(nil), x.StateHistory...)
	return &c
}

func setExecState(c *meta.Execution, state, msg string, now time.Time) {
	c.State = state
	c.Error = msg
	ev := meta.StateEvent{UpdateTime: now, State: state}
	if msg != "" {
		ev.Error = &meta.Status{Code: 2, Message: msg}
	}
	c.StateHistory = append(c.StateHistory, ev)
	switch {
	case state == meta.ExecRunning && c.StartedAt.IsZero():
		c.StartedAt = now
	case meta.IsTerminalExecState(state):
		c.FinishedAt = now
	}
}

// componentOfDAG returns the component a DAG-like record (root, DAG, iteration) executes.
func (e *Engine) componentOfDAG(rs *runState, d *meta.Execution) *spec.ComponentSpec {
	if d == nil {
		return nil
	}
	switch d.Kind {
	case meta.KindRoot:
		return rs.pipe.Spec.Root
	case meta.KindIteration:
		t, _ := e.taskOf(rs, rs.execs[d.ParentID])
		if t == nil {
			return nil
		}
		return rs.pipe.Spec.Components[t.ComponentRef.Name]
	default:
		t, _ := e.taskOf(rs, d)
		if t == nil {
			return nil
		}
		return rs.pipe.Spec.Components[t.ComponentRef.Name]
	}
}

// taskOf returns the DAG task a record executes and its component.
func (e *Engine) taskOf(rs *runState, x *meta.Execution) (*spec.PipelineTaskSpec, *spec.ComponentSpec) {
	if x == nil || x.Kind == meta.KindRoot {
		return nil, nil
	}
	parent := rs.execs[x.ParentID]
	pc := e.componentOfDAG(rs, parent)
	if pc == nil || pc.DAG == nil {
		return nil, nil
	}
	t := pc.DAG.Tasks[x.TaskKey]
	if t == nil {
		return nil, nil
	}
	return t, rs.pipe.Spec.Components[t.ComponentRef.Name]
}
