// Package gputest holds helpers for tests that need a real NVIDIA GPU. Such tests live behind
// the `gpu` build tag (go test -tags gpu ./...) and start with RequireGPU.
package gputest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/gpu"
)

// RequireGPU returns a Manager over the machine's real NVML and its GPUs, or skips the test
// with the reason when the machine has none (no driver, no libnvidia-ml, no device). The
// Manager is stopped when the test ends.
func RequireGPU(t testing.TB) *gpu.Manager {
	t.Helper()
	m, err := gpu.New(context.Background(), gpu.Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatalf("gpu.New: %v", err)
	}
	if r := m.Unavailable(); r != "" {
		t.Skipf("needs an NVIDIA GPU (run on a GPU machine with -tags gpu): %s", r)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			t.Errorf("gpu manager stop: %v", err)
		}
	})
	return m
}

// testWriter sends log output to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
