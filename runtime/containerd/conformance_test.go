package containerd_test

import (
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/runtime/runtimetest"
)

// TestConformance runs the shared runtime suite against a real containerd and runc.
func TestConformance(t *testing.T) {
	requireContainerd(t)
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime {
		return newRuntime(t, runtimetest.DataDir(t))
	}, runtimetest.Options{Image: testImage, Timeout: 60 * time.Second})
}
