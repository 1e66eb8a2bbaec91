package host

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kfp-box/kfp-box/runtime"
)

var _ runtime.Task = (*task)(nil)

// deadlinePast is a read deadline that has passed, used to interrupt blocked reads.
var deadlinePast = time.Unix(1, 0)

// unknownExit is the status of a task whose shim died without recording an exit.
const unknownExit = "shim died; task state unknown"

// task is one host task. All its state is in its directory; done is set only when this
// Runtime started the task (it closes when the shim reports the exit recorded, or dies).
type task struct {
	r      *Runtime
	id     string
	dir    string
	labels map[string]string
	done   chan struct{}

	mu   sync.Mutex
	exit *runtime.ExitStatus
}

// ID returns the task's id.
func (t *task) ID() string { return t.id }

// Labels returns the spec's labels.
func (t *task) Labels() map[string]string { return t.labels }

// recorded returns the exit status if the task has exited and the shim recorded it.
func (t *task) recorded() (runtime.ExitStatus, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.exit != nil {
		return *t.exit, true
	}
	var st runtime.ExitStatus
	if err := readJSON(t.dir, exitFile, &st); err != nil {
		return st, false
	}
	t.exit = &st
	return st, true
}

// Wait blocks until the task's exit is recorded, then returns it.
func (t *task) Wait(ctx context.Context) (runtime.ExitStatus, error) {
	if st, ok := t.recorded(); ok {
		return st, nil
	}
	if err := t.waitShim(ctx); err != nil {
		return runtime.ExitStatus{}, err
	}
	if st, ok := t.recorded(); ok {
		return st, nil
	}
	if _, err := os.Stat(t.dir); errors.Is(err, os.ErrNotExist) {
		return runtime.ExitStatus{}, fmt.Errorf("task %q: %w", t.id, runtime.ErrNotFound)
	}
	return runtime.ExitStatus{Code: -1, ExitedAt: time.Now(), Message: unknownExit}, nil
}

// waitShim returns once the task's exit is recorded or its shim is gone, or ctx's error.
func (t *task) waitShim(ctx context.Context) error {
	if t.done != nil {
		select {
		case <-t.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// A task adopted from an earlier kfp-box: ask the shim that runs it.
	var st shimState
	var c *net.UnixConn
	if err := readJSON(t.dir, stateFile, &st); err == nil {
		c, err = requestTo(t.r.sockPath(st.ShimPID), "wait "+t.dir)
		if err != nil {
			// Its socket is gone: the shim died (or exited having recorded the exit).
			return waitProcess(ctx, st.ShimPID, st.ShimStartTime)
		}
	} else {
		// No state yet: a shim may be starting it; if none is, there is nothing to wait on.
		sock, status := t.r.findShim(t.dir)
		if status != "running" {
			return nil
		}
		if c, err = requestTo(sock, "wait "+t.dir); err != nil {
			return nil
		}
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(deadlinePast) })
	defer stop()
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil // "exited", "unknown", or EOF: the shim died
}

// waitProcess waits for a process that is not our child to end. It watches a pidfd in Go's
// poller, so waiting costs no thread; pid reuse is ruled out by the start time.
func waitProcess(ctx context.Context, pid int, startTime uint64) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return pollProcess(ctx, pid, startTime)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	if st, err := procStartTime(pid); err != nil || st != startTime || procZombie(pid) {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return pollProcess(ctx, pid, startTime)
	}
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		// Not in the poller: fall back to polling.
		return pollProcess(ctx, pid, startTime)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(deadlinePast) })
	defer stop()
	err = rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, _ := unix.Poll(fds, 0)
		return n > 0
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// pollProcess is waitProcess for kernels without pidfds: it checks /proc every 50 ms.
func pollProcess(ctx context.Context, pid int, startTime uint64) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, err := procStartTime(pid); err != nil || st != startTime || procZombie(pid) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// shimAlive reports whether the shim described by st still runs.
func shimAlive(st shimState) bool {
	cur, err := procStartTime(st.ShimPID)
	return err == nil && cur == st.ShimStartTime && !procZombie(st.ShimPID)
}

// taskAlive reports whether the task's process described by st still runs.
func taskAlive(st shimState) bool {
	cur, err := procStartTime(st.PID)
	return err == nil && cur == st.PIDStartTime && !procZombie(st.PID)
}

// Kill asks the shim to send SIGTERM to the task's process group and SIGKILL after grace.
// It returns once the request is delivered; killing an exited task does nothing.
func (t *task) Kill(_ context.Context, grace time.Duration) error {
	if _, ok := t.recorded(); ok {
		return nil
	}
	var st shimState
	if err := readJSON(t.dir, stateFile, &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(t.dir); errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("task %q: %w", t.id, runtime.ErrNotFound)
			}
			return nil // the shim died before the task started
		}
		return fmt.Errorf("task %q: %w", t.id, err)
	}
	if err := writeJSON(t.dir, killFile, killRequest{Grace: grace}); err != nil {
		return fmt.Errorf("task %q: kill: %w", t.id, err)
	}
	if c, err := requestTo(t.r.sockPath(st.ShimPID), "kill "+t.dir); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(shimReadyTimeout))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if line == "ok\n" {
			return nil
		}
	}
	if _, ok := t.recorded(); ok {
		return nil
	}
	// No shim runs the task any more, and none recorded its exit: kill the task directly,
	// if it is still ours.
	if taskAlive(st) {
		signalGroup(st.PID, syscall.SIGKILL)
	}
	return nil
}

// Delete removes the task's state directory. The log file is kept.
func (t *task) Delete(_ context.Context) error {
	if _, err := os.Stat(t.dir); errors.Is(err, os.ErrNotExist) {
		t.r.forget(t.id)
		return fmt.Errorf("task %q: %w", t.id, runtime.ErrNotFound)
	}
	if _, ok := t.recorded(); !ok {
		var st shimState
		if err := readJSON(t.dir, stateFile, &st); err == nil {
			if shimAlive(st) && taskAlive(st) {
				return fmt.Errorf("task %q: still running; kill it and wait first", t.id)
			}
			// Unknown state: make sure nothing of the task survives its record.
			if cur, err := procStartTime(st.PID); err == nil && cur == st.PIDStartTime {
				signalGroup(st.PID, syscall.SIGKILL)
			}
			_ = removeCgroupDirs(st.Cgroups)
		}
	}
	// Remove the state first, then the cached handle: a concurrent Lookup or List that read
	// the state before it went would otherwise cache a task that no longer exists.
	err := os.RemoveAll(t.dir)
	t.r.forget(t.id)
	if err != nil {
		return fmt.Errorf("task %q: delete: %w", t.id, err)
	}
	return nil
}
