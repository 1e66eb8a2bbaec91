// Package ui serves kfp-box's web app: the files Vite builds into ui/dist, embedded into the
// binary, or a reverse proxy to a Vite dev server while the UI is being developed.
//
// The app is a single-page application, so every path that is not a built file (and not an
// API path) is answered with index.html and routed in the browser. When the binary was built
// without running node (dist holds only .keep), a small stub page says how to build the UI.
// The package calls nothing but the standard library; the app itself talks only to the public
// HTTP API.
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed all:dist
var embedded embed.FS

// Cache policies. Vite puts content-hashed files under assets/, so they never change under
// the same name; everything else (index.html above all) must be revalidated on each load.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
	assetsDir       = "assets/"
	indexFile       = "index.html"
	apiPrefix       = "apis/"
	stubContentType = "text/html; charset=utf-8"
)

// Handler returns the HTTP handler for the web UI. With a non-empty devURL (for example
// "http://127.0.0.1:5173") every request is reverse-proxied to that Vite dev server, so edits
// show up without rebuilding the binary. Otherwise the embedded build is served: existing
// files with their content type and cache headers, unknown non-asset paths with index.html,
// and a stub page explaining `make ui` when the binary carries no build.
func Handler(devURL string) http.Handler {
	if devURL != "" {
		return devProxy(devURL)
	}
	sub, err := fs.Sub(embedded, "dist")
	if err != nil {
		// fs.Sub fails only for an invalid directory name, which "dist" is not.
		panic(fmt.Sprintf("ui: embedded dist: %v", err))
	}
	return newStaticHandler(sub)
}

// Built reports whether the binary carries a built UI (dist/index.html exists).
func Built() bool {
	_, err := fs.Stat(embedded, "dist/"+indexFile)
	return err == nil
}

func devProxy(devURL string) http.Handler {
	target, err := url.Parse(devURL)
	if err != nil || target.Scheme == "" || target.Host == "" {
		msg := fmt.Sprintf("ui: invalid dev server URL %q", devURL)
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, msg, http.StatusBadGateway)
		})
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		http.Error(w, fmt.Sprintf("ui: dev server %s unreachable: %v (start it with `npm --prefix ui run dev`)", target, err), http.StatusBadGateway)
	}
	return proxy
}

// staticHandler serves files from an fs.FS with single-page-app fallback.
type staticHandler struct {
	fsys  fs.FS
	built bool

	mu    sync.Mutex
	files map[string]*file // loaded lazily, kept for the life of the process
}

type file struct {
	data []byte
	etag string
	gz   []byte // gzip-compressed data, nil when not worth compressing
}

// compressible lists the types worth gzipping; images and fonts are compressed already.
func compressible(name string, size int) bool {
	if size < 1024 {
		return false
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".html", ".js", ".mjs", ".css", ".json", ".map", ".svg", ".txt", ".wasm":
		return true
	}
	return false
}

func gzipBytes(data []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
	_, _ = zw.Write(data)                                    // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	return buf.Bytes()
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func newStaticHandler(fsys fs.FS) *staticHandler {
	_, err := fs.Stat(fsys, indexFile)
	return &staticHandler{fsys: fsys, built: err == nil, files: map[string]*file{}}
}

func (h *staticHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if strings.HasPrefix(name+"/", apiPrefix) {
		// API paths never fall back to the app: a client expecting JSON must see a 404.
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if !h.built {
		h.serveStub(w, r, name)
		return
	}
	if name == "" {
		name = indexFile
	}
	f, err := h.load(name)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) && !isAssetPath(name):
		name = indexFile
		f, err = h.load(name)
		if err != nil {
			http.Error(w, "ui: index.html unreadable", http.StatusInternalServerError)
			return
		}
	case errors.Is(err, fs.ErrNotExist):
		http.Error(w, "not found", http.StatusNotFound)
		return
	default:
		http.Error(w, "ui: "+err.Error(), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", contentType(name))
	hdr.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(name, assetsDir) {
		hdr.Set("Cache-Control", cacheImmutable)
	} else {
		hdr.Set("Cache-Control", cacheRevalidate)
	}
	body, etag := f.data, f.etag
	if f.gz != nil {
		hdr.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
			hdr.Set("Content-Encoding", "gzip")
		}
	}
	hdr.Set("ETag", etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

// isAssetPath reports whether a missing path must be a 404 rather than an app route: files
// under assets/ and anything whose last segment has a file extension (favicon.ico, x.js.map).
func isAssetPath(name string) bool {
	if name == "" || name == indexFile {
		return false
	}
	if strings.HasPrefix(name+"/", assetsDir) {
		return true
	}
	return path.Ext(path.Base(name)) != ""
}

func (h *staticHandler) load(name string) (*file, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f, ok := h.files[name]; ok {
		return f, nil
	}
	fh, err := h.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory: %w", name, fs.ErrNotExist)
	}
	data, err := io.ReadAll(fh)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	f := &file{data: data, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	if compressible(name, len(data)) {
		if gz := gzipBytes(data); len(gz) < len(data)*9/10 {
			f.gz = gz
		}
	}
	h.files[name] = f
	return f, nil
}

// contentType maps a file name to its media type. The table covers what Vite emits so the
// answer does not depend on the host's /etc/mime.types.
func contentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".json", ".map":
		return "application/json"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".woff2":
		return "font/woff2"
	case ".wasm":
		return "application/wasm"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func (h *staticHandler) serveStub(w http.ResponseWriter, r *http.Request, name string) {
	if isAssetPath(name) {
		http.Error(w, "not found (the web UI was not built; run `make ui`)", http.StatusNotFound)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", stubContentType)
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.WriteString(w, stubPage)
}

const stubPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>kfp-box: web UI not built</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto; line-height: 1.5">
<h1>kfp-box</h1>
<p>The web UI was not built into this binary. The API under <code>/apis/v2beta1/</code> works
as usual.</p>
<p>To build the UI (needs node and npm), run <code>make ui</code> in the source tree and then
rebuild the binary with <code>make build</code>.</p>
</body>
</html>
`
