package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// recorder is a server that records each request's path, query and Authorization header.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) server(t *testing.T, answer func(w http.ResponseWriter, req *http.Request)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(r.handler(answer))
	t.Cleanup(srv.Close)
	return srv
}

// tlsServer is server over TLS: kubeconfig credentials are only sent over TLS.
func (r *recorder) tlsServer(t *testing.T, answer func(w http.ResponseWriter, req *http.Request)) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(r.handler(answer))
	t.Cleanup(srv.Close)
	return srv
}

func (r *recorder) handler(answer func(w http.ResponseWriter, req *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, req.Clone(context.Background()))
		r.mu.Unlock()
		answer(w, req)
	})
}

func (r *recorder) last() *http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1]
}

func healthy(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"multi_user":true}`)
}

func TestTokenFileIsReadForEveryRequest(t *testing.T) {
	var rec recorder
	srv := rec.server(t, healthy)
	tf := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tf, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Server: srv.URL, TokenFile: tf})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Healthz(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rec.last().Header.Get("Authorization"); got != "Bearer first" {
		t.Fatalf("Authorization = %q", got)
	}
	if err := os.WriteFile(tf, []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Healthz(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rec.last().Header.Get("Authorization"); got != "Bearer rotated" {
		t.Fatalf("after rotation Authorization = %q", got)
	}
}

func writeKubeconfig(t *testing.T, srv *httptest.Server, user string) string {
	t.Helper()
	ca := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	p := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: %q, certificate-authority-data: %s}
users:
- name: u
  user:
%s
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`, srv.URL, ca, user)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKubeconfig reaches KFP through the cluster's service proxy with the kubeconfig's
// token, and with an exec credential plugin, as kfp.Client() without a host does.
func TestKubeconfig(t *testing.T) {
	var rec recorder
	srv := rec.tlsServer(t, healthy)
	ctx := context.Background()

	kc := writeKubeconfig(t, srv, "    token: static-token")
	c, err := New(Options{Kubeconfig: kc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Healthz(ctx); err != nil {
		t.Fatal(err)
	}
	r := rec.last()
	if r.URL.Path != "/api/v1/namespaces/kubeflow/services/ml-pipeline:http/proxy/apis/v2beta1/healthz" {
		t.Fatalf("path %q", r.URL.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer static-token" {
		t.Fatalf("Authorization = %q", got)
	}

	plugin := filepath.Join(t.TempDir(), "cred-plugin")
	script := `#!/bin/sh
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-token"}}'
`
	if err := os.WriteFile(plugin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	kc = writeKubeconfig(t, srv, fmt.Sprintf(`    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: %s
      interactiveMode: Never`, plugin))
	c, err = New(Options{Kubeconfig: kc, KFPNamespace: "pipelines", Server: ""})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Healthz(ctx); err != nil {
		t.Fatal(err)
	}
	r = rec.last()
	if got := r.Header.Get("Authorization"); got != "Bearer exec-token" || !strings.HasPrefix(r.URL.Path, "/api/v1/namespaces/pipelines/") {
		t.Fatalf("exec credential: Authorization %q, path %q", got, r.URL.Path)
	}
}

func TestErrorsAndUsage(t *testing.T) {
	var rec recorder
	srv := rec.server(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
		fmt.Fprint(w, `{"code":6,"message":"already exists"}`)
	})
	c, err := New(Options{Server: srv.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateExperiment(context.Background(), "e", "")
	if !IsStatus(err, http.StatusConflict) || err.Error() != "already exists" {
		t.Fatalf("err = %v", err)
	}
	if r := rec.last(); r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("content type %q", r.Header.Get("Content-Type"))
	}
	for name, o := range map[string]Options{
		"no server":     {},
		"not http":      {Server: "ftp://x"},
		"no token file": {Server: "http://x", TokenFile: filepath.Join(t.TempDir(), "none")},
		"no kubeconfig": {Kubeconfig: filepath.Join(t.TempDir(), "none")},
		"bad CA":        {Server: "https://x", CAPEM: []byte("nope")},
	} {
		if _, err := New(o); !errors.Is(err, ErrUsage) {
			t.Errorf("%s: err = %v, want ErrUsage", name, err)
		}
	}
	un, _ := New(Options{Server: "http://127.0.0.1:1"})
	var u *Unreachable
	if _, err := un.Healthz(context.Background()); !errors.As(err, &u) {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestSpecDigestIsCanonical(t *testing.T) {
	a := json.RawMessage(`{"b": 1, "a": {"y": [1, 2.0], "x": "<&>"}}`)
	b := json.RawMessage(`{"a":{"x":"<&>","y":[1.0,2]},"b":1.0}`)
	da, err := SpecDigest(a)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := SpecDigest(b)
	if da != db || !strings.HasPrefix(da, "sha256:") {
		t.Fatalf("%s != %s", da, db)
	}
	dc, _ := SpecDigest(json.RawMessage(`{"b":2,"a":{"x":"<&>","y":[1,2]}}`))
	if dc == da {
		t.Fatal("a changed spec has the same digest")
	}
	if _, err := SpecDigest(json.RawMessage(`{`)); err == nil {
		t.Fatal("broken JSON has a digest")
	}
}

func TestSpecPackageSplitsPlatformSpec(t *testing.T) {
	pkg, err := SpecPackage(json.RawMessage(`{"pipeline_spec":{"root":{},"pipelineInfo":{"name":"p"}},"platform_spec":{"platforms":{"kubernetes":{}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(pkg), "---\n")
	if len(docs) != 2 || !strings.Contains(docs[0], "pipelineInfo") || !strings.Contains(docs[1], "platforms") {
		t.Fatalf("package:\n%s", pkg)
	}
	pkg, _ = SpecPackage(json.RawMessage(`{"root":{},"pipelineInfo":{"name":"p"}}`))
	if strings.Contains(string(pkg), "---") || !strings.Contains(string(pkg), "name: p") {
		t.Fatalf("package:\n%s", pkg)
	}
}
