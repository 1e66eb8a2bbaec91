//go:build gpu

package gpu_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/gpu"
	"github.com/kfp-box/kfp-box/gpu/gputest"
)

// These tests need a machine with an NVIDIA GPU and driver: go test -tags gpu ./gpu/...

func TestRealDiscoveryAndSampling(t *testing.T) {
	m := gputest.RequireGPU(t)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Devices() {
		t.Logf("gpu %d %s %s %d MiB driver %s cuda %s mig %v util %d%%", d.Index, d.UUID, d.Name,
			d.MemoryTotal>>20, d.DriverVersion, d.CUDAVersion, d.MIGEnabled, d.Utilization)
		if !strings.HasPrefix(d.UUID, "GPU-") || d.Name == "" || d.MemoryTotal == 0 || d.DriverVersion == "" || d.CUDAVersion == "" {
			t.Errorf("incomplete device: %+v", d)
		}
		if !d.Healthy {
			t.Errorf("gpu %d unhealthy: %s", d.Index, d.HealthReason)
		}
		if d.SampledAt.IsZero() {
			t.Errorf("gpu %d not sampled by Start", d.Index)
		}
	}
}

// TestRealInjectionPathsExist checks that everything the injection names is on the host.
func TestRealInjectionPathsExist(t *testing.T) {
	m := gputest.RequireGPU(t)
	l, err := m.Allocate(context.Background(), gpu.Request{Owner: "real-test", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	g, err := m.InjectionFor(l, "containerd")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("injection: %+v", g)
	if len(g.CDIDevices) > 0 {
		return
	}
	for _, d := range g.Devices {
		if _, err := os.Stat(d.Path); err != nil {
			t.Errorf("device node: %v", err)
		}
	}
	var names []string
	for _, mt := range g.Mounts {
		if _, err := os.Stat(mt.Source); err != nil {
			t.Errorf("mount source: %v", err)
		}
		names = append(names, mt.Target)
	}
	if !strings.Contains(strings.Join(names, " "), "libcuda.so.1") {
		t.Errorf("no libcuda.so.1 among mounts %v", names)
	}
}

// TestRealContainerSeesOnlyItsGPU runs nvidia-smi in a container through containerd's ctr with
// the injection and expects exactly the leased GPU. It needs ctr, a running containerd and an
// image with a shell, named by KFPBOX_GPU_TEST_IMAGE and already present in the namespace
// KFPBOX_GPU_TEST_NAMESPACE (default "default").
func TestRealContainerSeesOnlyItsGPU(t *testing.T) {
	m := gputest.RequireGPU(t)
	image := os.Getenv("KFPBOX_GPU_TEST_IMAGE")
	ctr, err := exec.LookPath("ctr")
	if image == "" || err != nil {
		t.Skip("needs ctr, a running containerd and KFPBOX_GPU_TEST_IMAGE (an image already in containerd)")
	}
	ns := os.Getenv("KFPBOX_GPU_TEST_NAMESPACE")
	if ns == "" {
		ns = "default"
	}
	l, err := m.Allocate(context.Background(), gpu.Request{Owner: "real-container", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	g, err := m.InjectionFor(l, "containerd")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-n", ns, "run", "--rm"}
	for k, v := range g.Env {
		args = append(args, "--env", k+"="+v)
	}
	for _, c := range g.CDIDevices {
		args = append(args, "--cdi-device", c)
	}
	for _, d := range g.Devices {
		args = append(args, "--device", d.Path)
	}
	for _, mt := range g.Mounts {
		args = append(args, "--mount", fmt.Sprintf("type=bind,src=%s,dst=%s,options=rbind:ro", mt.Source, mt.Target))
	}
	id := fmt.Sprintf("kfpbox-gpu-test-%d", time.Now().UnixNano())
	args = append(args, image, id, "nvidia-smi", "-L")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, ctr, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], l.UUIDs()[0]) {
		t.Fatalf("container sees %q, want only %s", out, l.UUIDs()[0])
	}
}
