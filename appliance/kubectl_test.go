package appliance_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/appliance"
)

// kubectl returns a runner of the real kubectl against b with the box's admin kubeconfig
// ($DATA/auth/kubeconfig: https, the box's CA, namespace kubeflow). Missing kubectl is a
// skip that names how to install it, and a failure when CI is set.
func kubectl(t *testing.T, b *box) func(args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kubectl is not installed (scripts/ensure-deps.sh installs it); CI requires this test")
		}
		t.Skip("kubectl not installed; run scripts/ensure-deps.sh (CI=true turns this skip into a failure)")
	}
	kc := b.a.KubeconfigPath()
	if _, err := os.Stat(kc); err != nil {
		t.Fatalf("the box wrote no kubeconfig: %v", err)
	}
	cache := t.TempDir()
	return func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"--kubeconfig", kc, "--cache-dir", cache}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
}

// must runs kubectl and fails the test when it fails.
func must(t *testing.T, run func(...string) (string, error), args ...string) string {
	t.Helper()
	out, err := run(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestKubectlRunsNamespace: runs execute in KFP's namespace, kubeflow. A secret and a
// configmap created there with kubectl reach the task; same-named objects in default,
// where the box used to look, do not.
func TestKubectlRunsNamespace(t *testing.T) {
	b := startBox(t, func(c *appliance.Config) { c.Runtime = "host" })
	k := kubectl(t, b)
	must(t, k, "create", "secret", "generic", "test-secret-1", "-n", "default", "--from-literal=username=wrong")
	must(t, k, "create", "configmap", "app-config", "-n", "default", "--from-literal=mode=wrong")
	must(t, k, "create", "secret", "generic", "test-secret-1", "-n", "kubeflow", "--from-literal=username=user1")
	// The kubeconfig's context names kubeflow: no -n needed.
	must(t, k, "create", "configmap", "app-config", "--from-literal=mode=fast")
	if out := must(t, k, "get", "namespaces"); !strings.Contains(out, "kubeflow") {
		t.Fatalf("kubectl get namespaces lacks kubeflow:\n%s", out)
	}
	r := b.runPipeline(b.upload(filepath.Join(testdata, "k8s_config.yaml"), "k8s-config"), map[string]any{})
	if got := r.task(t, "read").OutputParameters["seen"]; r.State != "SUCCEEDED" || got != "user1/fast/fast" {
		t.Fatalf("run %s, the task saw %v (want user1/fast/fast from namespace kubeflow): %+v", r.State, got, r.RunDetails.TaskDetails)
	}
}

// TestNamespaceFlag: --namespace moves where tasks look; a name that cannot be a
// namespace is a configuration error.
func TestNamespaceFlag(t *testing.T) {
	cfg := appliance.Defaults()
	if cfg.Namespace != "kubeflow" {
		t.Fatalf("default namespace = %q, want kubeflow (KFP single-user)", cfg.Namespace)
	}
	for _, bad := range []string{"", "Team_A", "a/b", ".", strings.Repeat("a", 64)} {
		cfg.Namespace = bad
		if err := cfg.Validate(); err == nil {
			t.Errorf("namespace %q accepted", bad)
		}
	}
	b := startBox(t, func(c *appliance.Config) { c.Runtime, c.Namespace = "host", "team-a" })
	k := kubectl(t, b)
	must(t, k, "create", "secret", "generic", "test-secret-1", "-n", "team-a", "--from-literal=username=user1")
	must(t, k, "create", "configmap", "app-config", "-n", "team-a", "--from-literal=mode=fast")
	r := b.runPipeline(b.upload(filepath.Join(testdata, "k8s_config.yaml"), "k8s-config"), map[string]any{})
	if got := r.task(t, "read").OutputParameters["seen"]; r.State != "SUCCEEDED" || got != "user1/fast/fast" {
		t.Fatalf("run %s, the task saw %v: %+v", r.State, got, r.RunDetails.TaskDetails)
	}
}
