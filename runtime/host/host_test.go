package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/runtime/runtimetest"
)

// starterEnv makes the test binary start one task and exit at once, as a kfp-box that
// crashes right after Start. Its value is a JSON starterJob.
const starterEnv = "KFPBOX_HOST_TEST_STARTER"

type starterJob struct {
	DataDir string           `json:"data_dir"`
	Spec    runtime.TaskSpec `json:"spec"`
}

// TestMain lets this test binary act as the shim: the host runtime re-executes its own
// binary, which here is the test binary. It also plays the crashing kfp-box of
// TestTaskSurvivesKfpBoxExit.
func TestMain(m *testing.M) {
	if ShimMain() {
		return
	}
	if job := os.Getenv(starterEnv); job != "" {
		os.Exit(runStarter(job))
	}
	os.Exit(m.Run())
}

func runStarter(job string) int {
	var j starterJob
	if err := json.Unmarshal([]byte(job), &j); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r, err := Open(context.Background(), runtime.Options{DataDir: j.DataDir}, nil)
	if err == nil {
		_, err = r.Start(context.Background(), j.Spec)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0 // no Close: the process just ends
}

func openHost(t *testing.T) runtime.Runtime {
	t.Helper()
	rt, err := runtime.Open(context.Background(), ID, runtime.Options{
		DataDir: runtimetest.DataDir(t),
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, nil)
	if err != nil {
		t.Fatalf("open host runtime: %v", err)
	}
	return rt
}

func requireNamespaces(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("needs private mount namespaces (run the tests as root): %v", err)
	}
}

func TestConformance(t *testing.T) {
	requireNamespaces(t)
	opts := runtimetest.Options{NoCgroups: cgroupsUnusable()}
	runtimetest.Run(t, openHost, opts)
}

// cgroupsUnusable says why this machine cannot enforce task limits, or "".
func cgroupsUnusable() string {
	l, ok := detectCgroups("/sys/fs/cgroup")
	if !ok {
		return "no cgroup memory controller under /sys/fs/cgroup"
	}
	parent := filepath.Join(l.Root, cgroupParent)
	if !l.V2 {
		parent = filepath.Join(l.Root, "memory", cgroupParent)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "cannot create cgroups: " + err.Error()
	}
	return ""
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTaskSurvivesKfpBoxExit starts a task from another process that then exits, the way
// kfp-box stops or crashes, and re-adopts the task from this one.
func TestTaskSurvivesKfpBoxExit(t *testing.T) {
	requireNamespaces(t)
	dataDir, ctl := t.TempDir(), t.TempDir()
	spec := runtime.TaskSpec{
		ID:      "survivor",
		Args:    []string{"sh", "-c", `echo before; while [ ! -e /ctl/go ]; do sleep 0.02; done; echo after; exit 4`},
		Mounts:  []runtime.Mount{{Source: ctl, Target: "/ctl"}},
		LogPath: filepath.Join(t.TempDir(), "survivor.log"),
		Labels:  map[string]string{"run": "r1"},
	}
	job, _ := json.Marshal(starterJob{DataDir: dataDir, Spec: spec})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	starter := exec.Command(exe)
	starter.Env = append(os.Environ(), starterEnv+"="+string(job))
	if out, err := starter.CombinedOutput(); err != nil {
		t.Fatalf("starter: %v: %s", err, out)
	}

	r, err := Open(testCtx(t), runtime.Options{DataDir: dataDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tk, err := r.Lookup(testCtx(t), spec.ID)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if tk.Labels()["run"] != "r1" {
		t.Errorf("labels = %v", tk.Labels())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := tk.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait on the running task: %v, want deadline exceeded", err)
	}
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := tk.Wait(testCtx(t))
	if err != nil || st.Code != 4 {
		t.Fatalf("wait = %+v, %v; want code 4", st, err)
	}
	log, _ := os.ReadFile(spec.LogPath)
	if !strings.Contains(string(log), "stdout before\n") || !strings.Contains(string(log), "stdout after\n") {
		t.Errorf("log = %q, want both lines: the shim kept logging after its starter exited", log)
	}
	if err := tk.Delete(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// TestShimDied kills a shim and checks that the task is reported as unknown, and that
// Delete does not leave the task's process behind.
func TestShimDied(t *testing.T) {
	requireNamespaces(t)
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tk, err := r.Start(testCtx(t), runtime.TaskSpec{
		ID: "orphan", Args: []string{"sleep", "600"}, LogPath: filepath.Join(dir, "orphan.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var st shimState
	if err := readJSON(filepath.Join(dir, "host", "tasks", "orphan"), stateFile, &st); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(st.ShimPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// A fresh Runtime, so Wait goes through the pidfd path, not the status pipe.
	r2, err := Open(testCtx(t), runtime.Options{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	tk2, err := r2.Lookup(testCtx(t), "orphan")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range []runtime.Task{tk, tk2} {
		es, err := task.Wait(testCtx(t))
		if err != nil || es.Code != -1 || es.Message != unknownExit {
			t.Errorf("wait after the shim died = %+v, %v; want code -1 and %q", es, err, unknownExit)
		}
	}
	if err := tk2.Delete(testCtx(t)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	waitFor(t, "the orphaned task to be killed", func() bool {
		cur, err := procStartTime(st.PID)
		return err != nil || cur != st.PIDStartTime || procZombie(st.PID)
	})
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct {
		name    string
		spec    runtime.TaskSpec
		wantErr error
	}{
		{"command not found", runtime.TaskSpec{ID: "nf", Args: []string{"no-such-command-kfp"}}, runtime.ErrInvalid},
		{"no args", runtime.TaskSpec{ID: "noargs"}, runtime.ErrInvalid},
		{"bad id", runtime.TaskSpec{ID: "a/b", Args: []string{"true"}}, runtime.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.LogPath = filepath.Join(dir, tt.spec.ID+".log")
			_, err := r.Start(testCtx(t), tt.spec)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("start: %v, want %v", err, tt.wantErr)
			}
			// A failed start leaves nothing: the id is unknown and free.
			if _, err := r.Lookup(testCtx(t), tt.spec.ID); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("lookup after a failed start: %v, want ErrNotFound", err)
			}
		})
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = r.Start(testCtx(t), runtime.TaskSpec{ID: "late", Args: []string{"true"}, LogPath: filepath.Join(dir, "late.log")})
	if !errors.Is(err, runtime.ErrUnavailable) {
		t.Errorf("start after close: %v, want ErrUnavailable", err)
	}
}

func TestOpenNeedsDataDir(t *testing.T) {
	if _, err := New(context.Background(), runtime.Options{}, nil); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("open without a data dir: %v, want ErrInvalid", err)
	}
}

// TestAvailable checks that Available agrees with what the kernel lets this process do.
func TestAvailable(t *testing.T) {
	err := Available()
	if err != nil {
		if !errors.Is(err, runtime.ErrUnavailable) {
			t.Errorf("Available = %v, want an error wrapping ErrUnavailable", err)
		}
		return
	}
	cmd := exec.Command("true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if err := cmd.Run(); err != nil {
		t.Errorf("Available says yes but a private mount namespace fails: %v", err)
	}
}

// TestCgroupLimitsApplied runs a task with CPU and memory limits that reads its own
// cgroup membership and settings, checking the task is born inside its cgroups.
func TestCgroupLimitsApplied(t *testing.T) {
	requireNamespaces(t)
	if why := cgroupsUnusable(); why != "" {
		t.Skip(why)
	}
	layout, _ := detectCgroups("/sys/fs/cgroup")
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res := runtime.Resources{CPULimit: 0.5, CPURequest: 0.25, MemoryLimit: 64 << 20}
	id := fmt.Sprintf("limited-%d", os.Getpid()) // cgroups are machine-wide
	plan := planCgroup(layout, id, res)
	script := "cat /proc/self/cgroup"
	for _, f := range plan.Files {
		if !f.Optional {
			script += fmt.Sprintf("; echo %s=$(cat %s)", f.Name, filepath.Join(f.Dir, f.Name))
		}
	}
	spec := runtime.TaskSpec{ID: id, Args: []string{"sh", "-c", script},
		Resources: res, LogPath: filepath.Join(dir, "limited.log")}
	tk, err := r.Start(testCtx(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := tk.Wait(testCtx(t)); err != nil || st.Code != 0 {
		t.Fatalf("wait = %+v, %v", st, err)
	}
	log, _ := os.ReadFile(spec.LogPath)
	for _, f := range plan.Files {
		if !f.Optional && !strings.Contains(string(log), "stdout "+f.Name+"="+f.Value+"\n") {
			t.Errorf("log lacks %s=%s:\n%s", f.Name, f.Value, log)
		}
	}
	for _, d := range plan.Dirs {
		want := "0::/" + cgroupParent + "/" + id + "\n"
		if !layout.V2 { // <root>/<controller>/kfp-box/<id>
			want = ":" + filepath.Base(filepath.Dir(filepath.Dir(d))) + ":/" + cgroupParent + "/" + id + "\n"
		}
		if !strings.Contains(string(log), want) {
			t.Errorf("task is not in its cgroup %s (want a line ending %q):\n%s", d, want, log)
		}
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left behind after the task: %v", d, err)
		}
	}
	if err := tk.Delete(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// TestWithoutNamespaces runs the backend as it runs without root: no mount namespace.
func TestWithoutNamespaces(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, &Settings{MountNamespaces: false})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	spec := runtime.TaskSpec{ID: "plain", Args: []string{"sh", "-c", "pwd; readlink /proc/self/ns/mnt"},
		WorkDir: dir, LogPath: filepath.Join(dir, "plain.log")}
	tk, err := r.Start(testCtx(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := tk.Wait(testCtx(t)); err != nil || st.Code != 0 {
		t.Fatalf("wait = %+v, %v", st, err)
	}
	own, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(spec.LogPath)
	if !strings.Contains(string(log), "stdout "+dir+"\n") || !strings.Contains(string(log), "stdout "+own+"\n") {
		t.Errorf("want work dir %s and this process's mount namespace %s in the log:\n%s", dir, own, log)
	}
	spec.ID, spec.Mounts = "mounted", []runtime.Mount{{Source: dir, Target: "/minio/x"}}
	if _, err := r.Start(testCtx(t), spec); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("start with a mount and no namespaces: %v, want ErrInvalid", err)
	}
}

// TestRootCopyIsComplete checks what a task sees when a mount target's top-level directory
// does not exist on the host, so the task runs in a tmpfs copy of "/": every host entry,
// working /proc, /dev and /tmp, and the new directory.
func TestRootCopyIsComplete(t *testing.T) {
	requireNamespaces(t)
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	script := `ls -a / | grep -v '^kfp-rtt-new$'; echo ---
test -r /proc/self/status && echo proc
echo x > /dev/null && echo dev
f=$(mktemp /tmp/kfp-rtt.XXXXXX) && rm "$f" && echo tmp
test -r /etc/passwd && echo etc
test -d /kfp-rtt-new/a && echo new`
	spec := runtime.TaskSpec{ID: "rootcopy", Args: []string{"sh", "-c", script},
		Mounts:  []runtime.Mount{{Source: dir, Target: "/kfp-rtt-new/a"}},
		LogPath: filepath.Join(dir, "rootcopy.log")}
	tk, err := r.Start(testCtx(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := tk.Wait(testCtx(t)); err != nil || st.Code != 0 {
		t.Fatalf("wait = %+v, %v", st, err)
	}
	out, err := exec.Command("sh", "-c", "ls -a /").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(out)) + "\n---\nproc\ndev\ntmp\netc\nnew"
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(readLog(t, spec.LogPath)), "\n") {
		_, text, _ := strings.Cut(line, " stdout ")
		got = append(got, text)
	}
	if strings.Join(got, "\n") != want {
		t.Errorf("task saw:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
	if _, err := os.Stat("/kfp-rtt-new"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/kfp-rtt-new exists on the host: %v", err)
	}
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStartCanceled gives Start a context that is already canceled: it must fail with the
// context's error, leave no state and no process behind.
func TestStartCanceled(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	marker := fmt.Sprintf("%d.%d", 600+os.Getpid()%100, time.Now().UnixNano()%1000)
	tk, err := r.Start(ctx, runtime.TaskSpec{ID: "canceled", Args: []string{"sleep", marker}, LogPath: filepath.Join(dir, "c.log")})
	if err == nil {
		_ = tk.Kill(testCtx(t), 0)
		_, _ = tk.Wait(testCtx(t))
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("start with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := r.Lookup(testCtx(t), "canceled"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("lookup: %v, want ErrNotFound", err)
	}
	waitFor(t, "no process running sleep "+marker, func() bool {
		matches, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, m := range matches {
			if b, _ := os.ReadFile(m); string(b) == "sleep\x00"+marker+"\x00" {
				return false
			}
		}
		return true
	})
}

// TestHostMountsReachTask checks the slave propagation of the task's mount namespace: a
// mount made on the host after the task started (and after its spare shim was made) is
// visible to the task, through the tmpfs copy of "/" too. The host's "/" is often private
// (no propagation at all), so the test makes its own shared directory.
func TestHostMountsReachTask(t *testing.T) {
	requireNamespaces(t)
	shared, ctl := t.TempDir(), t.TempDir()
	if err := syscall.Mount(shared, shared, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(shared, syscall.MNT_DETACH) })
	if err := syscall.Mount("", shared, "", syscall.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(shared, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	spec := runtime.TaskSpec{ID: "propagation",
		Args:    []string{"sh", "-c", `while [ ! -e /kfp-rtt-ctl/go ]; do sleep 0.02; done; cat "$SUB/hello"`},
		Env:     []string{"SUB=" + sub},
		Mounts:  []runtime.Mount{{Source: ctl, Target: "/kfp-rtt-ctl"}}, // forces the copy of "/"
		LogPath: filepath.Join(dir, "p.log")}
	tk, err := r.Start(testCtx(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(sub, syscall.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(sub, "hello"), []byte("from a later mount\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := tk.Wait(testCtx(t))
	if err != nil || st.Code != 0 {
		t.Fatalf("wait = %+v, %v; log:\n%s", st, err, readLog(t, spec.LogPath))
	}
	if log := readLog(t, spec.LogPath); !strings.Contains(log, "stdout from a later mount\n") {
		t.Errorf("the task did not see the host's later mount:\n%s", log)
	}
}

// TestMountLayouts runs tasks with several combinations of mount targets; each task writes
// a file through every target, and nothing but the nested mount's directory may appear on
// the host.
func TestMountLayouts(t *testing.T) {
	requireNamespaces(t)
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tmpTop := "/tmp/kfp-rtt-" + strconv.Itoa(os.Getpid())
	tests := []struct {
		name    string
		targets []string
	}{
		{"siblings under one new top", []string{"/kfp-rtt-a/x", "/kfp-rtt-a/y"}},
		{"nested", []string{"/kfp-rtt-b/outer", "/kfp-rtt-b/outer/inner/deep"}},
		{"new top and under /tmp", []string{"/kfp-rtt-c/x", tmpTop + "/c/y"}},
		{"two under /tmp", []string{tmpTop + "/d/1", tmpTop + "/d/2/3"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mounts []runtime.Mount
			script := "set -e"
			for j, target := range tt.targets {
				src := t.TempDir()
				mounts = append(mounts, runtime.Mount{Source: src, Target: target})
				script += fmt.Sprintf("; echo %d > %s/f%d", j, target, j)
			}
			spec := runtime.TaskSpec{ID: fmt.Sprintf("layout-%d", i), Args: []string{"sh", "-c", script},
				Mounts: mounts, LogPath: filepath.Join(dir, fmt.Sprintf("layout-%d.log", i))}
			tk, err := r.Start(testCtx(t), spec)
			if err != nil {
				t.Fatal(err)
			}
			if st, err := tk.Wait(testCtx(t)); err != nil || st.Code != 0 {
				t.Fatalf("wait = %+v, %v; log:\n%s", st, err, readLog(t, spec.LogPath))
			}
			for j, m := range mounts {
				if got, _ := os.ReadFile(filepath.Join(m.Source, fmt.Sprintf("f%d", j))); string(got) != fmt.Sprintf("%d\n", j) {
					t.Errorf("%s: f%d = %q", m.Target, j, got)
				}
			}
			for _, host := range []string{"/kfp-rtt-a", "/kfp-rtt-b", "/kfp-rtt-c", tmpTop} {
				if _, err := os.Stat(host); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists on the host: %v", host, err)
				}
			}
			if err := tk.Delete(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestOpenChecksShim points the runtime at a binary that is not a shim.
func TestOpenChecksShim(t *testing.T) {
	for _, shim := range []string{"/bin/true", "/nonexistent/kfp-box"} {
		_, err := Open(testCtx(t), runtime.Options{DataDir: t.TempDir()}, &Settings{Shim: shim, MountNamespaces: true})
		if !errors.Is(err, runtime.ErrUnavailable) {
			t.Errorf("open with shim %s: %v, want ErrUnavailable", shim, err)
		}
	}
}

// TestStrayDescriptorsClosed starts a task from a process holding a descriptor without
// close-on-exec, as kfp-box started by systemd with sockets would: neither the shim nor
// the task may keep it.
func TestStrayDescriptorsClosed(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	stray, err := syscall.Dup(int(pw.Fd())) // Dup clears close-on-exec
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, nil) // its spare inherits stray
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	syscall.Close(stray)
	spec := runtime.TaskSpec{ID: "fds", Args: []string{"sh", "-c", "ls /proc/self/fd"}, LogPath: filepath.Join(dir, "fds.log")}
	tk, err := r.Start(testCtx(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := tk.Wait(testCtx(t)); err != nil || st.Code != 0 {
		t.Fatalf("wait = %+v, %v", st, err)
	}
	if log := readLog(t, spec.LogPath); strings.Contains(log, fmt.Sprintf("stdout %d\n", stray)) && stray > 3 {
		t.Errorf("the task holds descriptor %d:\n%s", stray, log)
	}
	// With every writer gone, the read end sees EOF: nobody kept the stray descriptor.
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(pr)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a shim or task still holds the stray pipe descriptor")
	}
}
