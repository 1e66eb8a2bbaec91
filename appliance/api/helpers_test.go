package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// fakeEngine records the calls the API makes; its function fields override the defaults.
type fakeEngine struct {
	mu          sync.Mutex
	submitted   []string
	terminated  []string
	retried     []string
	SubmitFn    func(ctx context.Context, runID string) error
	TerminateFn func(ctx context.Context, runID string) error
	RetryFn     func(ctx context.Context, runID string) error
}

func (f *fakeEngine) Submit(ctx context.Context, id string) error {
	f.mu.Lock()
	f.submitted = append(f.submitted, id)
	f.mu.Unlock()
	if f.SubmitFn != nil {
		return f.SubmitFn(ctx, id)
	}
	return nil
}

func (f *fakeEngine) Terminate(ctx context.Context, id string) error {
	f.mu.Lock()
	f.terminated = append(f.terminated, id)
	f.mu.Unlock()
	if f.TerminateFn != nil {
		return f.TerminateFn(ctx, id)
	}
	return nil
}

func (f *fakeEngine) Retry(ctx context.Context, id string) error {
	f.mu.Lock()
	f.retried = append(f.retried, id)
	f.mu.Unlock()
	if f.RetryFn != nil {
		return f.RetryFn(ctx, id)
	}
	return nil
}

func (f *fakeEngine) calls() (sub, term, retry []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.submitted...), append([]string(nil), f.terminated...), append([]string(nil), f.retried...)
}

// testAPI is a server over a real bbolt file on a real loopback port.
type testAPI struct {
	t      testing.TB
	url    string
	meta   *meta.Store
	engine *fakeEngine
	srv    *Server
}

func newTestAPI(t testing.TB) *testAPI {
	t.Helper()
	return newTestAPIWith(t, Deps{})
}

func newTestAPIWith(t testing.TB, d Deps) *testAPI {
	t.Helper()
	ctx := context.Background()
	kvs, err := bolt.Open(ctx, kv.Options{Path: filepath.Join(t.TempDir(), "meta.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kvs.Close() })
	m, err := meta.Open(ctx, kvs, nil)
	if err != nil {
		t.Fatal(err)
	}
	eng := &fakeEngine{}
	d.Meta, d.Engine = m, eng
	srv := New(d)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &testAPI{t: t, url: hs.URL + "/apis/v2beta1", meta: m, engine: eng, srv: srv}
}

// do sends a request with a JSON (or raw string) body and decodes the JSON answer.
func (a *testAPI) do(method, path string, body any) (int, map[string]any) {
	a.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		r = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, a.url+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return a.send(req)
}

func (a *testAPI) send(req *http.Request) (int, map[string]any) {
	a.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		a.t.Fatalf("%s %s: answer is not a JSON object: %q", req.Method, req.URL, raw)
	}
	return resp.StatusCode, out
}

// upload posts a file as multipart field "uploadfile", as the SDK's upload calls do.
func (a *testAPI) upload(path, filename string, content []byte) (int, map[string]any) {
	a.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("uploadfile", filename)
	if err != nil {
		a.t.Fatal(err)
	}
	_, _ = fw.Write(content)
	_ = mw.Close()
	req, err := http.NewRequest(http.MethodPost, a.url+path, &buf)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return a.send(req)
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// specJSON returns a testdata pipeline's documents as JSON objects, as the SDK's
// MessageToDict gives them (camelCase keys).
func specJSON(t *testing.T, name string) (pipelineSpec, platformSpec map[string]any) {
	t.Helper()
	// YAML 1.2, as the server reads it: keys such as y and n stay strings.
	docs := strings.Split(string(readTestdata(t, name)), "\n---\n")
	for i, d := range docs {
		var v map[string]any
		if err := yaml.Unmarshal([]byte(d), &v); err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(js, &m); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			pipelineSpec = m
		} else {
			platformSpec = m
		}
	}
	return pipelineSpec, platformSpec
}

// keys returns the sorted keys of a JSON object.
func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func assertKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	sort.Strings(want)
	got := keys(m)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s keys = %v, want %v", what, got, want)
	}
}

func obj(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not an object", v)
	}
	return m
}

func list(t *testing.T, v any) []any {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("%v is not a list", v)
	}
	return l
}

// assertRPCError checks KFP's google.rpc.Status error shape.
func assertRPCError(t *testing.T, status int, body map[string]any, wantHTTP, wantCode int) {
	t.Helper()
	if status != wantHTTP {
		t.Fatalf("status %d, want %d (body %v)", status, wantHTTP, body)
	}
	assertKeys(t, "error", body, "code", "message", "details")
	if int(body["code"].(float64)) != wantCode || body["message"] == "" {
		t.Fatalf("error body %v, want code %d", body, wantCode)
	}
	d := obj(t, list(t, body["details"])[0])
	if d["@type"] != "type.googleapis.com/google.rpc.Status" || int(d["code"].(float64)) != wantCode {
		t.Fatalf("error details %v", d)
	}
}

type (
	metaRun = meta.Run
	ctxT    = context.Context
)
