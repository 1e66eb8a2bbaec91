package gpu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kfp-box/kfp-box/internal/testmaterial"
)

// irAccelerator is the slice of a compiled KFP pipeline this test needs.
type irAccelerator struct {
	DeploymentSpec struct {
		Executors map[string]struct {
			Container struct {
				Resources struct {
					Accelerator struct {
						ResourceType  string `json:"resourceType"`
						ResourceCount string `json:"resourceCount"`
						Type          string `json:"type"`
						Count         string `json:"count"`
					} `json:"accelerator"`
				} `json:"resources"`
			} `json:"container"`
		} `json:"executors"`
	} `json:"deploymentSpec"`
}

// fixturesDir finds the KFP IR fixtures: $KFPBOX_FIXTURES, else ../shared/fixtures/kfp-ir
// from the repository root.
func fixturesDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KFPBOX_FIXTURES")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "fixtures", "kfp-ir")
	}
	if _, err := os.Stat(dir); err != nil {
		testmaterial.Missing(t, "KFP IR fixtures not found at %s (set KFPBOX_FIXTURES): %v", dir, err)
	}
	return dir
}

// gpuFixtureRequest reads the accelerator request of the gpu-scheduling fixture's only executor.
func gpuFixtureRequest(t *testing.T) (string, int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixturesDir(t), "valid", "gpu-scheduling", "nvidia_gpu_scheduling_check.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The first YAML document is the pipeline spec; the second the platform spec.
	doc, _, _ := bytes.Cut(data, []byte("\n---\n"))
	var ir irAccelerator
	if err := yaml.Unmarshal(doc, &ir); err != nil {
		t.Fatal(err)
	}
	exec, ok := ir.DeploymentSpec.Executors["exec-verify-gpu-scheduled"]
	if !ok {
		t.Fatalf("fixture lacks executor exec-verify-gpu-scheduled: %+v", ir)
	}
	a := exec.Container.Resources.Accelerator
	name, count, err := AcceleratorFromIR(a.ResourceType, a.Type, a.ResourceCount, a.Count)
	if err != nil {
		t.Fatal(err)
	}
	if name != "nvidia.com/gpu" || count != 1 {
		t.Fatalf("fixture asks for %d x %q, want 1 x nvidia.com/gpu", count, name)
	}
	return name, count
}

// TestGPUSchedulingFixtureWithoutGPUs: on a box without GPUs the fixture's task cannot be
// granted and gets a reason the engine keeps it PENDING with.
func TestGPUSchedulingFixtureWithoutGPUs(t *testing.T) {
	name, count := gpuFixtureRequest(t)
	m, _ := newManager(t, noNVML())
	_, err := m.Allocate(context.Background(), Request{Owner: "exec-verify-gpu-scheduled", Count: count, Accelerator: name})
	if !errors.Is(err, ErrUnsatisfiable) {
		t.Fatalf("Allocate = %v, want ErrUnsatisfiable", err)
	}
	want := "task needs 1 GPU (nvidia.com/gpu) but this box has no GPUs: NVIDIA driver library libnvidia-ml.so.1 not found"
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("reason %q\nwant prefix %q", err, want)
	}
}

// TestGPUSchedulingFixtureWithMockGPUs: with the DGX A100 mock the fixture's task gets one GPU
// and a task spec injection that carries it.
func TestGPUSchedulingFixtureWithMockGPUs(t *testing.T) {
	name, count := gpuFixtureRequest(t)
	m, _ := newManager(t, newDGX(t), func(o *Options) { o.DevFS = hostFS() })
	l, err := m.Allocate(context.Background(), Request{Owner: "exec-verify-gpu-scheduled", Count: count, Accelerator: name})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	g, err := m.InjectionFor(l, "containerd")
	if err != nil {
		t.Fatal(err)
	}
	u := m.Devices()[0].UUID
	if len(g.UUIDs) != 1 || g.UUIDs[0] != u || g.Env["NVIDIA_VISIBLE_DEVICES"] != u || g.Env["CUDA_VISIBLE_DEVICES"] != u {
		t.Fatalf("injection does not carry GPU 0 (%s): %+v", u, g)
	}
	if len(g.Devices) == 0 || g.Devices[0].Path != "/dev/nvidia0" {
		t.Fatalf("device nodes = %+v", g.Devices)
	}
	if got := m.Devices()[0].AssignedTo; got != "exec-verify-gpu-scheduled" {
		t.Fatalf("GPU 0 assigned to %q", got)
	}
}
