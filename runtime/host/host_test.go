package host

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/runtime/runtimetest"
)

// TestMain lets this test binary act as the shim: the host runtime re-executes its own
// binary, which here is the test binary.
func TestMain(m *testing.M) {
	if ShimMain() {
		return
	}
	os.Exit(m.Run())
}

func openHost(t *testing.T) runtime.Runtime {
	t.Helper()
	rt, err := runtime.Open(context.Background(), ID, runtime.Options{
		DataDir: runtimetest.DataDir(t),
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("open host runtime: %v", err)
	}
	return rt
}

func TestConformance(t *testing.T) {
	opts := runtimetest.Options{}
	if err := Available(); err != nil {
		t.Skipf("host runtime conformance needs mount namespaces (run the tests as root): %v", err)
	}
	if _, ok := detectCgroups("/sys/fs/cgroup"); !ok {
		opts.NoCgroups = "no cgroup memory controller on this machine"
	}
	runtimetest.Run(t, openHost, opts)
}
