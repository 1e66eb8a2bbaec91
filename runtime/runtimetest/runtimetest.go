package runtimetest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
)

// Options tell the suite what the backend under test needs and cannot do.
type Options struct {
	// Image is the image every TaskSpec gets; container backends need one holding busybox
	// (sh, echo, cat, dd, sleep, id, pwd). Empty for the host backend.
	Image string
	// NoCgroups, when not empty, is the reason memory limits cannot be enforced; the
	// memory-limit case is skipped with it.
	NoCgroups string
	// NoUser, when not empty, is the reason tasks cannot run as another user; the user case
	// is skipped with it.
	NoUser string
	// Timeout bounds every wait of the suite on a task or a condition (default 30s).
	Timeout time.Duration
}

// Run runs the conformance cases against the backend that newRuntime opens, each as a
// parallel subtest. newRuntime must fail the test itself if it cannot open the backend;
// calls with the same *testing.T must return runtimes sharing state (see DataDir).
//
// Backends must create the parent directories of TaskSpec.LogPath.
func Run(t *testing.T, newRuntime func(t *testing.T) runtime.Runtime, opts Options) {
	t.Helper()
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	cases := []struct {
		name string
		fn   func(h *harness)
	}{
		{"ExitCodeAndLog", testExitCodeAndLog},
		{"EnvAndWorkDir", testEnvAndWorkDir},
		{"MountsReadWriteReadOnly", testMountsRWRO},
		{"MountAtMissingTarget", testMountMissingTarget},
		{"MountUnderExistingDir", testMountUnderExistingDir},
		{"FileMount", testFileMount},
		{"User", testUser},
		{"KillWithGrace", testKillGrace},
		{"KillEscalates", testKillEscalates},
		{"KillTrapped", testKillTrapped},
		{"WaitCanceled", testWaitCanceled},
		{"RestartWhileRunning", testRestartRunning},
		{"RestartAfterExit", testRestartExited},
		{"LookupUnknown", testLookupUnknown},
		{"DuplicateID", testDuplicateID},
		{"DeleteThenLookup", testDelete},
		{"MemoryLimit", testMemoryLimit},
		{"FollowLog", testFollowLog},
		{"Concurrent", testConcurrent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, newRuntime, opts)
			c.fn(h)
		})
	}
}

var dataDirs sync.Map // *testing.T -> string

// DataDir returns a temporary directory owned by t, the same one on every call with the
// same t, so that a constructor passed to Run can reopen a backend on the same state.
func DataDir(t *testing.T) string {
	t.Helper()
	if d, ok := dataDirs.Load(t); ok {
		return d.(string)
	}
	d := t.TempDir()
	actual, loaded := dataDirs.LoadOrStore(t, d)
	if !loaded {
		t.Cleanup(func() { dataDirs.Delete(t) })
	}
	return actual.(string)
}

// harness holds one subtest's runtime and the tasks it started, and cleans them up.
type harness struct {
	t     *testing.T
	opts  Options
	newRT func(*testing.T) runtime.Runtime

	mu  sync.Mutex
	rt  runtime.Runtime
	ids []string
}

func newHarness(t *testing.T, newRT func(*testing.T) runtime.Runtime, opts Options) *harness {
	h := &harness{t: t, opts: opts, newRT: newRT}
	h.rt = newRT(t)
	if h.rt == nil {
		t.Fatal("newRuntime returned nil")
	}
	t.Cleanup(h.cleanup)
	return h
}

// cleanup kills, waits for and deletes every task the subtest started, then closes the
// current runtime. It runs once, after the subtest, whatever runtime is current then.
func (h *harness) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.Timeout)
	defer cancel()
	h.mu.Lock()
	rt, ids := h.rt, h.ids
	h.mu.Unlock()
	if rt == nil {
		return
	}
	for _, id := range ids {
		tk, err := rt.Lookup(ctx, id)
		if err != nil {
			continue
		}
		_ = tk.Kill(ctx, 0)
		_, _ = tk.Wait(ctx)
		if err := tk.Delete(ctx); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			h.t.Errorf("cleanup: delete %q: %v", id, err)
		}
	}
	if err := rt.Close(); err != nil {
		h.t.Errorf("cleanup: close: %v", err)
	}
}

// reopen closes the current runtime and opens a new one on the same state, as a restart
// of kfp-box does.
func (h *harness) reopen() {
	h.t.Helper()
	h.closeRuntime()
	h.open()
}

func (h *harness) closeRuntime() {
	h.t.Helper()
	h.mu.Lock()
	rt := h.rt
	h.rt = nil
	h.mu.Unlock()
	if err := rt.Close(); err != nil {
		h.t.Fatalf("close: %v", err)
	}
}

func (h *harness) open() {
	h.t.Helper()
	rt := h.newRT(h.t)
	h.mu.Lock()
	h.rt = rt
	h.mu.Unlock()
}

func (h *harness) runtime() runtime.Runtime {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rt
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.Timeout)
	h.t.Cleanup(cancel)
	return ctx
}

// spec returns a TaskSpec with a fresh id, the suite's image and a log path whose parent
// directories do not exist yet.
func (h *harness) spec(args ...string) runtime.TaskSpec {
	id := newID(h.t)
	return runtime.TaskSpec{
		ID:      id,
		Image:   h.opts.Image,
		Args:    args,
		LogPath: filepath.Join(h.t.TempDir(), "logs", "run", id+".log"),
		Labels:  map[string]string{"suite": "runtimetest", "case": h.t.Name()},
	}
}

// start starts spec and records its id for cleanup.
func (h *harness) start(spec runtime.TaskSpec) runtime.Task {
	h.t.Helper()
	h.mu.Lock()
	h.ids = append(h.ids, spec.ID)
	h.mu.Unlock()
	tk, err := h.runtime().Start(h.ctx(), spec)
	if err != nil {
		h.t.Fatalf("start %q: %v", spec.ID, err)
	}
	if tk.ID() != spec.ID {
		h.t.Errorf("task id = %q, want %q", tk.ID(), spec.ID)
	}
	return tk
}

// wait waits for tk under the suite's timeout and fails the test on error.
func (h *harness) wait(tk runtime.Task) runtime.ExitStatus {
	h.t.Helper()
	st, err := tk.Wait(h.ctx())
	if err != nil {
		h.t.Fatalf("wait %q: %v", tk.ID(), err)
	}
	return st
}

// run starts spec, waits for it and checks its exit code.
func (h *harness) run(spec runtime.TaskSpec, wantCode int) runtime.ExitStatus {
	h.t.Helper()
	st := h.wait(h.start(spec))
	if st.Code != wantCode {
		h.t.Fatalf("exit code = %d, want %d (status %+v); log:\n%s", st.Code, wantCode, st, readFile(spec.LogPath))
	}
	return st
}

// eventually polls cond until it holds or the suite's timeout passes.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(h.opts.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// control returns a host directory mounted at /rtt-ctl in spec, used to release tasks
// that wait for /rtt-ctl/go.
func (h *harness) control(spec *runtime.TaskSpec) string {
	dir := h.t.TempDir()
	spec.Mounts = append(spec.Mounts, runtime.Mount{Source: dir, Target: "/rtt-ctl"})
	return dir
}

// release creates the file a waiting task polls for.
func (h *harness) release(ctlDir string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(ctlDir, "go"), nil, 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// waitForGo is a shell fragment that blocks until the control file exists.
const waitForGo = `while [ ! -e /rtt-ctl/go ]; do sleep 0.02; done`

// stillRunning checks that a Wait bounded by a short deadline returns the context's error.
func (h *harness) stillRunning(tk runtime.Task) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	st, err := tk.Wait(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		h.t.Fatalf("wait on a running task: status %+v, err %v; want context.DeadlineExceeded", st, err)
	}
}

// parseLog reads a task log in the runtime.TaskSpec.LogPath format
// ("<RFC3339Nano> stdout|stderr <text>") and fails on any malformed line.
func parseLog(t *testing.T, path string) []LogLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	defer f.Close()
	var lines []LogLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l, err := ParseLogLine(sc.Text())
		if err != nil {
			t.Fatalf("log %s: %v", path, err)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// LogLine is one parsed line of a task log.
type LogLine struct {
	// Time is when the backend read the line.
	Time time.Time
	// Stream is "stdout" or "stderr".
	Stream string
	// Text is the line without its newline.
	Text string
}

// ParseLogLine parses one line of a task log ("<RFC3339Nano> stdout|stderr <text>").
func ParseLogLine(s string) (LogLine, error) {
	ts, rest, ok := strings.Cut(s, " ")
	if !ok {
		return LogLine{}, fmt.Errorf("malformed log line %q", s)
	}
	tm, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return LogLine{}, fmt.Errorf("log line %q: bad timestamp: %w", s, err)
	}
	stream, text, ok := strings.Cut(rest, " ")
	if !ok {
		stream, text = rest, ""
	}
	if stream != "stdout" && stream != "stderr" {
		return LogLine{}, fmt.Errorf("log line %q: bad stream %q", s, stream)
	}
	return LogLine{Time: tm, Stream: stream, Text: text}, nil
}

func texts(lines []LogLine, stream string) []string {
	var out []string
	for _, l := range lines {
		if stream == "" || l.Stream == stream {
			out = append(out, l.Text)
		}
	}
	return out
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func newID(t *testing.T) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "rtt-" + hex.EncodeToString(b[:])
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
