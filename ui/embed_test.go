package ui

import (
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func builtFS() fstest.MapFS {
	return fstest.MapFS{
		"index.html":              {Data: []byte("<!doctype html><div id=app></div>")},
		"favicon.svg":             {Data: []byte("<svg/>")},
		"assets/index-abc123.js":  {Data: []byte("console.log(1)")},
		"assets/index-abc123.css": {Data: []byte("body{}")},
		".keep":                   {Data: nil},
	}
}

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStaticServing(t *testing.T) {
	h := newStaticHandler(builtFS())
	tests := []struct {
		name, path   string
		code         int
		ctype, cache string
		bodyHas      string
	}{
		{"root is index", "/", 200, "text/html; charset=utf-8", cacheRevalidate, "id=app"},
		{"index by name", "/index.html", 200, "text/html; charset=utf-8", cacheRevalidate, "id=app"},
		{"hashed js", "/assets/index-abc123.js", 200, "text/javascript; charset=utf-8", cacheImmutable, "console.log"},
		{"hashed css", "/assets/index-abc123.css", 200, "text/css; charset=utf-8", cacheImmutable, "body{}"},
		{"top-level svg", "/favicon.svg", 200, "image/svg+xml", cacheRevalidate, "<svg/>"},
		{"app route falls back", "/runs/0b6f3c1e-1111-2222-3333-444455556666", 200, "text/html; charset=utf-8", cacheRevalidate, "id=app"},
		{"nested app route", "/pipelines/p1/versions/v2", 200, "text/html; charset=utf-8", cacheRevalidate, "id=app"},
		{"dot-dot is cleaned", "/../../etc/passwd", 200, "text/html; charset=utf-8", cacheRevalidate, "id=app"},
		{"missing asset is 404", "/assets/gone-123.js", 404, "", "", ""},
		{"missing file with extension is 404", "/favicon.ico", 404, "", "", ""},
		{"directory is not listed", "/assets", 404, "", "", ""},
		{"api path is 404", "/apis/v2beta1/nope", 404, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := get(t, h, http.MethodGet, tc.path, nil)
			if res.StatusCode != tc.code {
				t.Fatalf("status = %d, want %d", res.StatusCode, tc.code)
			}
			if tc.code != 200 {
				return
			}
			if got := res.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type = %q, want %q", got, tc.ctype)
			}
			if got := res.Header.Get("Cache-Control"); got != tc.cache {
				t.Errorf("Cache-Control = %q, want %q", got, tc.cache)
			}
			if b := body(t, res); !strings.Contains(b, tc.bodyHas) {
				t.Errorf("body %q lacks %q", b, tc.bodyHas)
			}
		})
	}
}

func TestETagRevalidation(t *testing.T) {
	h := newStaticHandler(builtFS())
	first := get(t, h, http.MethodGet, "/", nil)
	etag := first.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on index.html")
	}
	again := get(t, h, http.MethodGet, "/runs", map[string]string{"If-None-Match": etag})
	if again.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation status = %d, want 304", again.StatusCode)
	}
}

func TestMethods(t *testing.T) {
	h := newStaticHandler(builtFS())
	head := get(t, h, http.MethodHead, "/assets/index-abc123.js", nil)
	if head.StatusCode != 200 || body(t, head) != "" {
		t.Fatalf("HEAD: status %d, want 200 with empty body", head.StatusCode)
	}
	post := get(t, h, http.MethodPost, "/", nil)
	if post.StatusCode != http.StatusMethodNotAllowed || post.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: status %d allow %q", post.StatusCode, post.Header.Get("Allow"))
	}
}

func TestStubWhenNotBuilt(t *testing.T) {
	h := newStaticHandler(fstest.MapFS{".keep": {}})
	for _, p := range []string{"/", "/runs/abc", "/index.html"} {
		res := get(t, h, http.MethodGet, p, nil)
		b := body(t, res)
		if res.StatusCode != 200 || !strings.Contains(b, "make ui") {
			t.Errorf("%s: status %d body %q, want the stub page naming `make ui`", p, res.StatusCode, b)
		}
		if got := res.Header.Get("Content-Type"); got != stubContentType {
			t.Errorf("%s: Content-Type = %q", p, got)
		}
	}
	if res := get(t, h, http.MethodGet, "/assets/app.js", nil); res.StatusCode != 404 {
		t.Errorf("asset without a build: status %d, want 404", res.StatusCode)
	}
}

// TestEmbeddedHandler checks the real embedded tree: a build when `make ui` ran, the stub
// otherwise. Either way "/" must answer with an HTML page.
func TestEmbeddedHandler(t *testing.T) {
	res := get(t, Handler(""), http.MethodGet, "/", nil)
	b := body(t, res)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if Built() && strings.Contains(b, "make ui") {
		t.Error("a built UI served the stub page")
	}
	if !Built() && !strings.Contains(b, "make ui") {
		t.Error("an unbuilt UI did not serve the stub page")
	}
}

func TestDevProxy(t *testing.T) {
	vite := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = io.WriteString(w, "dev:"+r.URL.Path)
	}))
	defer vite.Close()
	res := get(t, Handler(vite.URL), http.MethodGet, "/src/main.tsx", nil)
	if b := body(t, res); res.StatusCode != 200 || b != "dev:/src/main.tsx" {
		t.Fatalf("proxied: status %d body %q", res.StatusCode, b)
	}

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens there any more
	if res := get(t, Handler(down.URL), http.MethodGet, "/", nil); res.StatusCode != http.StatusBadGateway {
		t.Errorf("unreachable dev server: status %d, want 502", res.StatusCode)
	}
	if res := get(t, Handler("::not a url"), http.MethodGet, "/", nil); res.StatusCode != http.StatusBadGateway {
		t.Errorf("invalid dev URL: status %d, want 502", res.StatusCode)
	}
}

// TestEmbeddedSize keeps the built UI within its budget: under 3 MB added to the binary.
func TestEmbeddedSize(t *testing.T) {
	if !Built() {
		t.Skip("ui/dist holds no build; run `make ui` to check the UI's size budget")
	}
	const budget = 3 << 20
	var total int64
	err := fs.WalkDir(embedded, "dist", func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total >= budget {
		t.Fatalf("embedded UI is %d bytes, over the %d byte budget", total, budget)
	}
	t.Logf("embedded UI: %d bytes (budget %d)", total, budget)
}

func TestGzip(t *testing.T) {
	big := strings.Repeat("console.log('kfp-box');\n", 200)
	h := newStaticHandler(fstest.MapFS{
		"index.html":        {Data: []byte("<!doctype html>")},
		"assets/app-1.js":   {Data: []byte(big)},
		"assets/pic-1.png":  {Data: []byte(strings.Repeat("x", 4096))},
		"assets/small-1.js": {Data: []byte("1")},
	})
	res := get(t, h, http.MethodGet, "/assets/app-1.js", map[string]string{"Accept-Encoding": "br, gzip"})
	if res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("encoding %q vary %q, want gzip", res.Header.Get("Content-Encoding"), res.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || string(plain) != big {
		t.Fatalf("gunzipped body differs (err %v)", err)
	}
	identity := get(t, h, http.MethodGet, "/assets/app-1.js", nil)
	if identity.Header.Get("Content-Encoding") != "" || body(t, identity) != big {
		t.Error("a client without gzip got an encoded body")
	}
	if identity.Header.Get("ETag") == res.Header.Get("ETag") {
		t.Error("gzip and identity representations share an ETag")
	}
	refused := get(t, h, http.MethodGet, "/assets/app-1.js", map[string]string{"Accept-Encoding": "gzip;q=0"})
	if refused.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 was not honoured")
	}
	for _, p := range []string{"/assets/pic-1.png", "/assets/small-1.js"} {
		if res := get(t, h, http.MethodGet, p, map[string]string{"Accept-Encoding": "gzip"}); res.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: compressed, want identity", p)
		}
	}
}
