package appliance_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance"
)

const claimManifest = `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: %s
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
`

// applyClaim makes claim name with kubectl apply -f, as a user does.
func applyClaim(t *testing.T, k func(...string) (string, error), name string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pvc.yaml")
	if err := os.WriteFile(f, []byte(strings.ReplaceAll(claimManifest, "%s", name)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := must(t, k, "apply", "-f", f); !strings.Contains(out, "created") {
		t.Fatalf("kubectl apply -f pvc.yaml: %s", out)
	}
}

// startRunWith creates a run with parameters and returns its id at once.
func (b *box) startRunWith(pipelineID string, params map[string]any) string {
	b.t.Helper()
	body, _ := json.Marshal(map[string]any{
		"display_name":               "pvc",
		"pipeline_version_reference": map[string]string{"pipeline_id": pipelineID},
		"runtime_config":             map[string]any{"parameters": params},
	})
	var r run
	if code := b.do("POST", "/runs", bytes.NewReader(body), "application/json", &r); code != 200 {
		b.t.Fatalf("create run: HTTP %d: %+v", code, r)
	}
	return r.RunID
}

// TestKubectlPVCAcrossRuns: a claim made with kubectl apply -f pvc.yaml is what a
// kfp-kubernetes mount_pvc task mounts: KFP's pvc_mount fixture (compiled by the SDK)
// writes a file there in one run, and a second run mounting the claim reads it. Deleting the
// claim while that task runs leaves it Terminating, with its files, until the task ends;
// then it is gone, and a run mounting it fails saying the claim does not exist.
func TestKubectlPVCAcrossRuns(t *testing.T) {
	py := hostPython(t)
	up := serveUpstream(t)
	b := startBox(t, func(c *appliance.Config) {
		c.Runtime, c.HostPython, c.PypiUpstream = "host", py, up.URL+"/pypi/simple/"
	})
	k := kubectl(t, b)
	applyClaim(t, k, "shared-data")
	dir := filepath.Join(b.data, "volumes", "kubeflow", "shared-data")

	r := b.runPipeline(b.upload(sharedFixture(t, "pvc_mount.yaml"), "pvc-mount"), map[string]any{"pvc_name": "shared-data"})
	if r.State != "SUCCEEDED" {
		t.Fatalf("pvc_mount run: %s: %s", r.State, taskErrors(r))
	}
	if got, err := os.ReadFile(filepath.Join(dir, "file.txt")); err != nil || string(got) != "hello" {
		t.Fatalf("the claim's directory after the first run: %q %v", got, err)
	}

	reader := b.upload(filepath.Join(testdata, "pvc_read.yaml"), "pvc-read")
	id := b.startRunWith(reader, map[string]any{"pvc_name": "shared-data"})
	eventually(t, k, func(out string) bool { return strings.Contains(out, "Running") }, "get", "pods", "-l", "pipeline/runid="+id)
	pod := strings.TrimPrefix(strings.TrimSpace(must(t, k, "get", "pods", "-l", "pipeline/runid="+id, "-o", "name")), "pod/")
	if out := must(t, k, "describe", "pvc", "shared-data"); pod == "" || !strings.Contains(out, "Used By:") || !strings.Contains(out, pod) {
		t.Fatalf("kubectl describe pvc does not name the running pod %s:\n%s", pod, out)
	}
	if out := must(t, k, "delete", "pvc", "shared-data", "--wait=false"); !strings.Contains(out, "deleted") {
		t.Fatalf("kubectl delete pvc: %s", out)
	}
	if out := must(t, k, "get", "pvc", "shared-data"); !strings.Contains(out, "Terminating") {
		t.Fatalf("a claim in use after delete:\n%s", out)
	}
	if out := must(t, k, "get", "pvc", "shared-data", "-o", "jsonpath={.metadata.finalizers}"); !strings.Contains(out, "kubernetes.io/pvc-protection") {
		t.Fatalf("finalizers of a claim being deleted: %s", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatalf("the claim's directory went while its task ran: %v", err)
	}
	r = b.waitRun(id)
	if got := r.task(t, "read").OutputParameters["seen"]; r.State != "SUCCEEDED" || got != "hello" {
		t.Fatalf("second run: %s, read %v (want the first run's hello): %s", r.State, got, taskErrors(r))
	}
	// The task's end is recorded just after it exits; the claim goes when it is released.
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := k("get", "pvc", "shared-data")
		if err != nil && strings.Contains(out, "NotFound") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the claim is still there after its task ended: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the claim's directory after its task ended: %v", err)
	}

	r = b.runPipeline(reader, map[string]any{"pvc_name": "shared-data"})
	if r.State != "FAILED" || !strings.Contains(taskErrors(r), `persistentvolumeclaim "shared-data" not found in namespace "kubeflow"`) {
		t.Fatalf("a run mounting a deleted claim: %s: %s", r.State, taskErrors(r))
	}
}

// TestKFPE2ESecretsAndPVC is the acceptance of issue 13: with the box's kubeconfig, the
// secrets KFP's end-to-end suite creates (test-secret-1..3 in kubeflow) and a claim made
// with kubectl, KFP's own compiled pipelines using kfp-kubernetes use_secret_as_env,
// use_secret_as_volume and mount_pvc succeed.
func TestKFPE2ESecretsAndPVC(t *testing.T) {
	py := hostPython(t)
	up := serveUpstream(t)
	b := startBox(t, func(c *appliance.Config) {
		c.Runtime, c.HostPython, c.PypiUpstream = "host", py, up.URL+"/pypi/simple/"
	})
	k := kubectl(t, b)
	must(t, k, "create", "secret", "generic", "test-secret-1", "-n", "kubeflow", "--from-literal=username=user1")
	must(t, k, "create", "secret", "generic", "test-secret-2", "-n", "kubeflow", "--from-literal=password=psw1")
	must(t, k, "create", "secret", "generic", "test-secret-3", "-n", "kubeflow", "--from-literal=password=psw2")
	applyClaim(t, k, "e2e-data")
	for _, c := range []struct {
		fixture string
		params  map[string]any
	}{
		{"critical/pipeline_with_secret_as_env.yaml", map[string]any{}},
		{"pipeline_with_secret_as_volume.yaml", map[string]any{}},
		{"pvc_mount.yaml", map[string]any{"pvc_name": "e2e-data"}},
	} {
		r := b.runPipeline(b.upload(sharedFixture(t, c.fixture), strings.TrimSuffix(filepath.Base(c.fixture), ".yaml")), c.params)
		if r.State != "SUCCEEDED" {
			t.Errorf("%s: %s: %s", c.fixture, r.State, taskErrors(r))
		}
	}
	if out := must(t, k, "get", "pvc", "e2e-data", "-o", "jsonpath={.status.phase}"); out != "Bound" {
		t.Errorf("claim after the runs: %q", out)
	}
}
