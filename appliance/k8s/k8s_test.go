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
