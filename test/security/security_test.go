// Package security replays attacks on a real kfp-box binary, started as a user would start
// it, and expects each one refused: a web page posting a pipeline that runs commands
// (cross-site request forgery, as text/plain JSON or as a multipart form), a page reading the
// API through DNS rebinding, a request without a token, another local user using the API or
// reading the box's files, and an unauthenticated listener beyond loopback. Each attack is
// paired with the same request made legitimately, which must work, so a refusal cannot come
// from a broken box.
//
// KFPBOX_SECURITY_BINARY runs the suite against another build (for example the code before
// a fix, to watch these tests fail); by default TestMain builds ./cmd/kfp-box.
package security

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/internal/syncbuf"
)

var binary string

func TestMain(m *testing.M) {
	binary = os.Getenv("KFPBOX_SECURITY_BINARY")
	var dir string
	if binary == "" {
		// A directory every user may enter: the unprivileged-user test runs the binary as nobody.
		var err error
		dir, err = os.MkdirTemp("", "kfp-box-security-")
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		binary = filepath.Join(dir, "kfp-box")
		cmd := exec.Command("go", "build", "-o", binary, "github.com/kfp-box/kfp-box/cmd/kfp-box")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building kfp-box:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// box is a `kfp-box serve` process.
type box struct {
	t      testing.TB
	pid    int
	url    string // http(s)://127.0.0.1:PORT
	data   string
	token  string // the admin token ("" when auth is off or the build has none)
	out    *syncbuf.Buffer
	client *http.Client
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs serve with args added to a fresh data dir and free loopback ports, and waits for
// healthz. listenHost "" is 127.0.0.1.
func start(t testing.TB, listenHost string, args ...string) *box {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	port := freePort(t)
	if listenHost == "" {
		listenHost = "127.0.0.1"
	}
	all := append([]string{"serve", "--data-dir", data, "--listen", net.JoinHostPort(listenHost, strconv.Itoa(port)),
		"--s3-listen", "127.0.0.1:" + strconv.Itoa(freePort(t)), "--runtime", "host"}, args...)
	cmd := exec.Command(binary, all...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "KFPBOX_DATA_DIR=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	b := &box{t: t, pid: cmd.Process.Pid, url: "http://127.0.0.1:" + strconv.Itoa(port), data: data, out: out, client: &http.Client{Timeout: 30 * time.Second}}
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("kfp-box serve exited early:\n%s", out)
		default:
		}
		if strings.Contains(out.String(), "serving on https://") {
			b.url = strings.Replace(b.url, "http://", "https://", 1)
			pool := x509.NewCertPool()
			if pem, err := os.ReadFile(filepath.Join(data, "tls", "cert.pem")); err == nil {
				pool.AppendCertsFromPEM(pem)
			}
			b.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		}
		if resp, err := b.client.Get(b.url + "/apis/v2beta1/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kfp-box did not answer healthz:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if tok, err := os.ReadFile(filepath.Join(data, "auth", "admin-token")); err == nil {
		b.token = strings.TrimSpace(string(tok))
	}
	return b
}

// startBench is start for benchmarks: loopback, with args.
func startBench(b testing.TB, args ...string) *box { return start(b, "", args...) }

// req sends a request; hdr "Host" sets the Host header; auth adds the admin token.
func (b *box) req(method, path string, body io.Reader, hdr map[string]string, auth bool) (int, string) {
	b.t.Helper()
	r, err := http.NewRequest(method, b.url+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			r.Host = v
		} else {
			r.Header.Set(k, v)
		}
	}
	if auth && b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	resp, err := b.client.Do(r)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// reqAt sends a GET to another base URL of the same box.
func (b *box) reqAt(base, method, path string, auth bool) (int, string) {
	saved := b.url
	b.url = base
	defer func() { b.url = saved }()
	return b.req(method, path, nil, nil, auth)
}

// nonLoopbackIP is an address of this machine other than loopback, to connect from.
func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Fatal("this machine has no address but loopback")
	return ""
}

// pwnRun is an inline pipeline whose only task writes `id` to file: what a page would post.
func pwnRun(file string) string {
	spec := map[string]any{
		"pipelineInfo":  map[string]any{"name": "pwn"},
		"schemaVersion": "2.1.0",
		"sdkVersion":    "kfp-box-test",
		"components":    map[string]any{"comp-pwn": map[string]any{"executorLabel": "exec-pwn"}},
		"deploymentSpec": map[string]any{"executors": map[string]any{"exec-pwn": map[string]any{"container": map[string]any{
			"image": "busybox", "command": []string{"sh", "-c", "id > " + file},
		}}}},
		"root": map[string]any{"dag": map[string]any{"tasks": map[string]any{"pwn": map[string]any{
			"taskInfo": map[string]any{"name": "pwn"}, "componentRef": map[string]any{"name": "comp-pwn"},
		}}}},
	}
	b, _ := json.Marshal(map[string]any{"display_name": "pwn", "pipeline_spec": spec})
	return string(b)
}

// waitFile waits up to d for path to appear.
func waitFile(path string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// TestCrossSiteRunCreation: a page POSTs a run as a "simple" request (text/plain), or as
// JSON with its own Origin. Neither may run anything; the same run from a program with the
// token runs.
func TestCrossSiteRunCreation(t *testing.T) {
	for _, mode := range [][]string{nil, {"--auth", "none"}} {
		name := "default"
		if mode != nil {
			name = "auth-none"
		}
		t.Run(name, func(t *testing.T) {
			b := start(t, "", mode...)
			// A directory the task can write to even when it runs as an unprivileged user.
			dir, err := os.MkdirTemp("", "kfp-box-csrf-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			os.Chmod(dir, 0o777)
			attacks := []map[string]string{
				{"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
				{"Content-Type": "text/plain"},
				{"Content-Type": "application/json", "Origin": "http://evil.example"},
				{"Content-Type": "application/x-www-form-urlencoded", "Origin": "null"},
			}
			for i, hdr := range attacks {
				file := filepath.Join(dir, fmt.Sprintf("attack-%d", i))
				st, body := b.req("POST", "/apis/v2beta1/runs", strings.NewReader(pwnRun(file)), hdr, false)
				if st == 200 {
					t.Errorf("attack %v: created a run: %s", hdr, body)
				}
				if st < 400 || st >= 500 {
					t.Errorf("attack %v: HTTP %d, want 4xx", hdr, st)
				}
			}
			// The same request, from a program holding the token (or any program on an
			// auth-none box), runs: so the payload would have worked.
			ok := filepath.Join(dir, "legit")
			if st, body := b.req("POST", "/apis/v2beta1/runs", strings.NewReader(pwnRun(ok)), map[string]string{"Content-Type": "application/json"}, true); st != 200 {
				t.Fatalf("legitimate run: HTTP %d %s", st, body)
			}
			if !waitFile(ok, 60*time.Second) {
				t.Fatalf("the legitimate run did not write %s:\n%s", ok, b.out)
			}
			for i := range attacks {
				if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("attack-%d", i))); err == nil {
					t.Errorf("attack %d ran its command", i)
				}
			}
		})
	}
}

// TestCrossSiteFormUpload: a page submits a multipart form to the upload route.
func TestCrossSiteFormUpload(t *testing.T) {
	b := start(t, "", "--auth", "none")
	form := func() (*bytes.Buffer, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("uploadfile", "p.yaml")
		fw.Write([]byte("pipelineInfo: {name: up}\nschemaVersion: 2.1.0\nroot: {dag: {tasks: {}}}\n"))
		mw.Close()
		return &buf, mw.FormDataContentType()
	}
	for _, hdr := range []map[string]string{{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}} {
		body, ct := form()
		hdr["Content-Type"] = ct
		if st, out := b.req("POST", "/apis/v2beta1/pipelines/upload?name=evil", body, hdr, false); st == 200 {
			t.Fatalf("cross-site form upload %v succeeded: %s", hdr, out)
		}
	}
	body, ct := form()
	if st, out := b.req("POST", "/apis/v2beta1/pipelines/upload?name=mine", body, map[string]string{"Content-Type": ct}, true); st != 200 {
		t.Fatalf("upload by a program: HTTP %d %s", st, out)
	}
}

// TestDNSRebinding: a page on evil.example, resolved to 127.0.0.1, reads the API.
func TestDNSRebinding(t *testing.T) {
	b := start(t, "")
	port := b.url[strings.LastIndexByte(b.url, ':')+1:]
	for _, p := range []string{"/apis/v2beta1/runs", "/api/v1/namespaces/default/secrets", "/"} {
		if st, body := b.req("GET", p, nil, map[string]string{"Host": "evil.example:" + port}, true); st != 403 {
			t.Errorf("GET %s with Host evil.example: HTTP %d %.200s, want 403", p, st, body)
		}
		if st, body := b.req("GET", p, nil, map[string]string{"Host": "localhost:" + port}, true); st != 200 {
			t.Errorf("GET %s with Host localhost: HTTP %d %.200s", p, st, body)
		}
	}
}

// TestTokenRequired: every API answers 401 in KFP's error shape without a token, on loopback.
func TestTokenRequired(t *testing.T) {
	b := start(t, "")
	js := map[string]string{"Content-Type": "application/json"}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/apis/v2beta1/runs", ""},
		{"POST", "/apis/v2beta1/experiments", `{"display_name":"x"}`},
		{"POST", "/apis/v2beta1/runs/some-run:terminate", ""},
		{"POST", "/apis/v2beta1/gc", ""},
		{"POST", "/api/v1/namespaces/default/secrets", `{"metadata":{"name":"s"},"stringData":{"k":"v"}}`},
		{"GET", "/api/v1/namespaces/default/secrets", ""},
		{"GET", "/metrics", ""},
	} {
		st, body := b.req(c.method, c.path, strings.NewReader(c.body), js, false)
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if st != 401 || json.Unmarshal([]byte(body), &e) != nil || e.Code != 16 || e.Message == "" {
			t.Errorf("%s %s without a token: HTTP %d %.200s, want 401 with code 16", c.method, c.path, st, body)
		}
		if st, _ := b.req(c.method, c.path, strings.NewReader(c.body), js, true); st == 401 || st == 403 {
			t.Errorf("%s %s with the admin token: HTTP %d", c.method, c.path, st)
		}
	}
}

// TestUnprivilegedLocalUser: another user of the machine (nobody) reaches loopback too.
func TestUnprivilegedLocalUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as another user: run make test as root (CI does)")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	b := start(t, "")
	os.Chmod(filepath.Dir(b.data), 0o755) // the test's temp dir; the data dir keeps its own mode
	as := func(args ...string) (int, string) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	code, out := as(binary, "run", "list", "--server", b.url)
	if code == 0 {
		t.Errorf("kfp-box run list as nobody succeeded:\n%s", out)
	}
	if !strings.Contains(out, "token") {
		t.Errorf("kfp-box run list as nobody: %q does not say a token is needed", out)
	}
	for _, f := range []string{"meta.db", "auth/admin-token", "s3-credentials.json"} {
		if code, out := as("/bin/cat", filepath.Join(b.data, f)); code == 0 {
			t.Errorf("nobody read %s: %.100s", f, out)
		}
	}
	// The box's own user, with the token found in the data dir, is let in.
	cmd := exec.Command(binary, "run", "list", "--server", b.url)
	cmd.Env = append(os.Environ(), "KFPBOX_DATA_DIR="+b.data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("kfp-box run list as the box's user: %v\n%s", err, out)
	}
}

// TestUnauthenticatedListenBeyondLoopback: --auth none is refused beyond loopback, and a
// listener beyond loopback serves HTTPS with a certificate whose fingerprint is printed.
func TestUnauthenticatedListenBeyondLoopback(t *testing.T) {
	cmd := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--listen", "0.0.0.0:"+strconv.Itoa(freePort(t)), "--auth", "none", "--s3-listen", "off")
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "loopback") {
		t.Fatalf("serve --listen 0.0.0.0 --auth none: %v\n%s\nwant exit 2 naming loopback", err, out)
	}
	b := start(t, "0.0.0.0")
	if !strings.HasPrefix(b.url, "https://") || !strings.Contains(b.out.String(), "fingerprint") {
		t.Fatalf("a listener beyond loopback does not serve HTTPS with a printed fingerprint:\n%s", b.out)
	}
	if st, _ := b.req("GET", "/apis/v2beta1/runs", nil, nil, false); st != 401 {
		t.Fatalf("beyond loopback without a token: HTTP %d", st)
	}
	if st, _ := b.req("GET", "/apis/v2beta1/runs", nil, nil, true); st != 200 {
		t.Fatalf("beyond loopback with the token over TLS: HTTP %d", st)
	}
	// Plain HTTP is for loopback peers only (this machine's programs and tasks).
	if resp, err := http.Get(strings.Replace(b.url, "https://", "http://", 1) + "/apis/v2beta1/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("plain HTTP from loopback: %v", err)
	}
	ip := nonLoopbackIP(t)
	port := b.url[strings.LastIndexByte(b.url, ':')+1:]
	if resp, err := http.Get("http://" + net.JoinHostPort(ip, port) + "/apis/v2beta1/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("the non-loopback listener answers plain HTTP from the network")
		}
	}
	if st, _ := b.reqAt("https://"+net.JoinHostPort(ip, port), "GET", "/apis/v2beta1/runs", true); st != 200 {
		t.Fatalf("HTTPS from the network with the token: HTTP %d", st)
	}
}

// TestServeOutputHoldsNoSecret: the admin token and the S3 secret key never reach stdout or
// the log; the output says where to read them.
func TestServeOutputHoldsNoSecret(t *testing.T) {
	b := start(t, "")
	time.Sleep(500 * time.Millisecond) // let the banner finish
	out := b.out.String()
	var creds struct {
		SecretKey string `json:"secret_key"`
	}
	raw, err := os.ReadFile(filepath.Join(b.data, "s3-credentials.json"))
	if err != nil || json.Unmarshal(raw, &creds) != nil || creds.SecretKey == "" {
		t.Fatalf("s3-credentials.json: %v %s", err, raw)
	}
	if strings.Contains(out, creds.SecretKey) {
		t.Errorf("serve printed the S3 secret key:\n%s", out)
	}
	if b.token == "" || strings.Contains(out, b.token) {
		t.Errorf("serve printed the admin token, or made none:\n%s", out)
	}
	for _, want := range []string{filepath.Join(b.data, "auth", "admin-token"), "kfp-box s3 credentials", "/login?code="} {
		if !strings.Contains(out, want) {
			t.Errorf("serve output lacks %q:\n%s", want, out)
		}
	}
	// The one-time link logs a browser in once.
	var link string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if i := strings.Index(sc.Text(), b.url+"/login?code="); i >= 0 {
			link = strings.Fields(sc.Text()[i:])[0]
		}
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i, want := range []int{303, 401} {
		resp, err := noRedirect.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("login link, use %d: HTTP %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}

// TestKubeconfig: the kubeconfig serve writes lets kubectl in; a wrong token is refused.
func TestKubeconfig(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kubectl is not installed (apt-get install kubectl); CI requires this test")
		}
		t.Skip("kubectl not installed; install it to run this test (required when CI is set)")
	}
	b := start(t, "")
	kc := filepath.Join(b.data, "auth", "kubeconfig")
	if !strings.Contains(b.out.String(), "export KUBECONFIG="+kc) {
		t.Fatalf("serve does not print the export line for %s:\n%s", kc, b.out)
	}
	run := func(kubeconfig string, args ...string) (string, error) {
		cmd := exec.Command(kubectl, append([]string{"--cache-dir", t.TempDir()}, args...)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(kc, "create", "secret", "generic", "test-secret-1", "--from-literal=username=user1"); err != nil {
		t.Fatalf("kubectl create secret with the box's kubeconfig: %v\n%s", err, out)
	}
	if out, err := run(kc, "get", "secrets"); err != nil || !strings.Contains(out, "test-secret-1") {
		t.Fatalf("kubectl get secrets: %v\n%s", err, out)
	}
	raw, _ := os.ReadFile(kc)
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte(strings.Replace(string(raw), b.token, "kfpbox_wrong", 1)), 0o600)
	if out, err := run(bad, "get", "secrets"); err == nil || !strings.Contains(out, "provide credentials") {
		t.Fatalf("kubectl with a wrong token: %v\n%s", err, out)
	}
}
