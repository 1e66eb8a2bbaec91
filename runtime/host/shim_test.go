package host

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
)

// shimPID returns the pid of the shim r is attached to.
func shimPID(t *testing.T, r *Runtime) int {
	t.Helper()
	pid, ok := r.currentShim()
	if !ok {
		t.Fatal("no current shim")
	}
	return pid
}

func taskState(t *testing.T, r *Runtime, id string) shimState {
	t.Helper()
	var st shimState
	if err := readJSON(filepath.Join(r.dir, id), stateFile, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func startWait(t *testing.T, r *Runtime, spec runtime.TaskSpec, wantCode int) {
	t.Helper()
	tk, err := r.Start(testCtx(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := tk.Wait(testCtx(t)); err != nil || st.Code != wantCode {
		t.Fatalf("wait %s = %+v, %v; want code %d", spec.ID, st, err, wantCode)
	}
}

// TestShimLifetime checks that one shim serves every task of a Runtime, outlives a closed
// Runtime while a task runs, and exits once no Runtime is attached and no task runs.
func TestShimLifetime(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, &Settings{MountNamespaces: false})
	if err != nil {
		t.Fatal(err)
	}
	pid := shimPID(t, r)
	for i := range 3 {
		id := fmt.Sprintf("t%d", i)
		startWait(t, r, runtime.TaskSpec{ID: id, Args: []string{"true"}, LogPath: filepath.Join(dir, id+".log")}, 0)
		if st := taskState(t, r, id); st.ShimPID != pid {
			t.Errorf("task %s ran under shim %d, want the attached shim %d", id, st.ShimPID, pid)
		}
	}
	ctl := filepath.Join(dir, "go")
	tk, err := r.Start(testCtx(t), runtime.TaskSpec{ID: "long", LogPath: filepath.Join(dir, "long.log"),
		Args: []string{"sh", "-c", "while [ ! -e " + ctl + " ]; do sleep 0.02; done"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	time.Sleep(200 * time.Millisecond)
	if processGone(pid) {
		t.Fatal("the shim exited while its task runs")
	}
	if err := os.WriteFile(ctl, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := tk.Wait(testCtx(t)); err != nil || st.Code != 0 {
		t.Fatalf("wait = %+v, %v", st, err)
	}
	waitFor(t, "the idle shim to exit", func() bool { return processGone(pid) })
	if _, err := os.Stat(r.sockPath(pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the exited shim left its socket: %v", err)
	}
}

// TestShimRestartedAfterDeath kills the shim between tasks: the next Start makes a new one.
func TestShimRestartedAfterDeath(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, &Settings{MountNamespaces: false})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	old := shimPID(t, r)
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed shim to go", func() bool { return processGone(old) })
	startWait(t, r, runtime.TaskSpec{ID: "after", Args: []string{"true"}, LogPath: filepath.Join(dir, "after.log")}, 0)
	if st := taskState(t, r, "after"); st.ShimPID == old {
		t.Errorf("task ran under the dead shim %d", old)
	}
}

// TestShimOfOtherBinaryRetired plays an upgrade of kfp-box while a task runs: the new
// binary retires the old shim, whose task still runs to its end and can be killed and
// waited on, and new tasks go to a shim of the new binary.
func TestShimOfOtherBinaryRetired(t *testing.T) {
	requireNamespaces(t)
	dir, ctl := t.TempDir(), t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	oldBin := filepath.Join(t.TempDir(), "kfp-box-old")
	copyFile(t, exe, oldBin)

	r1, err := Open(testCtx(t), runtime.Options{DataDir: dir}, &Settings{Shim: oldBin, MountNamespaces: true})
	if err != nil {
		t.Fatal(err)
	}
	oldPID := shimPID(t, r1)
	waiter := runtime.TaskSpec{ID: "waiter", LogPath: filepath.Join(dir, "waiter.log"),
		Mounts: []runtime.Mount{{Source: ctl, Target: "/ctl"}},
		Args:   []string{"sh", "-c", "while [ ! -e /ctl/go ]; do sleep 0.02; done; exit 3"}}
	sleeper := runtime.TaskSpec{ID: "sleeper", Args: []string{"sleep", "600"}, LogPath: filepath.Join(dir, "sleeper.log")}
	for _, s := range []runtime.TaskSpec{waiter, sleeper} {
		if _, err := r1.Start(testCtx(t), s); err != nil {
			t.Fatal(err)
		}
	}
	r1.Close() // the old kfp-box stops

	r2, err := Open(testCtx(t), runtime.Options{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	newPID := shimPID(t, r2)
	if newPID == oldPID {
		t.Fatalf("the new binary attached to the old binary's shim %d", oldPID)
	}
	startWait(t, r2, runtime.TaskSpec{ID: "fresh", Args: []string{"true"}, LogPath: filepath.Join(dir, "fresh.log")}, 0)
	if st := taskState(t, r2, "fresh"); st.ShimPID != newPID {
		t.Errorf("new task ran under shim %d, want the new shim %d", st.ShimPID, newPID)
	}

	tkS, err := r2.Lookup(testCtx(t), "sleeper")
	if err != nil {
		t.Fatal(err)
	}
	if err := tkS.Kill(testCtx(t), 0); err != nil {
		t.Fatal(err)
	}
	if st, err := tkS.Wait(testCtx(t)); err != nil || st.Code != 128+int(syscall.SIGKILL) {
		t.Fatalf("wait on the killed task of the retired shim = %+v, %v", st, err)
	}
	tkW, err := r2.Lookup(testCtx(t), "waiter")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(testCtx(t), 100*time.Millisecond)
	defer cancel()
	if _, err := tkW.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait on the running task: %v, want deadline exceeded", err)
	}
	if processGone(oldPID) {
		t.Fatal("the retired shim exited while its task runs")
	}
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := tkW.Wait(testCtx(t)); err != nil || st.Code != 3 {
		t.Fatalf("wait = %+v, %v; want code 3", st, err)
	}
	waitFor(t, "the retired shim to exit after its last task", func() bool { return processGone(oldPID) })
	if processGone(newPID) {
		t.Error("the new shim exited while a Runtime is attached")
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLongDataDir runs a task with a data dir whose shim socket path exceeds sun_path.
func TestLongDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, &Settings{MountNamespaces: false})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if sock := r.sockPath(shimPID(t, r)); len(sock) <= 108 {
		t.Fatalf("socket path %s is short enough for sun_path: the test proves nothing", sock)
	}
	startWait(t, r, runtime.TaskSpec{ID: "t", Args: []string{"true"}, LogPath: filepath.Join(dir, "t.log")}, 0)
}

// TestShimRefusesBadRequests talks to the shim directly: it must only start tasks in its
// own tasks directory, and answer an unknown request with an error.
func TestShimRefusesBadRequests(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, &Settings{MountNamespaces: false})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sock := r.sockPath(shimPID(t, r))
	for req, want := range map[string]string{
		"start /etc":                  "error: ",
		"start " + r.dir + "/../shim": "error: ",
		"start " + r.dir + "/nospec":  "error: ",
		"kill " + r.dir + "/nothing":  "unknown",
		"wait " + r.dir + "/nothing":  "unknown",
		"reboot":                      "error: unknown request",
	} {
		c, err := requestTo(sock, req)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !strings.HasPrefix(line, want) {
			t.Errorf("%q → %q, %v; want %q…", req, line, err, want)
		}
	}
	if err := os.Mkdir(filepath.Join(r.dir, "nospec"), 0o700); err == nil {
		c, _ := requestTo(sock, "start "+filepath.Join(r.dir, "nospec"))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, "error: ") || !strings.Contains(line, specFile) {
			t.Errorf("start without a spec → %q, want an error naming %s", line, specFile)
		}
	}
}

// TestConcurrentStartsKeepTheirCgroups starts tasks with different memory limits at once:
// the shim forks each from its own thread, moved alone into the task's cgroup, so no task
// may be born in another's.
func TestConcurrentStartsKeepTheirCgroups(t *testing.T) {
	requireNamespaces(t)
	if why := cgroupsUnusable(); why != "" {
		t.Skip(why)
	}
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("cg%d-%d", os.Getpid(), i) // cgroups are machine-wide
			spec := runtime.TaskSpec{ID: id, Args: []string{"cat", "/proc/self/cgroup"},
				Resources: runtime.Resources{MemoryLimit: int64(64+i) << 20}, LogPath: filepath.Join(dir, id+".log")}
			tk, err := r.Start(testCtx(t), spec)
			if err != nil {
				errs <- err
				return
			}
			if st, err := tk.Wait(testCtx(t)); err != nil || st.Code != 0 {
				errs <- fmt.Errorf("%s: wait = %+v, %v", id, st, err)
				return
			}
			want := "/" + cgroupParent + "/" + id + "\n"
			if log := readLog(t, spec.LogPath); !strings.Contains(log, want) {
				errs <- fmt.Errorf("%s is not in its own cgroup (want a line ending %q):\n%s", id, want, log)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The shim itself must be back where it was: in none of the tasks' cgroups.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", shimPID(t, r)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "/"+cgroupParent+"/cg") {
		t.Errorf("the shim stayed in a task's cgroup:\n%s", data)
	}
}

// TestStartOfDeadClientDropped checks both halves of a Start cut short by the death of
// kfp-box: the shim does not start a task whose requester has gone, and Lookup from a
// restarted kfp-box forgets such a task (and an empty directory left before the spec was
// written) so that the same id starts afresh.
func TestStartOfDeadClientDropped(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, &Settings{MountNamespaces: false})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	marker := filepath.Join(dir, "ran")
	spec := runtime.TaskSpec{ID: "orphan", Args: []string{"touch", marker}, LogPath: filepath.Join(dir, "orphan.log")}
	taskDir := filepath.Join(r.dir, spec.ID)
	if err := os.Mkdir(taskDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(taskDir, specFile, spec); err != nil {
		t.Fatal(err)
	}
	// The request, then end of file: as the shim sees a client that died right after. The
	// shim is stopped meanwhile, so that it reads both at once. SIGSTOP is asynchronous:
	// kill returns before the shim's threads stop, and a thread still running could accept
	// the connection and read the request before its end of file is sent (then the shim
	// rightly starts the task, and the reply is "ok"). So the request is sent only once
	// every thread of the shim is seen stopped.
	pid := shimPID(t, r)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) // when a Fatal below leaves it stopped
	waitStopped(t, pid)
	c, err := requestTo(r.sockPath(pid), "start "+taskDir)
	if err == nil {
		err = c.CloseWrite()
	}
	if cerr := syscall.Kill(pid, syscall.SIGCONT); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, err := io.ReadAll(c)
	c.Close()
	if err != nil || len(reply) != 0 {
		t.Fatalf("reply to a gone client = %q, %v; want nothing", reply, err)
	}
	time.Sleep(100 * time.Millisecond)
	if fileExists(marker) || fileExists(filepath.Join(taskDir, stateFile)) {
		t.Fatal("the shim started the task of a client that had gone")
	}

	// A restarted kfp-box (a fresh Runtime) finds the spec and no task.
	r2, err := Open(testCtx(t), runtime.Options{DataDir: dir}, &Settings{MountNamespaces: false})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := r2.Lookup(testCtx(t), spec.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("lookup of a task that never started: %v, want ErrNotFound", err)
	}
	if err := os.Mkdir(filepath.Join(r.dir, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Lookup(testCtx(t), "empty"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("lookup of an empty task directory: %v, want ErrNotFound", err)
	}
	startWait(t, r2, spec, 0)
	if !fileExists(marker) {
		t.Error("the task started again did not run")
	}
	empty := spec
	empty.ID, empty.Args = "empty", []string{"true"}
	startWait(t, r2, empty, 0)
}

// waitStopped waits until every thread of process pid is in the stopped state ("T" in
// /proc/PID/task/TID/stat): the group stop a SIGSTOP begins is complete.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("every thread of process %d to stop", pid), func() bool {
		stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		if err != nil || len(stats) == 0 {
			return false
		}
		for _, p := range stats {
			data, err := os.ReadFile(p)
			if err != nil {
				return false // a thread that ended between the glob and the read: look again
			}
			// The state is the field after the command name, which ends at the last ')'.
			i := strings.LastIndexByte(string(data), ')')
			if i < 0 || i+2 >= len(data) || data[i+2] != 'T' {
				return false
			}
		}
		return true
	})
}
