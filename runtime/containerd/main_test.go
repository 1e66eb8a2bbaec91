package containerd_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/runtime/containerd"
	"github.com/kfp-box/kfp-box/runtime/containerd/containerdtest"
)

// testImage is imported into the shared containerd by TestMain.
const testImage = "127.0.0.1:1/kfp-box/busybox:test" // an unreachable registry: no test ever pulls

// env is the one containerd all tests of this package share.
var env struct {
	skip     string // why containerd tests cannot run here
	daemon   *containerd.Daemon
	initPath string
	tmp      string
}

func TestMain(m *testing.M) {
	// The shim starts this test binary as each task's log binary.
	if containerd.IsLoggerInvocation(os.Args) {
		os.Exit(containerd.LoggerMain(os.Args[2]))
	}
	if data := os.Getenv(boxEnv); data != "" {
		boxMain(data)
	}
	if code := setup(); code != 0 {
		os.Exit(code)
	}
	code := m.Run()
	teardown()
	os.Exit(code)
}

func setup() int {
	if why := containerdtest.Prerequisites(); why != "" {
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "containerd tests cannot run in CI:", why)
			return 1
		}
		env.skip = why + " (CI=true turns this skip into a failure)"
		return 0
	}
	// A short directory: the daemon's unix socket path must stay under 108 bytes.
	tmp, err := os.MkdirTemp("", "kfpbox-ctd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.tmp = tmp
	// Generous: on a loaded CI machine building the init and starting containerd is slow.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "containerd test setup:", err)
		if b, rerr := os.ReadFile(tmp + "/containerd/containerd.log"); rerr == nil {
			fmt.Fprintf(os.Stderr, "containerd.log:\n%s\n", b[max(0, len(b)-4000):])
		}
		teardown()
		return 1
	}
	if env.initPath, err = containerdtest.BuildInit(ctx, tmp); err != nil {
		return fail(err)
	}
	d, err := containerd.StartDaemon(ctx, containerd.DaemonConfig{Dir: tmp + "/containerd", Logger: testLogger()})
	if err != nil {
		return fail(err)
	}
	env.daemon = d
	if err := containerdtest.ImportBusybox(ctx, d.Address(), testImage); err != nil {
		return fail(err)
	}
	return 0
}

func teardown() {
	if env.daemon != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		containerdtest.RemoveAll(ctx, env.daemon.Address())
		_ = env.daemon.Stop(ctx)
		cancel()
	}
	if env.tmp != "" {
		containerdtest.Unmount(env.tmp)
		_ = os.RemoveAll(env.tmp)
	}
}

// requireContainerd skips the test when containerd cannot run here (never in CI).
func requireContainerd(t testing.TB) {
	t.Helper()
	if env.skip != "" {
		t.Skip("containerd tests skipped: " + env.skip)
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("KFPBOX_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newRuntime opens a runtime on the shared containerd.
func newRuntime(t testing.TB, dataDir string) *containerd.Runtime {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := containerd.New(ctx, containerd.Config{
		Address:    env.daemon.Address(),
		DataDir:    dataDir,
		InitBinary: env.initPath,
		Logger:     testLogger(),
	})
	if err != nil {
		t.Fatalf("open runtime: %v", err)
	}
	return r
}
