package api

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/storage/meta"
	"github.com/kfp-box/kfp-box/storage/objects"
	"github.com/kfp-box/kfp-box/storage/objects/local"
)

// fakeLister is a hand-written ArtifactLister over a map.
type fakeLister struct {
	byRun map[string][]*meta.Artifact
}

func (f *fakeLister) ListRunArtifacts(_ context.Context, runID string) ([]*meta.Artifact, error) {
	arts, ok := f.byRun[runID]
	if !ok {
		return nil, fmt.Errorf("run %q: %w", runID, meta.ErrNotFound)
	}
	return arts, nil
}

func (f *fakeLister) GetArtifact(_ context.Context, id string) (*meta.Artifact, error) {
	for _, arts := range f.byRun {
		for _, a := range arts {
			if a.ID == id {
				return a, nil
			}
		}
	}
	return nil, fmt.Errorf("artifact %q: %w", id, meta.ErrNotFound)
}

type artifactEnv struct {
	srv   *httptest.Server
	store *local.Store
	csv   []byte
	model map[string][]byte
}

func newArtifactEnv(t *testing.T) *artifactEnv {
	t.Helper()
	store, err := local.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ctx := context.Background()
	e := &artifactEnv{store: store, csv: []byte("a,b\n1,2\n3,4\n"), model: map[string][]byte{
		"weights.bin":     bytes.Repeat([]byte{7}, 5000),
		"config/cfg.json": []byte(`{"layers":3}`),
	}}
	root := "v2/artifacts/pipe/run-1"
	put := func(key string, b []byte) {
		if err := store.Put(ctx, "mlpipeline", key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	put(root+"/prep/data.csv", e.csv)
	put(root+"/report/html_artifact", []byte("<h1>report</h1>"))
	for k, b := range e.model {
		put(root+"/train/model/"+k, b)
	}
	created := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	lister := &fakeLister{byRun: map[string][]*meta.Artifact{"run-1": {
		{ID: "1", RunID: "run-1", TaskName: "prep", Name: "data", SchemaTitle: "system.Dataset", URI: "minio://mlpipeline/" + root + "/prep/data.csv", CreatedAt: created},
		{ID: "2", RunID: "run-1", TaskName: "report", Name: "html_artifact", SchemaTitle: "system.HTML", URI: "minio://mlpipeline/" + root + "/report/html_artifact", CreatedAt: created},
		{ID: "3", RunID: "run-1", TaskName: "train", Name: "model", SchemaTitle: "system.Model", URI: "minio://mlpipeline/" + root + "/train/model", CreatedAt: created, Metadata: map[string]any{"framework": "torch"}},
		{ID: "4", RunID: "run-1", TaskName: "train", Name: "metrics", SchemaTitle: "system.Metrics", URI: "minio://mlpipeline/" + root + "/train/metrics", CreatedAt: created, Metadata: map[string]any{"accuracy": 0.9}},
	}}}
	gin.SetMode(gin.ReleaseMode)
	g := gin.New()
	registerArtifactRoutes(g.Group("/apis/v2beta1"), lister, store)
	e.srv = httptest.NewServer(g)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *artifactEnv) get(t *testing.T, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestListRunArtifacts(t *testing.T) {
	e := newArtifactEnv(t)
	resp, body := e.get(t, "/apis/v2beta1/runs/run-1/artifacts", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var out struct {
		Artifacts []artifactJSON `json:"artifacts"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Artifacts) != 4 {
		t.Fatalf("got %d artifacts, want 4: %s", len(out.Artifacts), body)
	}
	want := []struct {
		id, typ, task string
		size          int64
		hasSize       bool
		folder        bool
	}{
		{"1", "system.Dataset", "prep", int64(len(e.csv)), true, false},
		{"2", "system.HTML", "report", 15, true, false},
		{"3", "system.Model", "train", 5000 + 12, true, true},
		{"4", "system.Metrics", "train", 0, false, false},
	}
	for i, w := range want {
		a := out.Artifacts[i]
		if a.ArtifactID != w.id || a.Type != w.typ || a.TaskName != w.task || a.IsFolder != w.folder || a.CreatedAt != "2026-11-22T08:00:00Z" {
			t.Errorf("artifact %d = %+v, want %+v", i, a, w)
		}
		if (a.SizeBytes != nil) != w.hasSize || (w.hasSize && *a.SizeBytes != w.size) {
			t.Errorf("artifact %s size_bytes = %v, want %d (present %v)", a.ArtifactID, a.SizeBytes, w.size, w.hasSize)
		}
	}
	if out.Artifacts[3].Metadata["accuracy"] != 0.9 {
		t.Errorf("metrics metadata = %v", out.Artifacts[3].Metadata)
	}

	resp, body = e.get(t, "/apis/v2beta1/runs/nope/artifacts", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown run: status %d: %s", resp.StatusCode, body)
	}
	var st rpcStatus
	if err := json.Unmarshal(body, &st); err != nil || st.Code != codeNotFound {
		t.Fatalf("unknown run body %s, want a google.rpc.Status with code 5", body)
	}
}

func TestGetArtifact(t *testing.T) {
	e := newArtifactEnv(t)
	resp, body := e.get(t, "/apis/v2beta1/artifacts/3", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var a artifactJSON
	if err := json.Unmarshal(body, &a); err != nil || a.Name != "model" || a.Metadata["framework"] != "torch" {
		t.Fatalf("artifact = %+v, %v", a, err)
	}
	if resp, _ := e.get(t, "/apis/v2beta1/artifacts/99", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown artifact status = %d, want 404", resp.StatusCode)
	}
}

func TestDownloadArtifact(t *testing.T) {
	e := newArtifactEnv(t)
	tests := []struct {
		name, path, ctype string
		want              []byte
	}{
		{"colon form", "/apis/v2beta1/artifacts/1:download", "text/csv; charset=utf-8", e.csv},
		{"slash form", "/apis/v2beta1/artifacts/1/download", "text/csv; charset=utf-8", e.csv},
		{"html by type", "/apis/v2beta1/artifacts/2:download", "text/html; charset=utf-8", []byte("<h1>report</h1>")},
		{"by uri", "/apis/v2beta1/artifacts/download?uri=" + url.QueryEscape("minio://mlpipeline/v2/artifacts/pipe/run-1/prep/data.csv"), "text/csv; charset=utf-8", e.csv},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.get(t, tc.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if !bytes.Equal(body, tc.want) {
				t.Fatalf("body = %q, want %q", body, tc.want)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type = %q, want %q", got, tc.ctype)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") != "sandbox" {
				t.Errorf("missing nosniff or sandbox headers: %v", resp.Header)
			}
		})
	}
}

func TestDownloadRange(t *testing.T) {
	e := newArtifactEnv(t)
	resp, body := e.get(t, "/apis/v2beta1/artifacts/1:download", map[string]string{"Range": "bytes=2-6"})
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("status %d, want 206", resp.StatusCode)
	}
	if string(body) != string(e.csv[2:7]) {
		t.Fatalf("range body = %q, want %q", body, e.csv[2:7])
	}
	if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes 2-6/%d", len(e.csv)); got != want {
		t.Fatalf("Content-Range = %q, want %q", got, want)
	}
	// The UI's preview asks for more than there is.
	resp, body = e.get(t, "/apis/v2beta1/artifacts/1:download", map[string]string{"Range": "bytes=0-262143"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, e.csv) {
		t.Fatalf("oversized range: status %d body %q", resp.StatusCode, body)
	}
	resp, _ = e.get(t, "/apis/v2beta1/artifacts/1:download", map[string]string{"Range": "bytes=1000-"})
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("unsatisfiable range status %d, want 416", resp.StatusCode)
	}
}

func TestDownloadFolderAsTar(t *testing.T) {
	e := newArtifactEnv(t)
	resp, body := e.get(t, "/apis/v2beta1/artifacts/3:download", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-tar" {
		t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	tr := tar.NewReader(bytes.NewReader(body))
	got := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = b
	}
	if len(got) != len(e.model) {
		t.Fatalf("tar has %d files, want %d", len(got), len(e.model))
	}
	for k, b := range e.model {
		if !bytes.Equal(got[k], b) {
			t.Errorf("tar entry %q differs", k)
		}
	}
}

func TestDownloadErrors(t *testing.T) {
	e := newArtifactEnv(t)
	tests := []struct {
		name, path string
		status     int
	}{
		{"metadata-only artifact", "/apis/v2beta1/artifacts/4:download", http.StatusNotFound},
		{"unknown id", "/apis/v2beta1/artifacts/99:download", http.StatusNotFound},
		{"traversal uri", "/apis/v2beta1/artifacts/download?uri=" + url.QueryEscape("minio://mlpipeline/../../etc/passwd"), http.StatusBadRequest},
		{"absolute key", "/apis/v2beta1/artifacts/download?uri=" + url.QueryEscape("minio://mlpipeline//etc/passwd"), http.StatusBadRequest},
		{"nul", "/apis/v2beta1/artifacts/download?uri=" + url.QueryEscape("minio://mlpipeline/a\x00b"), http.StatusBadRequest},
		{"file scheme", "/apis/v2beta1/artifacts/download?uri=" + url.QueryEscape("file:///etc/passwd"), http.StatusBadRequest},
		{"bucket only", "/apis/v2beta1/artifacts/download?uri=" + url.QueryEscape("minio://mlpipeline"), http.StatusBadRequest},
		{"no uri", "/apis/v2beta1/artifacts/download", http.StatusBadRequest},
		{"gs uri", "/apis/v2beta1/artifacts/download?uri=" + url.QueryEscape("gs://mlpipeline/v2/artifacts/pipe/run-1/prep/data.csv"), http.StatusBadRequest},
		{"missing object", "/apis/v2beta1/artifacts/download?uri=" + url.QueryEscape("minio://mlpipeline/nothing/here"), http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.get(t, tc.path, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
		})
	}
}

func TestContentType(t *testing.T) {
	tests := []struct{ key, name, schema, want string }{
		{"a/b.csv", "data", "system.Dataset", "text/csv; charset=utf-8"},
		{"a/plot.png", "plot", "system.Artifact", "image/png"},
		{"a/readme", "readme.md", "system.Artifact", "text/markdown; charset=utf-8"},
		{"a/markdown_artifact", "markdown_artifact", "system.Markdown", "text/markdown; charset=utf-8"},
		{"a/metrics.json", "m", "system.Metrics", "application/json"},
		{"a/blob", "blob", "system.Artifact", ""},
	}
	for _, tc := range tests {
		if got := contentType(tc.key, tc.name, tc.schema); got != tc.want {
			t.Errorf("contentType(%q, %q, %q) = %q, want %q", tc.key, tc.name, tc.schema, got, tc.want)
		}
	}
}

var _ objects.Store = (*local.Store)(nil)
