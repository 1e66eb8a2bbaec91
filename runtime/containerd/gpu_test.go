//go:build gpu

package containerd_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/gpu"
	"github.com/kfp-box/kfp-box/gpu/gputest"
)

// TestGPUInjection runs a container with one real GPU injected the way the engine does
// (CDI when a spec exists, else device nodes and driver mounts) and checks from inside that
// the device nodes and NVIDIA_VISIBLE_DEVICES are there. Needs a GPU machine:
// go test -tags gpu ./runtime/containerd/
func TestGPUInjection(t *testing.T) {
	requireContainerd(t)
	m := gputest.RequireGPU(t)
	l, err := m.Allocate(context.Background(), gpu.Request{Owner: "containerd-test", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	g, err := m.InjectionFor(l, "containerd")
	if err != nil {
		t.Fatal(err)
	}
	script := `ls /dev/nvidia*; echo "visible=$NVIDIA_VISIBLE_DEVICES"; test -c /dev/nvidiactl`
	for _, d := range g.Devices {
		p := d.ContainerPath
		if p == "" {
			p = d.Path
		}
		script += "; test -c " + p
	}
	r := newRuntime(t, t.TempDir())
	t.Cleanup(func() { _ = r.Close() })
	spec := newSpec(t, "sh", "-c", script)
	spec.GPUs = g
	st, log := run(t, r, spec)
	if st.Code != 0 {
		t.Fatalf("status %+v; injection %+v; log:\n%s", st, g, log)
	}
	if want := g.Env["NVIDIA_VISIBLE_DEVICES"]; want != "" && !strings.Contains(log, "stdout visible="+want) {
		t.Errorf("log lacks visible=%s:\n%s", want, log)
	}
}
