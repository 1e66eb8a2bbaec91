package appliance_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/internal/syncbuf"
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

func kubectlBin(t *testing.T) string {
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	return bin
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
	// The secret in kubeflow comes from a server-side apply through the box's front door
	// (token, the apply-patch+yaml content type).
	manifest := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(manifest, []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: test-secret-1\n  namespace: kubeflow\nstringData:\n  username: user1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := must(t, k, "apply", "--server-side", "-f", manifest); !strings.Contains(out, "serverside-applied") {
		t.Fatalf("kubectl apply --server-side: %s", out)
	}
	// The kubeconfig's context names kubeflow: no -n needed. Patches through the front door
	// (strategic merge, then JSON patch) set the mode the task reads.
	must(t, k, "create", "configmap", "app-config", "--from-literal=mode=slow")
	must(t, k, "patch", "configmap", "app-config", "-p", `{"data":{"mode":"medium"}}`)
	must(t, k, "patch", "configmap", "app-config", "--type", "json", "-p", `[{"op":"test","path":"/data/mode","value":"medium"},{"op":"replace","path":"/data/mode","value":"fast"}]`)
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

// startRun creates a run of the pipeline's latest version and returns its id at once.
func (b *box) startRun(pipelineID string) string {
	b.t.Helper()
	body, _ := json.Marshal(map[string]any{
		"display_name":               "kubectl",
		"pipeline_version_reference": map[string]string{"pipeline_id": pipelineID},
	})
	var r run
	if code := b.do("POST", "/runs", bytes.NewReader(body), "application/json", &r); code != 200 {
		b.t.Fatalf("create run: HTTP %d: %+v", code, r)
	}
	return r.RunID
}

// waitRun waits until the run ends.
func (b *box) waitRun(id string) run {
	b.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var got run
		b.do("GET", "/runs/"+id, nil, "", &got)
		switch got.State {
		case "SUCCEEDED", "FAILED", "CANCELED", "SKIPPED":
			return got
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("run %s still %s after 3 minutes", id, got.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventually runs kubectl until its output satisfies ok, or fails after a minute.
func eventually(t *testing.T, k func(...string) (string, error), ok func(string) bool, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := k(args...)
		if err == nil && ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubectl %s never gave the expected answer; last: %v\n%s", strings.Join(args, " "), err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestKubectlPods drives the real kubectl over a run as a KFP user would: the task
// attempt is a pod (get, -o wide, -o yaml, describe, selectors), `kubectl logs -f` streams
// it while it runs, `kubectl delete pod` fails the attempt and the retry policy starts a
// new pod, and logs --previous, --tail and --timestamps read the attempts' lines.
func TestKubectlPods(t *testing.T) {
	b := startBox(t, func(c *appliance.Config) { c.Runtime = "host" })
	k := kubectl(t, b)
	id := b.startRun(b.upload(filepath.Join(testdata, "pods.yaml"), "pods"))
	sel := "pipeline/runid=" + id
	pod0 := strings.TrimSpace(eventually(t, k, func(s string) bool { return strings.HasSuffix(strings.TrimSpace(s), "-0") },
		"get", "pods", "-l", sel, "--field-selector", "status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}"))
	pod1 := strings.TrimSuffix(pod0, "0") + "1"

	out := must(t, k, "get", "pods")
	if !regexp.MustCompile(`(?m)^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^`+pod0+`\s+1/1\s+Running\s+0\s+\S+$`).MatchString(out) {
		t.Fatalf("kubectl get pods:\n%s", out)
	}
	if out := must(t, k, "get", "pods", "-o", "wide"); !regexp.MustCompile(pod0 + `\s+1/1\s+Running\s+0\s+\S+\s+127\.0\.0\.1\s+\S+`).MatchString(out) {
		t.Fatalf("kubectl get pods -o wide:\n%s", out)
	}
	yaml := must(t, k, "get", "pod", pod0, "-o", "yaml")
	for _, want := range []string{"pipelines.kubeflow.org/v2_component: \"true\"", "pipeline/runid: " + id, "team: vision", "owner: alice",
		"disktype: ssd", "key: dedicated", "cpu: 500m", "memory: 256Mi", "cpu: 100m", "image: busybox", "phase: Running", "restartPolicy: Never"} {
		if !strings.Contains(yaml, want) {
			t.Errorf("kubectl get pod -o yaml lacks %q:\n%s", want, yaml)
		}
	}
	desc := must(t, k, "describe", "pod", pod0)
	for _, want := range []string{"Name:", pod0, "Namespace:", "kubeflow", "Status:", "Running", "disktype=ssd", "dedicated=ml:NoSchedule", "Image:", "busybox"} {
		if !strings.Contains(desc, want) {
			t.Errorf("kubectl describe pod lacks %q:\n%s", want, desc)
		}
	}
	if out := must(t, k, "get", "pods", "-A"); !regexp.MustCompile(`(?m)^kubeflow\s+` + pod0 + `\s+1/1\s+Running`).MatchString(out) {
		t.Errorf("kubectl get pods -A:\n%s", out)
	}
	if out := must(t, k, "get", "pods", "-n", "default"); !strings.Contains(out, "No resources found") {
		t.Errorf("kubectl get pods -n default (runs execute in kubeflow):\n%s", out)
	}
	if out := must(t, k, "get", "pods", "-l", "team=vision", "-o", "name"); strings.TrimSpace(out) != "pod/"+pod0 {
		t.Errorf("label selector team=vision: %q", out)
	}
	if out := must(t, k, "get", "pods", "--field-selector", "status.phase=Succeeded", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("field selector status.phase=Succeeded before any pod succeeded: %q", out)
	}

	// kubectl get pods -w follows the pods of the run from here on.
	watch := exec.Command(kubectlBin(t), "--kubeconfig", b.a.KubeconfigPath(), "--cache-dir", t.TempDir(), "get", "pods", "-l", sel, "-w", "--output-watch-events")
	var watchOut syncbuf.Buffer
	watch.Stdout, watch.Stderr = &watchOut, &watchOut
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = watch.Process.Kill(); _ = watch.Wait() })

	// kubectl logs -f streams the running attempt.
	follow := exec.Command(kubectlBin(t), "--kubeconfig", b.a.KubeconfigPath(), "--cache-dir", t.TempDir(), "logs", "-f", pod0)
	stdout, _ := follow.StdoutPipe()
	var stderr bytes.Buffer
	follow.Stderr = &stderr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = follow.Process.Kill(); _ = follow.Wait() })
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var seen []string
	first := ""
	timeout := time.After(time.Minute)
	for first == "" || len(seen) < 2 || !strings.HasPrefix(seen[len(seen)-1], "tick") {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("kubectl logs -f ended while the task ran: %q\n%s", seen, stderr.String())
			}
			seen = append(seen, l)
			first = seen[0]
		case <-timeout:
			t.Fatalf("kubectl logs -f streamed no ticks: %q\n%s", seen, stderr.String())
		}
	}
	if first != "first attempt" {
		t.Fatalf("kubectl logs -f began with %q", first)
	}
	// A line printed after the stream began arrives on it: the log is followed, not dumped.
	before := len(seen)
	select {
	case l := <-lines:
		seen = append(seen, l)
	case <-time.After(30 * time.Second):
		t.Fatalf("no new line on kubectl logs -f after %d lines", before)
	}

	// Deleting the pod fails the attempt; the retry policy starts attempt 1, which succeeds.
	must(t, k, "delete", "pod", pod0)
	done := make(chan error, 1)
	go func() {
		for l := range lines {
			seen = append(seen, l)
		}
		done <- follow.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("kubectl logs -f: %v\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("kubectl logs -f did not end when its attempt ended")
	}
	for _, l := range seen {
		if strings.Contains(l, "second attempt") {
			t.Fatalf("kubectl logs -f of attempt 0 showed attempt 1's output: %q", seen)
		}
	}
	r := b.waitRun(id)
	if r.State != "SUCCEEDED" {
		t.Fatalf("run %s after the pod was deleted (the retry should succeed): %+v", r.State, r.RunDetails.TaskDetails)
	}
	out = must(t, k, "get", "pods", "-l", sel)
	if !regexp.MustCompile(`(?m)^`+pod1+`\s+0/1\s+Completed\s+0\s`).MatchString(out) || strings.Contains(out, pod0) {
		t.Fatalf("kubectl get pods after the retry (the deleted pod is gone, the retry's pod completed):\n%s", out)
	}
	if out, err := k("get", "pod", pod0); err == nil || !strings.Contains(out, "NotFound") {
		t.Errorf("kubectl get of the deleted pod: %v %q", err, out)
	}
	if out := must(t, k, "get", "pods", "-l", sel, "--field-selector", "status.phase=Succeeded", "-o", "name"); strings.TrimSpace(out) != "pod/"+pod1 {
		t.Errorf("field selector status.phase=Succeeded: %q", out)
	}
	if out := must(t, k, "logs", pod1); out != "second attempt\ndone\n" {
		t.Errorf("kubectl logs %s = %q", pod1, out)
	}
	prev := must(t, k, "logs", pod1, "--previous")
	if !strings.HasPrefix(prev, "first attempt\ntick 1\n") || strings.Contains(prev, "second") {
		t.Errorf("kubectl logs --previous = %q", prev)
	}
	if out := must(t, k, "logs", pod1, "--previous", "--tail=1"); !regexp.MustCompile(`^tick \d+\n$`).MatchString(out) {
		t.Errorf("kubectl logs --previous --tail=1 = %q", out)
	}
	if out := must(t, k, "logs", pod1, "--timestamps"); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+Z second attempt\n\S+Z done\n$`).MatchString(out) {
		t.Errorf("kubectl logs --timestamps = %q", out)
	}
	if out := must(t, k, "logs", pod1, "--since=1h"); out != "second attempt\ndone\n" {
		t.Errorf("kubectl logs --since=1h = %q", out)
	}

	// The watch saw the running pod, its deletion and the retry's pod to its completion.
	// Whether the retry's pod is seen Running depends on speed: an attempt that ends within
	// the engine's launch pass has its start and its end in one write, so one event (as a
	// kubelet that reports a short container's start and end together; a fast retry may even
	// appear completed). Its appearance and its completion are always seen.
	_ = watch.Process.Signal(os.Interrupt)
	_ = watch.Wait()
	wout := watchOut.String()
	for _, re := range []string{`(?m)^ADDED\s+` + pod0 + `\s+1/1\s+Running`, `(?m)^DELETED\s+` + pod0 + `\s`, `(?m)^ADDED\s+` + pod1 + `\s`, `(?m)^(ADDED|MODIFIED)\s+` + pod1 + `\s+0/1\s+Completed`} {
		if !regexp.MustCompile(re).MatchString(wout) {
			t.Errorf("kubectl get pods -w --output-watch-events lacks %s:\n%s", re, wout)
		}
	}
	if out, err := k("delete", "pod", pod1); err == nil || !strings.Contains(out, "stay with their run") {
		t.Errorf("kubectl delete of a finished pod: %v %q", err, out)
	}
	if out, err := k("get", "pods", "--field-selector", "spec.containers=x"); err == nil || !strings.Contains(out, "not supported") {
		t.Errorf("unsupported field selector: %v %q", err, out)
	}
}
