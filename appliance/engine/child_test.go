package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/runtime/host"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// childEnv names the data dir of a child engine process (the crash test's box).
const childEnv = "KFPBOX_ENGINE_TEST_CHILD"

// childShimEnv passes the test shim's path to the child.
const childShimEnv = "KFPBOX_ENGINE_TEST_SHIM"

// childMain runs an engine over the data dir in $KFPBOX_ENGINE_TEST_CHILD until killed. It
// returns false in a normal test process.
func childMain() bool {
	dir := os.Getenv(childEnv)
	if dir == "" {
		return false
	}
	ctx := context.Background()
	fail := func(err error) bool {
		fmt.Fprintln(os.Stderr, "child engine:", err)
		os.Exit(3)
		return true
	}
	st, err := bolt.Open(ctx, kv.Options{Path: filepath.Join(dir, "meta.db")})
	if err != nil {
		return fail(err)
	}
	ms, err := meta.Open(ctx, st, nil)
	if err != nil {
		return fail(err)
	}
	hs := host.NewSettings()
	hs.Shim = os.Getenv(childShimEnv)
	rt, err := runtime.Open(ctx, host.ID, runtime.Options{DataDir: dir}, hs)
	if err != nil {
		return fail(err)
	}
	e, err := New(Config{Logger: testLogger(), Meta: ms, Runtime: rt, DataDir: dir})
	if err != nil {
		return fail(err)
	}
	if err := e.Start(ctx); err != nil {
		return fail(err)
	}
	select {} // until SIGKILL
}

// TestRecoveryAfterSIGKILL kills a box (a child process running the engine) in the middle
// of a run, ten times at different points, restarts it over the same data dir and checks
// the run ends as an uninterrupted one does: same final state, task states and outputs.
func TestRecoveryAfterSIGKILL(t *testing.T) {
	t.Parallel()
	requireHost(t)
	p := testdataPipeline(t, "crash.yaml")
	rounds := 10
	if testing.Short() {
		rounds = 2
	}
	for i := 0; i < rounds; i++ {
		t.Run(fmt.Sprintf("round-%d", i), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			// Store the run, then hand the data dir to the child box.
			h := newHarness(t, harnessOpts{dir: dir, noStart: true, rt: nopRuntime{}, direct: true})
			id := h.submit(p, nil)
			if err := h.kv.Close(); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+dir, childShimEnv+"="+testShim())
			cmd.Stderr = os.Stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Kill it once 1 to 5 tasks have started.
			startedBeforeKill := 1 + i%5
			logs := filepath.Join(dir, "logs", id)
			waitFor(t, 20*time.Second, fmt.Sprintf("%d tasks to start", startedBeforeKill), func() bool {
				ents, _ := os.ReadDir(logs)
				return len(ents) >= startedBeforeKill
			})
			if i%2 == 1 {
				time.Sleep(time.Duration(i) * 20 * time.Millisecond) // vary the point inside a task's life
			}
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()

			h2 := newHarness(t, harnessOpts{dir: dir})
			r := h2.waitRun(id, 30*time.Second)
			h2.check(id, r, expectation{
				state: "SUCCEEDED",
				tasks: map[string]string{"step-1": "SUCCEEDED", "step-2": "SUCCEEDED", "for-loop-1": "SUCCEEDED",
					"for-loop-1[0]/step-3": "SUCCEEDED", "for-loop-1[2]/step-3": "SUCCEEDED", "report": "SUCCEEDED"},
				outputs: map[string]map[string]any{"report": {"Output": "chain:2,loop:[2,3,4]"}},
			})
		})
	}
}

// nopRuntime is a Runtime that runs nothing, for harnesses that only prepare a store.
type nopRuntime struct{}

func (nopRuntime) Name() string { return "nop" }
func (nopRuntime) Start(context.Context, runtime.TaskSpec) (runtime.Task, error) {
	return nil, runtime.ErrUnavailable
}
func (nopRuntime) Lookup(context.Context, string) (runtime.Task, error) {
	return nil, runtime.ErrNotFound
}
func (nopRuntime) List(context.Context) ([]runtime.Task, error) { return nil, nil }
func (nopRuntime) Close() error                                 { return nil }

var _ runtime.Runtime = nopRuntime{}
