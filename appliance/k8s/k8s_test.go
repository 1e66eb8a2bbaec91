package k8s_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/appliance/k8s"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
)

func newStore(t *testing.T) *k8s.Store {
	t.Helper()
	db, err := bolt.Open(context.Background(), kv.Options{Path: filepath.Join(t.TempDir(), "meta.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return k8s.NewStore(db)
}

func serve(t *testing.T, s *k8s.Store) string { return serveTB(t, s) }

func serveTB(t testing.TB, s *k8s.Store) string {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	g := gin.New()
	s.Routes(g)
	return listen(t, &http.Server{Handler: g})
}

// listen serves srv on a loopback port until the test ends.
func listen(t testing.TB, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestSecretLifecycle(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	in := &k8s.Object{Metadata: k8s.ObjectMeta{Name: "test-secret-1"}, Data: map[string][]byte{"username": []byte("user1")}}
	out, err := s.Create(ctx, "secrets", "kubeflow", in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Type != "Opaque" || out.Metadata.ResourceVersion == "" || out.Metadata.UID == "" {
		t.Fatalf("created object lacks defaults: %+v", out.Metadata)
	}
	if _, err := s.Create(ctx, "secrets", "kubeflow", &k8s.Object{Metadata: k8s.ObjectMeta{Name: "test-secret-1"}}); !errors.Is(err, k8s.ErrAlreadyExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	data, err := s.Secret(ctx, "test-secret-1")
	if err != nil || string(data["username"]) != "user1" {
		t.Fatalf("Secret = %v, %v", data, err)
	}
	stale := *out
	stale.Metadata.ResourceVersion = "999999"
	stale.Data = map[string][]byte{"username": []byte("x")}
	if _, err := s.Update(ctx, "secrets", "kubeflow", "test-secret-1", &stale); !errors.Is(err, k8s.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	if _, err := s.Create(ctx, "secrets", "kubeflow", &k8s.Object{Metadata: k8s.ObjectMeta{Name: "Bad_Name"}}); !errors.Is(err, k8s.ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := s.Delete(ctx, "secrets", "kubeflow", "test-secret-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Secret(ctx, "test-secret-1"); !errors.Is(err, k8s.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestHTTPWireShape(t *testing.T) {
	url := serve(t, newStore(t))
	body := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s1"},"stringData":{"password":"psw1"}}`
	resp, err := http.Post(url+"/api/v1/namespaces/default/secrets", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %v", resp.StatusCode, got)
	}
	if d := got["data"].(map[string]any)["password"]; d != "cHN3MQ==" {
		t.Fatalf("secret data not base64 on the wire: %v", d)
	}
	resp, err = http.Get(url + "/api/v1/namespaces/default/secrets/missing")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != 404 || st["kind"] != "Status" || st["reason"] != "NotFound" {
		t.Fatalf("missing: %d %v", resp.StatusCode, st)
	}
	resp, err = http.Post(url+"/api/v1/namespaces/default/secrets", "application/json", strings.NewReader(`{"metadata":`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("malformed body: %d", resp.StatusCode)
	}
}

// TestKubectl drives the real kubectl against the subset, as a user would.
func TestKubectl(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kubectl is not installed (apt-get install kubectl); CI requires this test")
		}
		t.Skip("kubectl not installed; install it to run this test (required when CI is set)")
	}
	s := newStore(t)
	url := serve(t, s)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(kubectl, append([]string{"--server", url, "--namespace", "kubeflow", "--cache-dir", t.TempDir()}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	run("create", "secret", "generic", "test-secret-1", "--from-literal=username=user1")
	run("create", "configmap", "cfg", "--from-literal=mode=fast")
	if out := run("get", "secrets"); !strings.Contains(out, "test-secret-1") {
		t.Fatalf("kubectl get secrets:\n%s", out)
	}
	if out := run("get", "secret", "test-secret-1", "-o", "jsonpath={.data.username}"); out != "dXNlcjE=" {
		t.Fatalf("jsonpath = %q", out)
	}
	data, err := s.Secret(context.Background(), "test-secret-1")
	if err != nil || string(data["username"]) != "user1" {
		t.Fatalf("engine view: %v %v", data, err)
	}
	cm, err := s.ConfigMap(context.Background(), "cfg")
	if err != nil || cm["mode"] != "fast" {
		t.Fatalf("configmap: %v %v", cm, err)
	}
	run("delete", "secret", "test-secret-1")
	if _, err := s.Secret(context.Background(), "test-secret-1"); !errors.Is(err, k8s.ErrNotFound) {
		t.Fatalf("after kubectl delete: %v", err)
	}
}

// FuzzDecodeBody feeds arbitrary request bodies to the decoders: an error, never a panic.
func FuzzDecodeBody(f *testing.F) {
	f.Add([]byte(`{"kind":"Secret","metadata":{"name":"a"},"data":{"k":"dg=="}}`))
	f.Add([]byte("k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x00"))
	f.Add([]byte(`{"kind":"Secret","data":{"k":"!!"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = k8s.DecodeBody("", body)
	})
}

// FuzzParseLogOptions: any query is parsed or refused with an error, never a panic, and
// what is accepted is within the API server's bounds.
func FuzzParseLogOptions(f *testing.F) {
	f.Add("follow=true&tailLines=10&timestamps=1&sinceSeconds=60")
	f.Add("previous=true&limitBytes=5&container=main")
	f.Add("sinceTime=2026-01-01T00:00:00Z&sinceSeconds=1")
	f.Add("tailLines=-1&follow=maybe")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		o, err := k8s.ParseLogOptions(q, time.Unix(1e9, 0))
		if err != nil {
			return
		}
		if o.TailLines < -1 || o.LimitBytes < 0 {
			t.Fatalf("accepted %q as %+v", raw, o)
		}
	})
}

// FuzzParseSelectors: label and field selectors are parsed or refused, never a panic.
func FuzzParseSelectors(f *testing.F) {
	f.Add("pipeline/runid=abc,team in (a,b),!x", "status.phase=Running,metadata.name!=p")
	f.Add("a=", "spec.containers=x")
	f.Add("(((", "=,=")
	f.Fuzz(func(t *testing.T, l, fs string) {
		_, _, _ = k8s.ParseSelectors(l, fs)
	})
}

// TestKubectlApplyPatchEdit: kubectl apply creates and then patches (strategic merge),
// kubectl patch --type merge and kubectl edit change objects, and the engine reads the
// result; JSON patch works and an unsupported patch type is 415.
func TestKubectlApplyPatchEdit(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kubectl is not installed (scripts/ensure-deps.sh installs it); CI requires this test")
		}
		t.Skip("kubectl not installed; run scripts/ensure-deps.sh (CI=true turns this skip into a failure)")
	}
	s := newStore(t)
	url := serve(t, s)
	dir := t.TempDir()
	run := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(kubectl, append([]string{"--server", url, "--namespace", "kubeflow", "--cache-dir", dir}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	must := func(env []string, args ...string) string {
		t.Helper()
		out, err := run(env, args...)
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		return out
	}
	manifest := filepath.Join(dir, "cfg.yaml")
	write := func(mode, extra string) {
		os.WriteFile(manifest, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  labels: {team: vision}\ndata:\n  mode: "+mode+"\n"+extra), 0o644)
	}
	write("fast", "  level: \"3\"\n")
	if out := must(nil, "apply", "-f", manifest); !strings.Contains(out, "created") {
		t.Fatalf("first apply: %s", out)
	}
	write("slow", "")
	if out := must(nil, "apply", "-f", manifest); !strings.Contains(out, "configured") {
		t.Fatalf("second apply: %s", out)
	}
	cm, err := s.ConfigMap(context.Background(), "app-config")
	if err != nil || cm["mode"] != "slow" || cm["level"] != "" {
		t.Fatalf("after apply: %v %v (want mode=slow and level removed, as apply removes what the manifest dropped)", cm, err)
	}
	must(nil, "patch", "configmap", "app-config", "--type", "merge", "-p", `{"data":{"extra":"x","mode":null}}`)
	if cm, _ = s.ConfigMap(context.Background(), "app-config"); cm["extra"] != "x" || cm["mode"] != "" {
		t.Fatalf("after merge patch: %v", cm)
	}
	must(nil, "create", "secret", "generic", "test-secret-1", "--from-literal=username=user1")
	editor := filepath.Join(dir, "editor.sh")
	os.WriteFile(editor, []byte("#!/bin/sh\nsed -i 's/username: dXNlcjE=/username: dXNlcjI=/' \"$1\"\n"), 0o755)
	must([]string{"KUBE_EDITOR=" + editor}, "edit", "secret", "test-secret-1")
	if d, err := s.Secret(context.Background(), "test-secret-1"); err != nil || string(d["username"]) != "user2" {
		t.Fatalf("after kubectl edit: %q %v", d["username"], err)
	}
	must(nil, "patch", "secret", "test-secret-1", "--type", "json", "-p", `[{"op":"remove","path":"/data/username"}]`)
	if d, err := s.Secret(context.Background(), "test-secret-1"); err != nil || d["username"] != nil {
		t.Fatalf("after json patch: %q %v", d, err)
	}
	req, _ := http.NewRequest(http.MethodPatch, url+"/api/v1/namespaces/kubeflow/secrets/test-secret-1", strings.NewReader("a: b"))
	req.Header.Set("Content-Type", "application/x-yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("unsupported patch type: %d", resp.StatusCode)
	}
}

// FuzzMergePatch: merge and strategic patches of an object give JSON or an error.
func FuzzMergePatch(f *testing.F) {
	f.Add([]byte(`{"kind":"ConfigMap","data":{"a":"1"}}`), []byte(`{"data":{"a":null,"b":"2"}}`))
	f.Add([]byte(`{"data":{"a":"1"}}`), []byte(`{"data":{"$patch":"replace","c":"3"},"$setElementOrder/x":[]}`))
	f.Add([]byte(`[]`), []byte(`"x"`))
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		for _, fn := range []func(a, b []byte) ([]byte, error){k8s.MergeJSON, k8s.MergeStrategic} {
			out, err := fn(doc, patch)
			if err == nil && !json.Valid(out) {
				t.Fatalf("patch gave invalid JSON %q", out)
			}
		}
	})
}
