package runtimetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
)

func testExitCodeAndLog(h *harness) {
	before := time.Now().Add(-time.Minute)
	spec := h.spec("sh", "-c", "echo out; echo err >&2; exit 3")
	st := h.run(spec, 3)
	if st.OOMKilled {
		h.t.Errorf("OOMKilled = true for a plain exit")
	}
	if st.StartedAt.IsZero() || st.ExitedAt.IsZero() || st.ExitedAt.Before(st.StartedAt) {
		h.t.Errorf("times: started %v exited %v", st.StartedAt, st.ExitedAt)
	}
	lines := parseLog(h.t, spec.LogPath)
	if got := texts(lines, "stdout"); !equalStrings(got, []string{"out"}) {
		h.t.Errorf("stdout lines = %q, want [out]", got)
	}
	if got := texts(lines, "stderr"); !equalStrings(got, []string{"err"}) {
		h.t.Errorf("stderr lines = %q, want [err]", got)
	}
	after := time.Now().Add(time.Minute)
	for _, l := range lines {
		if l.Time.Before(before) || l.Time.After(after) {
			h.t.Errorf("log time %v is not around now", l.Time)
		}
	}
}

func testEnvAndWorkDir(h *harness) {
	spec := h.spec("sh", "-c", `echo "foo=$FOO"; echo "empty=[$EMPTY]"; pwd`)
	spec.Env = []string{"FOO=bar baz", "EMPTY="}
	spec.WorkDir = "/tmp"
	h.run(spec, 0)
	got := texts(parseLog(h.t, spec.LogPath), "stdout")
	want := []string{"foo=bar baz", "empty=[]", "/tmp"}
	if !equalStrings(got, want) {
		h.t.Errorf("stdout = %q, want %q", got, want)
	}
}

func testMountsRWRO(h *harness) {
	rw, ro := h.t.TempDir(), h.t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "in.txt"), []byte("hello\n"), 0o644); err != nil {
		h.t.Fatal(err)
	}
	spec := h.spec("sh", "-c", `cat /rtt-data/ro/in.txt > /rtt-data/rw/out.txt || exit 8
if touch /rtt-data/ro/new 2>/dev/null; then echo "read-only mount is writable"; exit 9; fi
echo ok`)
	spec.Mounts = []runtime.Mount{
		{Source: rw, Target: "/rtt-data/rw"},
		{Source: ro, Target: "/rtt-data/ro", ReadOnly: true},
	}
	h.run(spec, 0)
	if got := readFile(filepath.Join(rw, "out.txt")); got != "hello\n" {
		h.t.Errorf("out.txt = %q, want %q", got, "hello\n")
	}
	if exists(filepath.Join(ro, "new")) {
		h.t.Errorf("task wrote into the read-only mount's source")
	}
}

// testMountMissingTarget mounts at a KFP artifact path (/minio/<bucket>/...) that does not
// exist on the host, and checks that nothing is left behind on the host.
func testMountMissingTarget(h *harness) {
	hadMinio := exists("/minio")
	src := h.t.TempDir()
	spec := h.spec("sh", "-c", `echo artifact > "/minio/mlpipeline/v2/artifacts/$RTT_ID/out.txt"`)
	target := "/minio/mlpipeline/v2/artifacts/" + spec.ID
	spec.Env = []string{"RTT_ID=" + spec.ID}
	spec.Mounts = []runtime.Mount{{Source: src, Target: target}}
	h.run(spec, 0)
	if got := readFile(filepath.Join(src, "out.txt")); got != "artifact\n" {
		h.t.Errorf("out.txt = %q, want %q", got, "artifact\n")
	}
	if !hadMinio && exists("/minio") {
		h.t.Errorf("/minio was left behind on the host")
	}
	if hadMinio && exists(target) {
		h.t.Errorf("%s was left behind on the host", target)
	}
}

// testMountUnderExistingDir mounts below an existing host directory (/tmp) through parents
// that do not exist, and checks that they are not created on the host.
func testMountUnderExistingDir(h *harness) {
	src := h.t.TempDir()
	spec := h.spec("sh", "-c", `echo deep > "/tmp/$RTT_ID/a/b/out.txt" && ls / >/dev/null`)
	spec.Env = []string{"RTT_ID=" + spec.ID}
	spec.Mounts = []runtime.Mount{{Source: src, Target: "/tmp/" + spec.ID + "/a/b"}}
	h.run(spec, 0)
	if got := readFile(filepath.Join(src, "out.txt")); got != "deep\n" {
		h.t.Errorf("out.txt = %q, want %q", got, "deep\n")
	}
	if exists("/tmp/" + spec.ID) {
		h.t.Errorf("/tmp/%s was left behind on the host", spec.ID)
	}
}

func testFileMount(h *harness) {
	src := filepath.Join(h.t.TempDir(), "conf.txt")
	if err := os.WriteFile(src, []byte("key=value\n"), 0o644); err != nil {
		h.t.Fatal(err)
	}
	spec := h.spec("cat", "/rtt-files/conf.txt")
	spec.Mounts = []runtime.Mount{{Source: src, Target: "/rtt-files/conf.txt", ReadOnly: true}}
	h.run(spec, 0)
	if got := texts(parseLog(h.t, spec.LogPath), "stdout"); !equalStrings(got, []string{"key=value"}) {
		h.t.Errorf("stdout = %q, want [key=value]", got)
	}
}

func testUser(h *harness) {
	if h.opts.NoUser != "" {
		h.t.Skip("Options.NoUser: " + h.opts.NoUser)
	}
	spec := h.spec("sh", "-c", "id -u; id -g")
	uid, gid := int64(65534), int64(65533)
	spec.User, spec.Group = &uid, &gid
	h.run(spec, 0)
	if got := texts(parseLog(h.t, spec.LogPath), "stdout"); !equalStrings(got, []string{"65534", "65533"}) {
		h.t.Errorf("id -u; id -g = %q, want [65534 65533]", got)
	}
}

// testKillGrace kills a sleeping task. A backend running the task as a PID namespace's
// init (where an unhandled SIGTERM is ignored) ends it with SIGKILL after the grace period;
// a backend without one ends it with SIGTERM at once. Either way it dies promptly.
func testKillGrace(h *harness) {
	tk := h.start(h.spec("sleep", "600"))
	h.stillRunning(tk)
	const grace = 2 * time.Second
	begin := time.Now()
	if err := tk.Kill(h.ctx(), grace); err != nil {
		h.t.Fatalf("kill: %v", err)
	}
	st := h.wait(tk)
	if st.Code != 143 && st.Code != 137 {
		h.t.Errorf("exit code after kill = %d, want 143 or 137", st.Code)
	}
	if d := time.Since(begin); d > grace+5*time.Second {
		h.t.Errorf("task took %v to die after Kill with a grace of %v", d, grace)
	}
}

func testKillEscalates(h *harness) {
	spec := h.spec("sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.02; done`)
	tk := h.start(spec)
	h.eventually("the task to print ready", func() bool {
		return strings.Contains(readFile(spec.LogPath), "stdout ready")
	})
	if err := tk.Kill(h.ctx(), 200*time.Millisecond); err != nil {
		h.t.Fatalf("kill: %v", err)
	}
	if st := h.wait(tk); st.Code != 137 {
		h.t.Errorf("exit code of a task ignoring SIGTERM = %d, want 137", st.Code)
	}
}

// testKillTrapped kills a task that handles SIGTERM: it must receive the signal (a
// backend must not start tasks with SIGTERM ignored) and end by its handler, well before
// the grace period is over.
func testKillTrapped(h *harness) {
	spec := h.spec("sh", "-c", `trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.02; done`)
	tk := h.start(spec)
	h.eventually("the task to print ready", func() bool {
		return strings.Contains(readFile(spec.LogPath), "stdout ready")
	})
	if err := tk.Kill(h.ctx(), time.Minute); err != nil {
		h.t.Fatalf("kill: %v", err)
	}
	if st := h.wait(tk); st.Code != 7 {
		h.t.Errorf("exit code of a task ending on SIGTERM by its handler = %d, want 7; log:\n%s", st.Code, readFile(spec.LogPath))
	}
}

func testWaitCanceled(h *harness) {
	spec := h.spec("sh", "-c", waitForGo+"; exit 7")
	ctl := h.control(&spec)
	tk := h.start(spec)
	h.stillRunning(tk)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tk.Wait(ctx); !errors.Is(err, context.Canceled) {
		h.t.Fatalf("wait with a canceled context: err %v, want context.Canceled", err)
	}
	h.release(ctl)
	if st := h.wait(tk); st.Code != 7 {
		h.t.Errorf("exit code = %d, want 7: the task must keep running after a canceled Wait", st.Code)
	}
}

func testRestartRunning(h *harness) {
	spec := h.spec("sh", "-c", waitForGo+"; echo done; exit 7")
	ctl := h.control(&spec)
	h.start(spec)
	h.reopen()
	tk, err := h.runtime().Lookup(h.ctx(), spec.ID)
	if err != nil {
		h.t.Fatalf("lookup after restart: %v", err)
	}
	checkLabels(h, tk, spec.Labels)
	listed := false
	tasks, err := h.runtime().List(h.ctx())
	if err != nil {
		h.t.Fatalf("list: %v", err)
	}
	for _, lt := range tasks {
		if lt.ID() == spec.ID {
			listed = true
			checkLabels(h, lt, spec.Labels)
		}
	}
	if !listed {
		h.t.Errorf("List after restart does not return %q", spec.ID)
	}
	h.stillRunning(tk)
	h.release(ctl)
	if st := h.wait(tk); st.Code != 7 {
		h.t.Errorf("exit code of a re-adopted task = %d, want 7", st.Code)
	}
	h.eventually("the log line written after the restart", func() bool {
		return strings.Contains(readFile(spec.LogPath), "stdout done")
	})
}

func testRestartExited(h *harness) {
	spec := h.spec("sh", "-c", waitForGo+"; echo bye > /rtt-ctl/done; exit 5")
	ctl := h.control(&spec)
	h.start(spec)
	h.closeRuntime()
	h.release(ctl)
	h.eventually("the task to finish while no runtime is open", func() bool {
		return exists(filepath.Join(ctl, "done"))
	})
	h.open()
	tk, err := h.runtime().Lookup(h.ctx(), spec.ID)
	if err != nil {
		h.t.Fatalf("lookup after restart: %v", err)
	}
	checkLabels(h, tk, spec.Labels)
	if st := h.wait(tk); st.Code != 5 {
		h.t.Errorf("recorded exit code = %d, want 5", st.Code)
	}
}

func checkLabels(h *harness, tk runtime.Task, want map[string]string) {
	h.t.Helper()
	got := tk.Labels()
	if len(got) != len(want) {
		h.t.Errorf("labels = %v, want %v", got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			h.t.Errorf("labels = %v, want %v", got, want)
			return
		}
	}
}

func testLookupUnknown(h *harness) {
	_, err := h.runtime().Lookup(h.ctx(), newID(h.t))
	if !errors.Is(err, runtime.ErrNotFound) {
		h.t.Errorf("lookup of an unknown id: err %v, want runtime.ErrNotFound", err)
	}
}

func testDuplicateID(h *harness) {
	spec := h.spec("sh", "-c", waitForGo)
	ctl := h.control(&spec)
	tk := h.start(spec)
	if _, err := h.runtime().Start(h.ctx(), spec); !errors.Is(err, runtime.ErrAlreadyExists) {
		h.t.Errorf("start of a running id: err %v, want runtime.ErrAlreadyExists", err)
	}
	h.release(ctl)
	if st := h.wait(tk); st.Code != 0 {
		h.t.Fatalf("exit code = %d, want 0", st.Code)
	}
	if _, err := h.runtime().Start(h.ctx(), spec); !errors.Is(err, runtime.ErrAlreadyExists) {
		h.t.Errorf("start of an exited, undeleted id: err %v, want runtime.ErrAlreadyExists", err)
	}
	// The first task must be unharmed by the refused starts.
	if st := h.wait(tk); st.Code != 0 {
		h.t.Errorf("exit code after refused starts = %d, want 0", st.Code)
	}
}

func testDelete(h *harness) {
	spec := h.spec("true")
	tk := h.start(spec)
	h.wait(tk)
	if err := tk.Delete(h.ctx()); err != nil {
		h.t.Fatalf("delete: %v", err)
	}
	if _, err := h.runtime().Lookup(h.ctx(), spec.ID); !errors.Is(err, runtime.ErrNotFound) {
		h.t.Errorf("lookup after delete: err %v, want runtime.ErrNotFound", err)
	}
	tasks, err := h.runtime().List(h.ctx())
	if err != nil {
		h.t.Fatalf("list: %v", err)
	}
	for _, lt := range tasks {
		if lt.ID() == spec.ID {
			h.t.Errorf("List returns deleted task %q", spec.ID)
		}
	}
	if !exists(spec.LogPath) {
		h.t.Errorf("delete removed the log file; logs are kept after the task")
	}
	// The id is free again.
	h.run(spec, 0)
}

func testMemoryLimit(h *harness) {
	if h.opts.NoCgroups != "" {
		h.t.Skip("Options.NoCgroups: " + h.opts.NoCgroups)
	}
	// dd allocates a 256 MiB buffer and fills it from /dev/zero, touching every page.
	spec := h.spec("dd", "if=/dev/zero", "of=/dev/null", "bs=268435456", "count=1")
	spec.Resources.MemoryLimit = 32 << 20
	st := h.wait(h.start(spec))
	if !st.OOMKilled || st.Code != 137 {
		h.t.Errorf("status = %+v, want OOMKilled with code 137; log:\n%s", st, readFile(spec.LogPath))
	}
}

func testFollowLog(h *harness) {
	spec := h.spec("sh", "-c", "echo first; "+waitForGo+"; echo second")
	ctl := h.control(&spec)
	tk := h.start(spec)
	h.eventually("the first line in the log while the task runs", func() bool {
		return strings.Contains(readFile(spec.LogPath), "stdout first\n")
	})
	h.stillRunning(tk)
	h.release(ctl)
	h.wait(tk)
	if got := texts(parseLog(h.t, spec.LogPath), "stdout"); !equalStrings(got, []string{"first", "second"}) {
		h.t.Errorf("stdout = %q, want [first second]", got)
	}
}

func testConcurrent(h *harness) {
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	specs := make([]runtime.TaskSpec, n)
	tasks := make([]runtime.Task, n)
	for i := range specs {
		specs[i] = h.spec("sh", "-c", fmt.Sprintf("echo task-%d; exit %d", i, i))
		tasks[i] = h.start(specs[i])
	}
	for i := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := tasks[i].Wait(h.ctx())
			switch {
			case err != nil:
				errs <- fmt.Errorf("task %d: %w", i, err)
			case st.Code != i:
				errs <- fmt.Errorf("task %d: exit code %d", i, st.Code)
			case !strings.Contains(readFile(specs[i].LogPath), fmt.Sprintf("stdout task-%d\n", i)):
				errs <- fmt.Errorf("task %d: log %q", i, readFile(specs[i].LogPath))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		h.t.Error(err)
	}
}
