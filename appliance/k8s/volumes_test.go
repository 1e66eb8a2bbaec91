package k8s_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/kfp-box/kfp-box/appliance/engine"
	"github.com/kfp-box/kfp-box/appliance/k8s"
	"github.com/kfp-box/kfp-box/internal/testmaterial"
)

// the box's Store is the engine's Volumes.
var _ engine.Volumes = (*k8s.Store)(nil)

// kubectlFor returns a runner of the real kubectl against url (namespace kubeflow).
func kubectlFor(t *testing.T, url string) (bin string, args func(...string) []string, run func(...string) (string, error)) {
	t.Helper()
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		testmaterial.Missing(t, "kubectl is not installed (scripts/ensure-deps.sh installs it)")
	}
	cache := t.TempDir()
	args = func(a ...string) []string {
		return append([]string{"--server", url, "--namespace", "kubeflow", "--cache-dir", cache}, a...)
	}
	run = func(a ...string) (string, error) {
		cmd := exec.Command(bin, args(a...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	return bin, args, run
}

// kubectlWatch runs kubectl with a watch until the test ends and returns its lines.
func kubectlWatch(t *testing.T, bin string, args ...string) <-chan string {
	t.Helper()
	watch := exec.Command(bin, args...)
	wout, _ := watch.StdoutPipe()
	watch.Stderr = watch.Stdout
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watch.Process.Kill(); watch.Wait() })
	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(wout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}

// waitLines reads lines until one has until in it, then checks that all of want were seen.
func waitLines(t *testing.T, lines <-chan string, what, until string, want ...string) {
	t.Helper()
	var seen []string
	timeout := time.After(20 * time.Second)
	for !strings.Contains(strings.Join(seen, "\n"), until) {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s ended:\n%s", what, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
		case <-timeout:
			t.Fatalf("%s saw:\n%s", what, strings.Join(seen, "\n"))
		}
	}
	all := strings.Join(seen, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Fatalf("%s lacks %q:\n%s", what, w, all)
		}
	}
}

func mustRun(t *testing.T, run func(...string) (string, error), a ...string) string {
	t.Helper()
	out, err := run(a...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(a, " "), err, out)
	}
	return out
}

func volumeStore(t *testing.T) (*k8s.Store, string, string) {
	t.Helper()
	s := newStore(t)
	vols := filepath.Join(t.TempDir(), "volumes")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.EnsureNamespaces(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenVolumes(ctx, vols); err != nil {
		t.Fatal(err)
	}
	if err := s.StartWatch(ctx); err != nil {
		t.Fatal(err)
	}
	return s, vols, serve(t, s)
}

const pvcYAML = `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: shared-data
spec:
  accessModes: [ReadWriteMany]
  resources:
    requests:
      storage: 5Gi
`

// TestKubectlPVC: kubectl apply makes a Bound claim backed by $DATA/volumes/kubeflow/<name>
// with its request as capacity; kubectl get pvc shows the API server's columns and
// `get -w` sees it change; kubectl delete of a claim a task holds leaves it Terminating
// (finalizer kubernetes.io/pvc-protection, deletionTimestamp), refuses new tasks, and
// completes once the task releases it, with its directory gone.
func TestKubectlPVC(t *testing.T) {
	s, vols, url := volumeStore(t)
	bin, args, k := kubectlFor(t, url)
	ctx := context.Background()
	manifest := filepath.Join(t.TempDir(), "pvc.yaml")
	os.WriteFile(manifest, []byte(pvcYAML), 0o644)

	lines := kubectlWatch(t, bin, args("get", "pvc", "-w", "--output-watch-events")...)

	if out := mustRun(t, k, "apply", "-f", manifest); !strings.Contains(out, "created") {
		t.Fatalf("apply: %s", out)
	}
	dir := filepath.Join(vols, "kubeflow", "shared-data")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("claim directory %s: %v", dir, err)
	}
	out := mustRun(t, k, "get", "pvc")
	for _, want := range []string{"NAME", "STATUS", "CAPACITY", "ACCESS MODES", "shared-data", "Bound", "5Gi", "RWX"} {
		if !strings.Contains(out, want) {
			t.Fatalf("kubectl get pvc lacks %q:\n%s", want, out)
		}
	}
	if out := mustRun(t, k, "get", "pvc", "shared-data", "-o", "jsonpath={.status.phase} {.status.capacity.storage} {.metadata.finalizers[0]}"); out != "Bound 5Gi kubernetes.io/pvc-protection" {
		t.Fatalf("status: %q", out)
	}
	// A second apply with the same manifest changes nothing; a larger request grows it.
	os.WriteFile(manifest, []byte(strings.Replace(pvcYAML, "5Gi", "8Gi", 1)), 0o644)
	mustRun(t, k, "apply", "-f", manifest)
	if out := mustRun(t, k, "get", "pvc", "shared-data", "-o", "jsonpath={.status.capacity.storage}"); out != "8Gi" {
		t.Fatalf("capacity after growing the request: %q", out)
	}
	os.WriteFile(filepath.Join(dir, "f.txt"), []byte("hello"), 0o644)
	if out := mustRun(t, k, "get", "pvc", "shared-data", "-o", "jsonpath={.metadata.annotations.kfp-box\\.io/used-bytes}"); out == "" || out == "0" {
		t.Fatalf("used-bytes annotation: %q", out)
	}

	got, err := s.ResolveVolume(ctx, "shared-data")
	if err != nil || got != dir {
		t.Fatalf("ResolveVolume = %q, %v; want %s", got, err, dir)
	}
	if err := s.AcquireVolumes(ctx, "task-1", []string{"shared-data"}); err != nil {
		t.Fatal(err)
	}
	del := exec.Command(bin, args("delete", "pvc", "shared-data", "--timeout=60s")...)
	var delOut bytes.Buffer
	del.Stdout, del.Stderr = &delOut, &delOut
	if err := del.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		o, err := s.Get(ctx, "persistentvolumeclaims", "kubeflow", "shared-data")
		if err != nil {
			t.Fatalf("the claim went while a task held it: %v", err)
		}
		if o.Metadata.DeletionTimestamp != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("kubectl delete did not mark the claim for deletion")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := mustRun(t, k, "get", "pvc", "shared-data"); !strings.Contains(out, "Terminating") {
		t.Fatalf("a held claim after delete:\n%s", out)
	}
	if _, err := s.ResolveVolume(ctx, "shared-data"); err == nil || !strings.Contains(err.Error(), "being deleted") {
		t.Fatalf("a new task may mount a claim being deleted: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("directory removed while held: %v", err)
	}
	s.ReleaseVolumes("task-1")
	if err := del.Wait(); err != nil || !strings.Contains(delOut.String(), "deleted") {
		t.Fatalf("kubectl delete after the task ended: %v\n%s", err, delOut.String())
	}
	if _, err := s.Get(ctx, "persistentvolumeclaims", "kubeflow", "shared-data"); !errors.Is(err, k8s.ErrNotFound) {
		t.Fatalf("claim after release: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("claim directory after delete: %v", err)
	}
	waitLines(t, lines, "kubectl get pvc -w", "DELETED", "ADDED", "MODIFIED", "Terminating", "DELETED", "shared-data")
	// An unheld claim is deleted at once, and a missing one cannot be mounted.
	mustRun(t, k, "apply", "-f", manifest)
	mustRun(t, k, "delete", "pvc", "shared-data")
	if _, err := s.ResolveVolume(ctx, "shared-data"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("ResolveVolume of a deleted claim: %v", err)
	}
}

// TestKubectlNamespaces: namespaces are created, listed and deleted; deleting one deletes
// its secrets, configmaps and claims and the namespace, after its held claims are released;
// objects cannot be made in a namespace that does not exist or is terminating; the runs'
// namespace and default cannot be deleted.
func TestKubectlNamespaces(t *testing.T) {
	s, vols, url := volumeStore(t)
	bin, args, k := kubectlFor(t, url)
	ctx := context.Background()
	lines := kubectlWatch(t, bin, args("get", "namespaces", "-w", "--output-watch-events")...)
	mustRun(t, k, "create", "namespace", "team-a")
	if out := mustRun(t, k, "get", "namespaces"); !strings.Contains(out, "team-a") || !strings.Contains(out, "kubeflow") || !strings.Contains(out, "default") || !strings.Contains(out, "Active") {
		t.Fatalf("kubectl get namespaces:\n%s", out)
	}
	mustRun(t, k, "label", "namespace", "team-a", "team=vision")
	if out := mustRun(t, k, "get", "namespace", "team-a", "-o", "jsonpath={.metadata.labels.team} {.status.phase}"); out != "vision Active" {
		t.Fatalf("labelled namespace: %q", out)
	}
	mustRun(t, k, "-n", "team-a", "create", "secret", "generic", "s1", "--from-literal=a=b")
	mustRun(t, k, "-n", "team-a", "create", "configmap", "c1", "--from-literal=a=b")
	manifest := filepath.Join(t.TempDir(), "pvc.yaml")
	os.WriteFile(manifest, []byte(pvcYAML), 0o644)
	mustRun(t, k, "-n", "team-a", "apply", "-f", manifest)
	mustRun(t, k, "-n", "team-a", "apply", "-f", manifest) // unchanged
	mustRun(t, k, "-n", "team-b-missing", "get", "secrets")
	if out, err := k("-n", "team-b-missing", "create", "secret", "generic", "x", "--from-literal=a=b"); err == nil || !strings.Contains(out, "not found") {
		t.Fatalf("create in a missing namespace: %v %s", err, out)
	}
	// Hold the claim as a task of that namespace would.
	s.SetNamespace("team-a")
	if err := s.AcquireVolumes(ctx, "task-a", []string{"shared-data"}); err != nil {
		t.Fatal(err)
	}
	s.SetNamespace("kubeflow")
	mustRun(t, k, "delete", "namespace", "team-a", "--wait=false")
	if out := mustRun(t, k, "get", "namespace", "team-a"); !strings.Contains(out, "Terminating") {
		t.Fatalf("namespace with a held claim:\n%s", out)
	}
	if out := mustRun(t, k, "-n", "team-a", "get", "secrets,configmaps", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Fatalf("a terminating namespace's secrets and configmaps are still there:\n%s", out)
	}
	if out, err := k("-n", "team-a", "create", "secret", "generic", "late", "--from-literal=a=b"); err == nil || !strings.Contains(out, "being terminated") {
		t.Fatalf("create in a terminating namespace: %v %s", err, out)
	}
	if out := mustRun(t, k, "-n", "team-a", "get", "pvc"); !strings.Contains(out, "Terminating") {
		t.Fatalf("held claim in a terminating namespace:\n%s", out)
	}
	s.ReleaseVolumes("task-a")
	if out, err := k("get", "namespace", "team-a"); err == nil || !strings.Contains(out, "NotFound") && !strings.Contains(out, "not found") {
		t.Fatalf("namespace after its last claim went: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(vols, "team-a", "shared-data")); !os.IsNotExist(err) {
		t.Fatalf("claim directory of the deleted namespace: %v", err)
	}
	// An empty namespace goes at once.
	mustRun(t, k, "create", "namespace", "team-c")
	mustRun(t, k, "delete", "namespace", "team-c")
	if _, err := s.Get(ctx, "namespaces", "", "team-c"); !errors.Is(err, k8s.ErrNotFound) {
		t.Fatalf("empty namespace after delete: %v", err)
	}
	waitLines(t, lines, "kubectl get namespaces -w", "DELETED", "ADDED", "kubeflow", "Terminating", "DELETED", "team-a")
	for _, ns := range []string{"kubeflow", "default"} {
		out, err := k("delete", "namespace", ns)
		if err == nil || !strings.Contains(out, "Forbidden") && !strings.Contains(out, "forbidden") || !strings.Contains(out, "cannot be deleted") {
			t.Fatalf("delete namespace %s: %v %s", ns, err, out)
		}
	}
}

// TestPVCBadInput: bad names, quantities, specs and JSON are 4xx Kubernetes Status answers,
// and a claim's spec cannot change except to grow its request.
func TestPVCBadInput(t *testing.T) {
	_, _, url := volumeStore(t)
	post := func(path, body string) (int, string) {
		resp, err := http.Post(url+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var st struct{ Kind string }
		if json.Unmarshal(b, &st); resp.StatusCode >= 400 && st.Kind != "Status" {
			t.Errorf("%s %s: HTTP %d without a Status: %s", path, body, resp.StatusCode, b)
		}
		return resp.StatusCode, string(b)
	}
	pvc := func(name, spec string) string {
		return `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"` + name + `"},"spec":` + spec + `}`
	}
	good := `{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}`
	for _, c := range []struct{ body, want string }{
		{pvc("..", good), "metadata.name"},
		{pvc("a..b", good), "metadata.name"},
		{pvc("a/b", good), "metadata.name"},
		{pvc("Upper", good), "metadata.name"},
		{pvc("q", `{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"5Zi"}}}`), "quantities must match"},
		{pvc("q", `{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"0"}}}`), "greater than zero"},
		{pvc("q", `{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"-1Gi"}}}`), "greater than zero"},
		{pvc("q", `{"accessModes":["ReadWriteOnce"]}`), "storage is required"},
		{pvc("q", `{"accessModes":[],"resources":{"requests":{"storage":"1Gi"}}}`), "access mode"},
		{pvc("q", `{"accessModes":["Sometimes"],"resources":{"requests":{"storage":"1Gi"}}}`), "unsupported value"},
		{pvc("q", `{"accessModes":["ReadWriteOnce"],"volumeMode":"Block","resources":{"requests":{"storage":"1Gi"}}}`), "Filesystem"},
		{pvc("q", `"x"`), "spec"},
		{`{"kind":"PersistentVolumeClaim","metadata":`, ""},
	} {
		code, body := post("/api/v1/namespaces/kubeflow/persistentvolumeclaims", c.body)
		if code < 400 || code >= 500 || !strings.Contains(body, c.want) {
			t.Errorf("POST %s: HTTP %d %s (want 4xx mentioning %q)", c.body, code, body, c.want)
		}
	}
	for _, c := range []struct{ body, want string }{
		{`{"metadata":{"name":"Bad_NS"}}`, "metadata.name"},
		{`{"metadata":{"name":"` + strings.Repeat("a", 64) + `"}}`, "namespace must be"},
		{`{"metadata":{"name":"kubeflow"}}`, "already exists"},
	} {
		code, body := post("/api/v1/namespaces", c.body)
		if code < 400 || code >= 500 || !strings.Contains(body, c.want) {
			t.Errorf("POST namespace %s: HTTP %d %s (want 4xx mentioning %q)", c.body, code, body, c.want)
		}
	}
	if code, body := post("/api/v1/namespaces/kubeflow/persistentvolumeclaims", pvc("ok", good)); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	patch := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPatch, url+"/api/v1/namespaces/kubeflow/persistentvolumeclaims/ok", strings.NewReader(body))
		req.Header.Set("Content-Type", k8s.MergePatch)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := patch(`{"spec":{"resources":{"requests":{"storage":"512Mi"}}}}`); code != http.StatusUnprocessableEntity || !strings.Contains(body, "less than previous") {
		t.Errorf("shrinking patch: %d %s", code, body)
	}
	if code, body := patch(`{"spec":{"accessModes":["ReadWriteMany"]}}`); code != http.StatusUnprocessableEntity || !strings.Contains(body, "immutable") {
		t.Errorf("spec patch: %d %s", code, body)
	}
	if code, body := patch(`{"metadata":{"labels":{"team":"vision"}},"status":{"phase":"Lost"}}`); code != http.StatusOK || !strings.Contains(body, `"team":"vision"`) || !strings.Contains(body, `"phase":"Bound"`) {
		t.Errorf("label patch (status is the server's): %d %s", code, body)
	}
}

// TestOpenVolumesMigrates: the volumes of an older box, $DATA/volumes/<name>, move to the
// runs' namespace and become claims there, with their files; a name that cannot name a
// claim moves without one; opening again changes nothing.
func TestOpenVolumesMigrates(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	vols := filepath.Join(t.TempDir(), "volumes")
	for _, n := range []string{"kubeflow", "old-data", "Bad_Name"} {
		os.MkdirAll(filepath.Join(vols, n), 0o755)
		os.WriteFile(filepath.Join(vols, n, "file.txt"), []byte(n), 0o644)
	}
	skipped, err := s.OpenVolumes(ctx, vols)
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || skipped[0] != "Bad_Name" {
		t.Fatalf("skipped = %v, want [Bad_Name]", skipped)
	}
	for _, n := range []string{"kubeflow", "old-data"} {
		b, err := os.ReadFile(filepath.Join(vols, "kubeflow", n, "file.txt"))
		if err != nil || string(b) != n {
			t.Fatalf("migrated %s: %q %v", n, b, err)
		}
		if _, err := s.ResolveVolume(ctx, n); err != nil {
			t.Fatalf("migrated claim %s: %v", n, err)
		}
	}
	if _, err := s.OpenVolumes(ctx, vols); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(vols, "kubeflow", "kubeflow", "file.txt")); err != nil {
		t.Fatalf("a second open moved things again: %v", err)
	}
}

// TestVolumeEngineSide: CreateVolume (kfp-kubernetes CreatePVC) makes a claim and is
// idempotent for its run only; names are checked by the one check; a task cannot start on a
// claim that uses all it requests; DeleteVolume of a missing claim is not an error.
func TestVolumeEngineSide(t *testing.T) {
	s, vols, _ := volumeStore(t)
	ctx := context.Background()
	c := engine.VolumeClaim{Name: "run-abc-my-pvc", Size: "1Ki", AccessModes: []string{"ReadWriteMany"}, StorageClass: "standard", Run: "run-1"}
	if err := s.CreateVolume(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateVolume(ctx, c); err != nil {
		t.Fatalf("create again for the same run: %v", err)
	}
	c.Run = "run-2"
	if err := s.CreateVolume(ctx, c); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("create for another run: %v", err)
	}
	o, err := s.Get(ctx, "persistentvolumeclaims", "kubeflow", "run-abc-my-pvc")
	if err != nil || !strings.Contains(string(o.Spec), `"storageClassName":"standard"`) || !strings.Contains(string(o.Status), `"Bound"`) {
		t.Fatalf("created claim: %s %s %v", o.Spec, o.Status, err)
	}
	for _, bad := range []string{".", "..", "a/b", "../x", "", "A"} {
		if err := s.CreateVolume(ctx, engine.VolumeClaim{Name: bad, Size: "1Gi", AccessModes: []string{"ReadWriteOnce"}}); err == nil {
			t.Errorf("CreateVolume(%q) succeeded", bad)
		}
		if _, err := s.ResolveVolume(ctx, bad); err == nil {
			t.Errorf("ResolveVolume(%q) succeeded", bad)
		}
		if err := s.DeleteVolume(ctx, bad); err == nil {
			t.Errorf("DeleteVolume(%q) succeeded", bad)
		}
	}
	if err := s.CreateVolume(ctx, engine.VolumeClaim{Name: "sized", Size: "lots", AccessModes: []string{"ReadWriteOnce"}}); err == nil {
		t.Error("CreateVolume with size \"lots\" succeeded")
	}
	dir := filepath.Join(vols, "kubeflow", "run-abc-my-pvc")
	if err := os.WriteFile(filepath.Join(dir, "big"), bytes.Repeat([]byte("x"), 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.AcquireVolumes(ctx, "task-full", []string{"run-abc-my-pvc"}); err == nil || !strings.Contains(err.Error(), "is full") {
		t.Fatalf("AcquireVolumes of a full claim: %v", err)
	}
	if h := s.VolumeHolders("kubeflow", "run-abc-my-pvc"); len(h) != 0 {
		t.Fatalf("a refused acquire holds the claim: %v", h)
	}
	if err := s.DeleteVolume(ctx, "run-abc-my-pvc"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteVolume(ctx, "run-abc-my-pvc"); err != nil {
		t.Fatalf("DeleteVolume of a missing claim: %v", err)
	}
}

// TestDecodeProtobufClaimAndNamespace: claims and namespaces in Kubernetes' protobuf
// envelope (what kubectl may send for built-in types) decode to the objects the box keeps.
func TestDecodeProtobufClaimAndNamespace(t *testing.T) {
	envelope := func(kind string, raw []byte) []byte {
		u := kruntime.Unknown{TypeMeta: kruntime.TypeMeta{APIVersion: "v1", Kind: kind}, Raw: raw}
		b, err := u.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte("k8s\x00"), b...)
	}
	pvc := corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: map[string]string{"a": "b"}},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}}}}
	raw, _ := pvc.Marshal()
	o, err := k8s.DecodeBody("application/vnd.kubernetes.protobuf", envelope("PersistentVolumeClaim", raw))
	if err != nil {
		t.Fatal(err)
	}
	spec, n, err := k8s.ParseClaimSpec(o.Spec)
	if err != nil || o.Kind != "PersistentVolumeClaim" || o.Metadata.Name != "data" || o.Metadata.Labels["a"] != "b" || n != 2<<30 || spec.AccessModes[0] != corev1.ReadWriteOnce {
		t.Fatalf("decoded claim %+v spec %s: %v", o, o.Spec, err)
	}
	ns := corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	raw, _ = ns.Marshal()
	if o, err = k8s.DecodeBody("application/vnd.kubernetes.protobuf", envelope("Namespace", raw)); err != nil || o.Kind != "Namespace" || o.Metadata.Name != "team-a" {
		t.Fatalf("decoded namespace %+v: %v", o, err)
	}
	if _, err := k8s.DecodeBody("application/vnd.kubernetes.protobuf", envelope("PersistentVolumeClaim", []byte{0xff, 0x01})); !errors.Is(err, k8s.ErrInvalid) {
		t.Fatalf("garbage claim: %v", err)
	}
}

// FuzzParseClaimSpec: any spec is a claim spec or an ErrInvalid, never a panic; an accepted
// one requests a positive storage.
func FuzzParseClaimSpec(f *testing.F) {
	f.Add([]byte(`{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}`))
	f.Add([]byte(`{"accessModes":["ReadWriteMany"],"resources":{"requests":{"storage":"9999999999999999999Ei"}}}`))
	f.Add([]byte(`{"resources":{"requests":{"storage":"-1"}}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		spec, n, err := k8s.ParseClaimSpec(b)
		if err != nil {
			if !errors.Is(err, k8s.ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		if spec == nil || n <= 0 {
			t.Fatalf("accepted %q with %d bytes", b, n)
		}
	})
}

// FuzzParseStorage: a storage quantity is a positive byte count or an ErrInvalid.
func FuzzParseStorage(f *testing.F) {
	for _, s := range []string{"5Gi", "500M", "1e3", "0", "-1", "1.5Ki", "9223372036854775807", "99999999999Ei", "Gi"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := k8s.ParseStorage(s)
		if err != nil {
			if !errors.Is(err, k8s.ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		if n <= 0 {
			t.Fatalf("ParseStorage(%q) = %d", s, n)
		}
	})
}

// TestKubectlDryRunClaimsAndNamespaces: --dry-run=server on a claim or a namespace stores,
// makes and deletes nothing: no directory for a claim not created, the directory and the
// files of a claim not deleted, the objects of a namespace not deleted.
func TestKubectlDryRunClaimsAndNamespaces(t *testing.T) {
	s, vols, url := volumeStore(t)
	_, _, k := kubectlFor(t, url)
	ctx := context.Background()
	manifest := filepath.Join(t.TempDir(), "pvc.yaml")
	if err := os.WriteFile(manifest, []byte(pvcYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(vols, "kubeflow", "shared-data")

	mustRun(t, k, "apply", "-f", manifest, "--dry-run=server")
	if _, err := s.Get(ctx, "persistentvolumeclaims", "kubeflow", "shared-data"); !errors.Is(err, k8s.ErrNotFound) {
		t.Fatalf("a dry-run apply stored the claim: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a dry-run apply made the claim's directory: %v", err)
	}

	mustRun(t, k, "apply", "-f", manifest)
	if err := os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, k, "delete", "pvc", "shared-data", "--dry-run=server")
	if o, err := s.Get(ctx, "persistentvolumeclaims", "kubeflow", "shared-data"); err != nil || o.Metadata.DeletionTimestamp != "" {
		t.Fatalf("a dry-run delete touched the claim: %+v %v", o, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "keep.txt")); err != nil || string(b) != "data" {
		t.Fatalf("a dry-run delete removed the claim's files: %q %v", b, err)
	}

	mustRun(t, k, "create", "namespace", "team-a")
	mustRun(t, k, "-n", "team-a", "create", "configmap", "cfg", "--from-literal=a=b")
	mustRun(t, k, "delete", "namespace", "team-a", "--dry-run=server")
	if o, err := s.Get(ctx, "namespaces", "", "team-a"); err != nil || o.Metadata.DeletionTimestamp != "" {
		t.Fatalf("a dry-run delete touched the namespace: %+v %v", o, err)
	}
	if _, err := s.Get(ctx, "configmaps", "team-a", "cfg"); err != nil {
		t.Fatalf("a dry-run namespace delete removed its objects: %v", err)
	}
}

// TestKubectlServerSideApplyClaim: a claim and a namespace take server-side apply like the
// other kinds: created by it, owned by the applying manager, and a grown request applies.
func TestKubectlServerSideApplyClaim(t *testing.T) {
	s, vols, url := volumeStore(t)
	_, _, k := kubectlFor(t, url)
	ctx := context.Background()
	manifest := filepath.Join(t.TempDir(), "pvc.yaml")
	if err := os.WriteFile(manifest, []byte(pvcYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, k, "apply", "--server-side", "--field-manager=team", "-f", manifest)
	o, err := s.Get(ctx, "persistentvolumeclaims", "kubeflow", "shared-data")
	if err != nil {
		t.Fatal(err)
	}
	if ms := managers(o); len(ms) != 1 || ms[0] != "team/Apply" {
		t.Fatalf("claim's managers after a server-side apply: %v", ms)
	}
	if _, err := os.Stat(filepath.Join(vols, "kubeflow", "shared-data")); err != nil {
		t.Fatalf("claim directory: %v", err)
	}
	if err := os.WriteFile(manifest, []byte(strings.Replace(pvcYAML, "5Gi", "8Gi", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, k, "apply", "--server-side", "--field-manager=team", "-f", manifest)
	if out := mustRun(t, k, "get", "pvc", "shared-data", "-o", "jsonpath={.status.capacity.storage}"); out != "8Gi" {
		t.Fatalf("capacity after a server-side apply grew the request: %q", out)
	}
	ns := filepath.Join(t.TempDir(), "ns.yaml")
	if err := os.WriteFile(ns, []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-b\n  labels:\n    team: b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, k, "apply", "--server-side", "-f", ns)
	if out := mustRun(t, k, "get", "namespace", "team-b", "-o", "jsonpath={.metadata.labels.team} {.status.phase}"); out != "b Active" {
		t.Fatalf("namespace made by a server-side apply: %q", out)
	}
}
