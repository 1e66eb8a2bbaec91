package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/auth"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
)

// guarded is an API server with authentication on, over a real token store.
type guarded struct {
	*testAPI
	root  string // http://127.0.0.1:PORT
	store *auth.Store
	admin string
}

func newGuarded(t testing.TB, mutate func(*Deps)) *guarded {
	t.Helper()
	ctx := context.Background()
	kvs, err := bolt.Open(ctx, kv.Options{Path: filepath.Join(t.TempDir(), "auth.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kvs.Close() })
	live := map[string]bool{"live-run": true}
	st, err := auth.Open(ctx, kvs, auth.Options{Dir: filepath.Join(t.TempDir(), "auth"), RunLive: func(_ context.Context, id string) bool { return live[id] }})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := readTokenFile(st.AdminTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	d := Deps{Guard: GuardConfig{Auth: st}, Tokens: st}
	if mutate != nil {
		mutate(&d)
	}
	a := newTestAPIWith(t, d)
	return &guarded{testAPI: a, root: strings.TrimSuffix(a.url, "/apis/v2beta1"), store: st, admin: admin}
}

func readTokenFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return strings.TrimSpace(string(b)), err
}

// raw sends a request as given and returns the status, headers and body.
func raw(t *testing.T, method, u string, body io.Reader, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// rpcShape checks a KFP error body: code, message and one google.rpc.Status detail.
func rpcShape(t *testing.T, what string, b []byte, code int) {
	t.Helper()
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Type string `json:"@type"`
			Code int    `json:"code"`
		} `json:"details"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Code != code || e.Message == "" || len(e.Details) != 1 || e.Details[0].Type != "type.googleapis.com/google.rpc.Status" || e.Details[0].Code != code {
		t.Fatalf("%s: body %s is not KFP's error shape with code %d", what, b, code)
	}
}

const inlineRun = `{"display_name":"pwn","pipeline_spec":{"pipelineInfo":{"name":"p"},"root":{"dag":{"tasks":{}}},"schemaVersion":"2.1.0"}}`

func TestGuardCrossSiteRequests(t *testing.T) {
	// Without authentication, as on a demo box, the browser checks are all that stands.
	g := newGuarded(t, func(d *Deps) { d.Guard.Auth = nil })
	runs := g.url + "/runs"
	cases := []struct {
		name string
		body string
		hdr  map[string]string
		want int
	}{
		{"text/plain from another site", inlineRun, map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"}, 403},
		{"text/plain without origin", inlineRun, map[string]string{"Content-Type": "text/plain"}, 415},
		{"form from another site", "display_name=x", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"}, 403},
		{"form from this origin", "display_name=x", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": g.root}, 415},
		{"json from another site", inlineRun, map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}, 403},
		{"json from a sandboxed frame", inlineRun, map[string]string{"Content-Type": "application/json", "Origin": "null"}, 403},
		{"fetch metadata cross-site", inlineRun, map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}, 403},
		{"fetch metadata same-site", inlineRun, map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"}, 403},
		{"no content type", inlineRun, nil, 415},
		{"xml", inlineRun, map[string]string{"Content-Type": "application/xml"}, 415},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, _, b := raw(t, "POST", runs, strings.NewReader(c.body), c.hdr)
			if st != c.want {
				t.Fatalf("HTTP %d %s, want %d", st, b, c.want)
			}
			rpcShape(t, c.name, b, map[int]int{403: codePermissionDenied, 415: codeInvalidArgument}[c.want])
		})
	}
	if sub, _, _ := g.engine.calls(); len(sub) != 0 {
		t.Fatalf("a refused request reached the engine: %v", sub)
	}
	// Positive controls: the UI's own request, and a program's.
	for _, hdr := range []map[string]string{
		{"Content-Type": "application/json", "Origin": g.root, "Sec-Fetch-Site": "same-origin"},
		{"Content-Type": "application/json; charset=utf-8"},
	} {
		if st, _, b := raw(t, "POST", runs, strings.NewReader(inlineRun), hdr); st != 200 {
			t.Fatalf("legitimate run creation %v: HTTP %d %s", hdr, st, b)
		}
	}
	// A link from another site may still open a page of the box (GET navigation).
	if st, _, _ := raw(t, "GET", g.root+"/runs", nil, map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Accept": "text/html"}); st == 403 {
		t.Fatalf("cross-site navigation to a page: HTTP %d", st)
	}
	// But a cross-site script or fetch may not read the API.
	if st, _, _ := raw(t, "GET", runs, nil, map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}); st != 403 {
		t.Fatalf("cross-site subresource read: HTTP %d, want 403", st)
	}
}

func TestGuardMultipartUpload(t *testing.T) {
	g := newGuarded(t, func(d *Deps) { d.Guard.Auth = nil })
	body := func() (*bytes.Buffer, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("uploadfile", "p.yaml")
		fw.Write(readTestdata(t, "params.yaml"))
		mw.Close()
		return &buf, mw.FormDataContentType()
	}
	b, ct := body()
	if st, _, out := raw(t, "POST", g.url+"/pipelines/upload?name=evil", b, map[string]string{"Content-Type": ct, "Origin": "http://evil.example"}); st != 403 {
		t.Fatalf("cross-site form upload: HTTP %d %s, want 403", st, out)
	}
	b, ct = body()
	if st, _, out := raw(t, "POST", g.url+"/experiments", b, map[string]string{"Content-Type": ct, "Origin": g.root}); st != 415 {
		t.Fatalf("multipart body on a JSON route: HTTP %d %s, want 415", st, out)
	}
	b, ct = body()
	if st, _, out := raw(t, "POST", g.url+"/pipelines/upload?name=mine", b, map[string]string{"Content-Type": ct, "Origin": g.root}); st != 200 {
		t.Fatalf("same-origin upload: HTTP %d %s", st, out)
	}
}

func TestGuardHost(t *testing.T) {
	g := newGuarded(t, func(d *Deps) { d.Guard.AllowedHosts = []string{"box.lan", "*.lab.example"} })
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(g.root, "http://"))
	auth := "Bearer " + g.admin
	for host, want := range map[string]int{
		"evil.example:" + port:     403,
		"evil.example":             403,
		"127.0.0.1.nip.io:" + port: 403,
		"localhost:" + port:        200,
		"app.localhost:" + port:    200,
		"[::1]:" + port:            200,
		"10.1.2.3:" + port:         200,
		"box.lan:" + port:          200,
		"gpu1.lab.example":         200,
		"lab.example":              403,
	} {
		for _, p := range []string{g.url + "/runs", g.root + "/api/v1/namespaces/default/secrets"} {
			st, _, b := raw(t, "GET", p, nil, map[string]string{"Host": host, "Authorization": auth})
			if p == g.root+"/api/v1/namespaces/default/secrets" && want == 200 {
				continue // no Kubernetes routes in this server: 404 is fine
			}
			if st != want {
				t.Fatalf("Host %q GET %s: HTTP %d %s, want %d", host, p, st, b, want)
			}
		}
	}
}

func TestGuardTokens(t *testing.T) {
	g := newGuarded(t, nil)
	ctx := context.Background()
	reader, _, err := g.store.Create(ctx, "ci-reader", auth.ScopeRead, 0)
	if err != nil {
		t.Fatal(err)
	}
	short, _, err := g.store.Create(ctx, "short", auth.ScopeAdmin, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	post := func(tok string) map[string]string {
		h := bearer(tok)
		h["Content-Type"] = "application/json"
		return h
	}
	// Nothing without a token but health checks and the UI's static files.
	st, hdr, b := raw(t, "GET", g.url+"/runs", nil, nil)
	if st != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: HTTP %d %v", st, hdr)
	}
	rpcShape(t, "no token", b, codeUnauthenticated)
	if st, _, _ := raw(t, "GET", g.url+"/healthz", nil, nil); st != 200 {
		t.Fatalf("healthz without a token: HTTP %d", st)
	}
	for name, h := range map[string]map[string]string{
		"unknown":  bearer("kfpbox_nope"),
		"expired":  bearer(short),
		"run gone": bearer(g.store.RunToken("finished-run")),
		"basic":    {"Authorization": "Basic " + b64("user:kfpbox_nope")},
		"scheme":   {"Authorization": "Token " + g.admin},
	} {
		if st, _, b := raw(t, "GET", g.url+"/runs", nil, h); st != 401 {
			t.Fatalf("%s token: HTTP %d %s, want 401", name, st, b)
		}
	}
	// The admin token does everything; Basic carries it too (pip).
	if st, _, b := raw(t, "POST", g.url+"/experiments", strings.NewReader(`{"display_name":"e1"}`), post(g.admin)); st != 200 {
		t.Fatalf("admin create: HTTP %d %s", st, b)
	}
	if st, _, _ := raw(t, "GET", g.url+"/runs", nil, map[string]string{"Authorization": "Basic " + b64("kfp-box:"+g.admin)}); st != 200 {
		t.Fatalf("basic auth with the admin token: HTTP %d", st)
	}
	// A read token reads, but neither writes nor sees tokens or Secrets.
	if st, _, _ := raw(t, "GET", g.url+"/experiments", nil, bearer(reader)); st != 200 {
		t.Fatalf("reader list: HTTP %d", st)
	}
	for _, c := range []struct{ method, path string }{
		{"POST", g.url + "/experiments"},
		{"DELETE", g.url + "/runs/x"},
		{"GET", g.url + "/tokens"},
		{"GET", g.root + "/api/v1/namespaces/kubeflow/secrets"},
		{"GET", g.root + "/api/v1/namespaces/kubeflow/secrets/test-secret-1"},
	} {
		st, _, b := raw(t, c.method, c.path, strings.NewReader(`{"display_name":"e2"}`), post(reader))
		if st != 403 {
			t.Fatalf("reader %s %s: HTTP %d %s, want 403", c.method, c.path, st, b)
		}
		rpcShape(t, "reader", b, codePermissionDenied)
	}
	// A live run's token reads; it dies with its run (checked above).
	if st, _, _ := raw(t, "GET", g.url+"/runs", nil, bearer(g.store.RunToken("live-run"))); st != 200 {
		t.Fatalf("live run token: HTTP %d", st)
	}
	// Revocation takes effect at once.
	if st, _, b := raw(t, "DELETE", g.url+"/tokens/ci-reader", nil, bearer(g.admin)); st != 200 {
		t.Fatalf("revoke: HTTP %d %s", st, b)
	}
	if st, _, _ := raw(t, "GET", g.url+"/experiments", nil, bearer(reader)); st != 401 {
		t.Fatalf("revoked token: HTTP %d, want 401", st)
	}
	// The token API: create shows the secret once, ls never.
	st, _, b = raw(t, "POST", g.url+"/tokens", strings.NewReader(`{"name":"laptop","scope":"admin","ttl":"24h"}`), post(g.admin))
	var made struct{ Token, Scope, ExpiresAt string }
	if json.Unmarshal(b, &made); st != 200 || !strings.HasPrefix(made.Token, "kfpbox_") || made.Scope != "admin" {
		t.Fatalf("create token: HTTP %d %s", st, b)
	}
	_, _, b = raw(t, "GET", g.url+"/tokens", nil, bearer(made.Token))
	if !strings.Contains(string(b), `"laptop"`) || strings.Contains(string(b), made.Token) || strings.Contains(string(b), g.admin) {
		t.Fatalf("token list leaks secrets or misses one: %s", b)
	}
	for _, bad := range []string{`{"name":"Bad Name"}`, `{"name":"admin"}`, `{"name":"x","scope":"root"}`, `{"name":"x","ttl":"soon"}`, `{"name":"laptop"}`} {
		if st, _, b := raw(t, "POST", g.url+"/tokens", strings.NewReader(bad), post(g.admin)); st != 400 && st != 409 {
			t.Fatalf("create %s: HTTP %d %s, want 400/409", bad, st, b)
		}
	}
}

func TestGuardLoginFlow(t *testing.T) {
	g := newGuarded(t, nil)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	nav := func(method, u string, body io.Reader, ct string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, u, body)
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Accept", "text/html")
		if ct != "" {
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Origin", g.root)
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// A page without a session goes to the login form and back.
	if r := nav("GET", g.root+"/runs/details/abc", nil, ""); r.StatusCode != 303 || r.Header.Get("Location") != "/login?next=%2Fruns%2Fdetails%2Fabc" {
		t.Fatalf("page without a session: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	// The form refuses a wrong token, takes the right one.
	if r := nav("POST", g.root+"/login", strings.NewReader("token=kfpbox_wrong&next=/runs"), "application/x-www-form-urlencoded"); r.StatusCode != 401 {
		t.Fatalf("wrong token: %d", r.StatusCode)
	}
	r := nav("POST", g.root+"/login", strings.NewReader(url.Values{"token": {g.admin}, "next": {"//evil.example/x"}}.Encode()), "application/x-www-form-urlencoded")
	if r.StatusCode != 303 || r.Header.Get("Location") != "/" {
		t.Fatalf("login: %d %q (an off-site next must not be followed)", r.StatusCode, r.Header.Get("Location"))
	}
	ck := r.Header.Get("Set-Cookie")
	for _, want := range []string{SessionCookie + "=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(ck, want) {
			t.Fatalf("session cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, g.admin) {
		t.Fatal("the session cookie holds the admin token itself")
	}
	if r := nav("GET", g.url+"/runs", nil, ""); r.StatusCode != 200 {
		t.Fatalf("API with the session cookie: %d", r.StatusCode)
	}
	// Logging out ends the session on the server, not only in this browser.
	session := jar.Cookies(mustURL(g.root))[0].Value
	nav("POST", g.root+"/logout", nil, "application/x-www-form-urlencoded")
	if st, _, _ := raw(t, "GET", g.url+"/runs", nil, map[string]string{"Cookie": SessionCookie + "=" + session}); st != 401 {
		t.Fatalf("session after logout: HTTP %d, want 401", st)
	}
	// A one-time link logs in once.
	_, _, b := raw(t, "POST", g.url+"/login-codes", nil, map[string]string{"Authorization": "Bearer " + g.admin})
	var lc struct{ Path string }
	json.Unmarshal(b, &lc)
	if r := nav("GET", g.root+lc.Path+"&next=/experiments", nil, ""); r.StatusCode != 303 || r.Header.Get("Location") != "/experiments" {
		t.Fatalf("login link: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	jar2, _ := cookiejar.New(nil)
	browser.Jar = jar2
	if r := nav("GET", g.root+lc.Path, nil, ""); r.StatusCode != 401 {
		t.Fatalf("login link used twice: %d", r.StatusCode)
	}
	// A link from another site (no Strict cookie on that navigation) reloads from this origin.
	req, _ := http.NewRequest("GET", g.root+"/runs/details/x", nil)
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `http-equiv="refresh"`) || !strings.Contains(string(page), "/runs/details/x") {
		t.Fatalf("cross-site navigation: %d %s", resp.StatusCode, page)
	}
}

func TestGuardHeaders(t *testing.T) {
	g := newGuarded(t, nil)
	_, hdr, _ := raw(t, "GET", g.root+"/assets/app.js", nil, nil)
	for k, want := range map[string]string{
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "same-origin",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "frame-ancestors 'none'",
	} {
		if !strings.Contains(hdr.Get(k), want) {
			t.Fatalf("%s = %q, want it to hold %q", k, hdr.Get(k), want)
		}
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe-eval") {
		t.Fatalf("CSP lets foreign or inline scripts run: %q", csp)
	}
}

func TestServiceProxyPath(t *testing.T) {
	g := newGuarded(t, nil)
	// kfp.Client() with a kubeconfig sends its requests through the service proxy path.
	p := g.root + "/api/v1/namespaces/kubeflow/services/ml-pipeline:http/proxy//apis/v2beta1/experiments"
	if st, _, b := raw(t, "GET", p, nil, map[string]string{"Authorization": "Bearer " + g.admin}); st != 200 || !strings.Contains(string(b), "Default") {
		t.Fatalf("service proxy path: HTTP %d %s", st, b)
	}
	if st, _, _ := raw(t, "GET", p, nil, nil); st != 401 {
		t.Fatalf("service proxy path without a token: HTTP %d", st)
	}
	for in, want := range map[string]string{
		"/api/v1/namespaces/kubeflow/services/ml-pipeline:http/proxy/apis/v2beta1/runs": "/apis/v2beta1/runs",
		"/api/v1/namespaces/x/services/ml-pipeline-ui:80/proxy/":                        "/",
		"/api/v1/namespaces/x/services/ml-pipeline/proxy":                               "/",
		"/api/v1/namespaces/x/services/other/proxy/apis":                                "",
		"/api/v1/namespaces/x/secrets":                                                  "",
	} {
		got, ok := serviceProxyPath(in)
		if got != want || ok != (want != "") {
			t.Fatalf("serviceProxyPath(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
}

func TestBodyBounds(t *testing.T) {
	g := newGuarded(t, func(d *Deps) { d.Guard.Auth = nil; d.MaxBodyBytes = 1 << 20 })
	js := map[string]string{"Content-Type": "application/json"}
	// A name that would be a 100 KB key, and names with NUL or broken UTF-8: 400 before the store.
	for what, name := range map[string]string{"100 KB": strings.Repeat("n", 100<<10), "NUL": `a\u0000b`, "latin-1": "caf\xe9"} {
		body := []byte(`{"display_name":"` + name + `"}`) // raw bytes: json.Marshal would mend bad UTF-8
		st, _, b := raw(t, "POST", g.url+"/experiments", bytes.NewReader(body), js)
		if st != 400 {
			t.Fatalf("%s experiment name: HTTP %d %s, want 400", what, st, b)
		}
		rpcShape(t, what, b, codeInvalidArgument)
	}
	// A body over the cap is refused, not read to the end.
	big := `{"display_name":"` + strings.Repeat("x", 2<<20) + `"}`
	if st, _, b := raw(t, "POST", g.url+"/experiments", strings.NewReader(big), js); st != 400 {
		t.Fatalf("2 MiB body over a 1 MiB cap: HTTP %d %.200s", st, b)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestTricklingBodyCutOff(t *testing.T) {
	g := newGuarded(t, func(d *Deps) { d.Guard.Auth = nil; d.BodyReadTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.root, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers promise a body that never comes in full.
	fmt.Fprintf(conn, "POST /apis/v2beta1/experiments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"display_name\":")
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, _ := io.ReadAll(conn) // ends when the server closes the connection
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a trickling body held the connection for %v", d)
	}
	if len(resp) > 0 && !strings.HasPrefix(string(resp), "HTTP/1.1 4") {
		t.Fatalf("answer to a cut-off body: %q", resp)
	}
}
