package containerd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/kfp-box/kfp-box/runtime"
)

// errRetry tells Wait to look at the task again.
var errRetry = errors.New("retry")

// harvestTimeout bounds recording an exit once the task has exited, whatever the caller's
// context: a half-recorded exit would have to be redone after a restart.
const harvestTimeout = 30 * time.Second

// task is one kfp-box task: a containerd container, its containerd task while the process
// exists, and the exit status recorded in the container's labels once it has exited.
type task struct {
	rt        *Runtime
	id        string
	labels    map[string]string // user labels only
	startedAt time.Time         // set when this process started the task
	harvested atomic.Bool       // the containerd task is known to be deleted
}

var _ runtime.Task = (*task)(nil)

// Start creates the container and its task and starts it. The log binary (see LoggerMain)
// is started by the shim and writes spec.LogPath.
func (r *Runtime) Start(ctx context.Context, spec runtime.TaskSpec) (runtime.Task, error) {
	if err := validate(spec); err != nil {
		return nil, err
	}
	ctx = r.nsCtx(ctx)
	if _, err := r.client.LoadContainer(ctx, spec.ID); err == nil {
		return nil, fmt.Errorf("task %q: %w", spec.ID, runtime.ErrAlreadyExists)
	} else if !errdefs.IsNotFound(err) {
		return nil, mapErr(spec.ID, err)
	}
	img, err := r.ensureImage(ctx, spec.Image, spec.PullPolicy)
	if err != nil {
		return nil, fmt.Errorf("task %q: %w", spec.ID, err)
	}
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o755); err != nil {
		return nil, fmt.Errorf("task %q: log directory: %w", spec.ID, err)
	}
	f, err := os.OpenFile(spec.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("task %q: log file: %w", spec.ID, err)
	}
	_ = f.Close()
	sopts, err := r.specOpts(spec, img)
	if err != nil {
		return nil, err
	}
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[labelManaged] = "true"
	labels[labelLogPath] = spec.LogPath
	// Hold the task's lock from create to start, so a concurrent Wait never mistakes a
	// container whose task is about to be created for one whose start was interrupted.
	lock := r.taskLock(spec.ID)
	lock.Lock()
	defer lock.Unlock()
	ctr, err := r.client.NewContainer(ctx, spec.ID,
		client.WithImage(img),
		client.WithSnapshotter(r.cfg.Snapshotter),
		client.WithNewSnapshot(spec.ID, img),
		client.WithRuntime(runcRuntime, nil),
		client.WithNewSpec(sopts...),
		client.WithContainerLabels(labels),
	)
	if err != nil {
		if !errdefs.IsAlreadyExists(err) {
			// The snapshot may have been prepared before the container record failed.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), harvestTimeout)
			_ = r.client.SnapshotService(r.cfg.Snapshotter).Remove(dctx, spec.ID)
			cancel()
		}
		return nil, mapErr(spec.ID, err)
	}
	cleanup := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), harvestTimeout)
		defer cancel()
		_ = ctr.Delete(dctx, client.WithSnapshotCleanup)
	}
	ct, err := ctr.NewTask(ctx, cio.BinaryIO(r.cfg.LoggerBinary, map[string]string{LoggerCommand: spec.LogPath}))
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("task %q: create: %w", spec.ID, err)
	}
	if err := ct.Start(ctx); err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), harvestTimeout)
		_, _ = ct.Delete(dctx, client.WithProcessKill)
		cancel()
		cleanup()
		return nil, fmt.Errorf("task %q: start: %w", spec.ID, err)
	}
	started := time.Now().UTC()
	// Recorded off the critical path: this process knows the time, a later one reads it.
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		lctx, cancel := context.WithTimeout(r.nsCtx(r.bg), harvestTimeout)
		defer cancel()
		if _, err := ctr.SetLabels(lctx, map[string]string{labelStartedAt: started.Format(time.RFC3339Nano)}); err != nil && !errdefs.IsNotFound(err) && r.bg.Err() == nil {
			r.log.Warn("recording start time", "task", spec.ID, "err", err)
		}
	}()
	return &task{rt: r, id: spec.ID, labels: userLabels(labels), startedAt: started}, nil
}

// userLabels drops kfp-box's own keys.
func userLabels(all map[string]string) map[string]string {
	out := make(map[string]string, len(all))
	for k, v := range all {
		if !strings.HasPrefix(k, labelPrefix) {
			out[k] = v
		}
	}
	return out
}

// Lookup finds a task started earlier, by this process or an earlier kfp-box.
func (r *Runtime) Lookup(ctx context.Context, id string) (runtime.Task, error) {
	ctx = r.nsCtx(ctx)
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, mapErr(id, err)
	}
	info, err := ctr.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return nil, mapErr(id, err)
	}
	if info.Labels[labelManaged] != "true" {
		return nil, fmt.Errorf("task %q: container not made by kfp-box: %w", id, runtime.ErrNotFound)
	}
	r.resumeKill(ctx, ctr, info.Labels)
	return &task{rt: r, id: id, labels: userLabels(info.Labels)}, nil
}

// List returns every kfp-box task in the namespace, running or exited but not deleted.
func (r *Runtime) List(ctx context.Context) ([]runtime.Task, error) {
	ctx = r.nsCtx(ctx)
	ctrs, err := r.client.Containers(ctx, fmt.Sprintf("labels.%q==true", labelManaged))
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	out := make([]runtime.Task, 0, len(ctrs))
	for _, ctr := range ctrs {
		info, err := ctr.Info(ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			continue
		}
		r.resumeKill(ctx, ctr, info.Labels)
		out = append(out, &task{rt: r, id: ctr.ID(), labels: userLabels(info.Labels)})
	}
	return out, nil
}

// ID returns the task id.
func (t *task) ID() string { return t.id }

// Labels returns the TaskSpec's labels.
func (t *task) Labels() map[string]string { return maps.Clone(t.labels) }

// Wait blocks until the task exits or ctx ends. The first Wait to see the exit records it
// in the container's labels and deletes the containerd task, which makes the shim close the
// log pipes and wait for the log binary: when Wait returns, the log file is complete.
func (t *task) Wait(ctx context.Context) (runtime.ExitStatus, error) {
	ctx = t.rt.nsCtx(ctx)
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return runtime.ExitStatus{}, err
		}
		st, done, err := t.waitOnce(ctx)
		switch {
		case done:
			return st, err
		case ctx.Err() != nil:
			return runtime.ExitStatus{}, ctx.Err()
		case errors.Is(err, errRetry):
		default:
			// containerd restarting, or the task deleted under us: look again.
			if err := t.backoff(ctx, attempt, err); err != nil {
				return runtime.ExitStatus{}, err
			}
		}
	}
}

// waitOnce makes one attempt at Wait. done is false when the attempt should be retried:
// err is then the transient cause (containerd unreachable, a broken Wait stream).
func (t *task) waitOnce(ctx context.Context) (_ runtime.ExitStatus, done bool, _ error) {
	ctr, err := t.rt.client.LoadContainer(ctx, t.id)
	if errdefs.IsNotFound(err) {
		return runtime.ExitStatus{}, true, mapErr(t.id, err)
	}
	if err != nil {
		return runtime.ExitStatus{}, false, err
	}
	info, err := ctr.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return runtime.ExitStatus{}, errdefs.IsNotFound(err), mapErr(t.id, err)
	}
	if st, ok := recorded(info.Labels); ok {
		// Another Wait may still be deleting the task; its lock marks the log complete.
		lock := t.rt.taskLock(t.id)
		lock.Lock()
		lock.Unlock() //nolint:staticcheck // an empty critical section waits for the harvester
		return st, true, nil
	}
	ct, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		// No process: kfp-box stopped between creating the container and starting it.
		st, err := t.harvest(ctx, ctr, nil, client.ExitStatus{}, "the task was never started (kfp-box stopped while starting it)")
		return st, err == nil || errdefs.IsNotFound(err), err
	}
	if err != nil {
		return runtime.ExitStatus{}, false, err
	}
	ch, err := ct.Wait(ctx)
	if err != nil {
		return runtime.ExitStatus{}, false, err
	}
	select {
	case <-ctx.Done():
		return runtime.ExitStatus{}, true, ctx.Err()
	case es := <-ch:
		if es.Error() != nil {
			return runtime.ExitStatus{}, false, es.Error()
		}
		st, err := t.harvest(ctx, ctr, ct, es, "")
		return st, err == nil || errdefs.IsNotFound(err), err
	}
}

// backoff waits a little before Wait looks again after a transient error (containerd
// restarting), giving up after about a minute.
func (t *task) backoff(ctx context.Context, attempt int, cause error) error {
	if attempt >= 60 {
		return fmt.Errorf("task %q: wait: %w", t.id, cause)
	}
	t.rt.log.Debug("wait: retrying", "task", t.id, "err", cause)
	d := time.Duration(min(attempt+1, 10)) * 100 * time.Millisecond
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// harvest records the exit (once) and deletes the containerd task, under the task's lock.
func (t *task) harvest(ctx context.Context, ctr client.Container, ct client.Task, es client.ExitStatus, message string) (runtime.ExitStatus, error) {
	lock := t.rt.taskLock(t.id)
	lock.Lock()
	defer lock.Unlock()
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), harvestTimeout)
	defer cancel()
	if st, ok := t.rt.exits.Load(t.id); ok {
		// Another Wait of this process recorded it while we waited for the lock.
		return st.(runtime.ExitStatus), nil
	}
	// The cached metadata is enough otherwise: this process records exits under the lock.
	info, err := ctr.Info(hctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return runtime.ExitStatus{}, mapErr(t.id, err)
	}
	if ct == nil {
		// Start may have created the task while we waited for the lock.
		if _, err := ctr.Task(hctx, nil); err == nil {
			return runtime.ExitStatus{}, errRetry
		}
	}
	st, ok := recorded(info.Labels)
	if !ok {
		st = runtime.ExitStatus{Code: int(es.ExitCode()), ExitedAt: es.ExitTime().UTC(), Message: message}
		if ct == nil {
			st.Code, st.ExitedAt = 255, time.Now().UTC()
		}
		st.StartedAt = t.startedAt
		if st.StartedAt.IsZero() {
			st.StartedAt, _ = time.Parse(time.RFC3339Nano, info.Labels[labelStartedAt])
		}
		if st.StartedAt.IsZero() {
			st.StartedAt = info.CreatedAt.UTC()
		}
		if st.ExitedAt.IsZero() || st.ExitedAt.Before(st.StartedAt) {
			st.ExitedAt = time.Now().UTC()
		}
		if ct != nil && st.Code != 0 && oomKilled(t.rt.cfg.Namespace, t.id) {
			st.OOMKilled = true
			st.Message = "killed by the kernel for exceeding its memory limit (OOMKilled)"
		}
		set := map[string]string{
			labelExitCode: strconv.Itoa(st.Code),
			labelExitedAt: st.ExitedAt.Format(time.RFC3339Nano),
			labelOOM:      strconv.FormatBool(st.OOMKilled),
		}
		if st.StartedAt != info.CreatedAt.UTC() {
			set[labelStartedAt] = st.StartedAt.Format(time.RFC3339Nano)
		}
		if st.Message != "" {
			set[labelMessage] = st.Message
		}
		if _, err := ctr.SetLabels(hctx, set); err != nil {
			return runtime.ExitStatus{}, fmt.Errorf("task %q: record exit: %w", t.id, err)
		}
	}
	if ct != nil {
		if _, err := ct.Delete(hctx); err != nil && !errdefs.IsNotFound(err) {
			return st, fmt.Errorf("task %q: delete process: %w", t.id, err)
		}
	}
	t.harvested.Store(true)
	t.rt.exits.Store(t.id, st)
	return st, nil
}

// recorded reads an exit status from the container's labels.
func recorded(labels map[string]string) (runtime.ExitStatus, bool) {
	codeStr, ok := labels[labelExitCode]
	if !ok {
		return runtime.ExitStatus{}, false
	}
	code, err := strconv.Atoi(codeStr)
	if err != nil {
		return runtime.ExitStatus{}, false
	}
	st := runtime.ExitStatus{Code: code, Message: labels[labelMessage], OOMKilled: labels[labelOOM] == "true"}
	st.StartedAt, _ = time.Parse(time.RFC3339Nano, labels[labelStartedAt])
	st.ExitedAt, _ = time.Parse(time.RFC3339Nano, labels[labelExitedAt])
	return st, true
}

// oomKilled reads the task's memory cgroup (cgroup v1 memory.oom_control or v2
// memory.events), which runc keeps until the containerd task is deleted.
func oomKilled(ns, id string) bool {
	for _, p := range []string{
		filepath.Join("/sys/fs/cgroup/memory", ns, id, "memory.oom_control"),
		filepath.Join("/sys/fs/cgroup", ns, id, "memory.events"),
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, " ")
			if k == "oom_kill" && v != "0" && v != "" {
				return true
			}
		}
		return false
	}
	return false
}

// Kill sends SIGTERM and, when the task is still running after grace, SIGKILL; with no
// grace it sends SIGKILL at once. It returns once the first signal is sent; the escalation
// runs in the background until the runtime is closed. Killing an exited task does nothing.
func (t *task) Kill(ctx context.Context, grace time.Duration) error {
	ctx = t.rt.nsCtx(ctx)
	ctr, err := t.rt.client.LoadContainer(ctx, t.id)
	if err != nil {
		return mapErr(t.id, err)
	}
	ct, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return mapErr(t.id, err)
	}
	sig := syscall.SIGTERM
	if grace <= 0 {
		sig = syscall.SIGKILL
	}
	var exited <-chan client.ExitStatus
	if sig == syscall.SIGTERM {
		// Subscribe before signalling, so the exit cannot slip between the two.
		if exited, err = ct.Wait(t.rt.nsCtx(t.rt.bg)); err != nil {
			return mapErr(t.id, err)
		}
	}
	if err := ct.Kill(ctx, sig); err != nil {
		if errdefs.IsNotFound(err) || isProcessDone(err) {
			return nil
		}
		return fmt.Errorf("task %q: kill: %w", t.id, err)
	}
	if sig == syscall.SIGKILL {
		return nil
	}
	deadline := time.Now().Add(grace)
	// Persist the deadline, so a kfp-box restarted during the grace period still escalates.
	if _, err := ctr.SetLabels(ctx, map[string]string{labelKillAt: deadline.UTC().Format(time.RFC3339Nano)}); err != nil {
		t.rt.log.Warn("kill: recording the deadline", "task", t.id, "err", err)
	}
	t.rt.escalate(t.id, ct, exited, deadline)
	return nil
}

// escalate sends SIGKILL to every process of the task at deadline unless it exits first or
// the runtime closes. One timer per task.
func (r *Runtime) escalate(id string, ct client.Task, exited <-chan client.ExitStatus, deadline time.Time) {
	r.locksMu.Lock()
	if r.escalating[id] {
		r.locksMu.Unlock()
		return
	}
	r.escalating[id] = true
	r.locksMu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.locksMu.Lock()
			delete(r.escalating, id)
			r.locksMu.Unlock()
		}()
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		select {
		case <-exited:
		case <-r.bg.Done():
		case <-timer.C:
			kctx, cancel := context.WithTimeout(r.nsCtx(r.bg), 10*time.Second)
			defer cancel()
			if err := ct.Kill(kctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) && !isProcessDone(err) {
				r.log.Warn("kill: SIGKILL after grace failed", "task", id, "err", err)
			}
		}
	}()
}

// resumeKill restarts the SIGKILL timer of a task that an earlier kfp-box was killing.
func (r *Runtime) resumeKill(ctx context.Context, ctr client.Container, labels map[string]string) {
	at, ok := labels[labelKillAt]
	if !ok {
		return
	}
	if _, done := recorded(labels); done {
		return
	}
	deadline, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return
	}
	ct, err := ctr.Task(ctx, nil)
	if err != nil {
		return
	}
	exited, err := ct.Wait(r.nsCtx(r.bg))
	if err != nil {
		return
	}
	r.escalate(ctr.ID(), ct, exited, deadline)
}

// isProcessDone matches the shim's "process already finished" error.
func isProcessDone(err error) bool {
	return err != nil && (errors.Is(err, errdefs.ErrNotFound) || strings.Contains(err.Error(), "process already finished"))
}

// Delete removes the container and its snapshot once the task has exited (recording the
// exit first when no Wait did). The log file is kept. A running task is refused.
func (t *task) Delete(ctx context.Context) error {
	ctx = t.rt.nsCtx(ctx)
	ctr, err := t.rt.client.LoadContainer(ctx, t.id)
	if err != nil {
		return mapErr(t.id, err)
	}
	var ct client.Task
	if !t.harvested.Load() {
		ct, err = ctr.Task(ctx, nil)
	} else {
		err = errdefs.ErrNotFound
	}
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return mapErr(t.id, err)
	default:
		status, err := ct.Status(ctx)
		if err != nil && !errdefs.IsNotFound(err) {
			return mapErr(t.id, err)
		}
		if err == nil && status.Status != client.Stopped {
			return fmt.Errorf("task %q is %s; kill it and wait before deleting: %w", t.id, status.Status, runtime.ErrInvalid)
		}
		if err == nil {
			es := client.NewExitStatus(status.ExitStatus, status.ExitTime, nil)
			if _, err := t.harvest(ctx, ctr, ct, *es, ""); err != nil {
				return err
			}
		}
	}
	if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil {
		return mapErr(t.id, err)
	}
	t.rt.locksMu.Lock()
	delete(t.rt.locks, t.id)
	t.rt.locksMu.Unlock()
	t.rt.exits.Delete(t.id)
	return nil
}

var _ runtime.FileCopier = (*Runtime)(nil)

// CopyOut implements runtime.FileCopier: the exited task's root file system (its snapshot,
// kept until Delete) is mounted read-only in a temporary directory for the copy.
func (r *Runtime) CopyOut(ctx context.Context, id, path, dst string) error {
	ctx = r.nsCtx(ctx)
	mounts, err := r.client.SnapshotService(r.cfg.Snapshotter).Mounts(ctx, id)
	if err != nil {
		return mapErr(id, err)
	}
	err = mount.WithReadonlyTempMount(ctx, mounts, func(root string) error {
		return runtime.CopyOut(root, path, dst)
	})
	if err != nil {
		return fmt.Errorf("task %q: %w", id, err)
	}
	return nil
}
