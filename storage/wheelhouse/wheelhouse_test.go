package wheelhouse_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/storage/wheelhouse"
	"github.com/kfp-box/kfp-box/storage/wheelhouse/wheeltest"
)

func TestVersionOrder(t *testing.T) {
	order := []string{"1.0.dev1", "1.0a1", "1.0a2.dev1", "1.0b1", "1.0rc1", "1.0", "1.0.post1", "1.0.1", "1.1", "2.14.3", "2.14.10", "1!0.1"}
	for i := 0; i+1 < len(order); i++ {
		a, err := wheelhouse.ParseVersion(order[i])
		if err != nil {
			t.Fatal(err)
		}
		b, err := wheelhouse.ParseVersion(order[i+1])
		if err != nil {
			t.Fatal(err)
		}
		if wheelhouse.Compare(a, b) >= 0 || wheelhouse.Compare(b, a) <= 0 {
			t.Errorf("%s should sort before %s", order[i], order[i+1])
		}
	}
	a, _ := wheelhouse.ParseVersion("2.0")
	b, _ := wheelhouse.ParseVersion("2.0.0")
	if wheelhouse.Compare(a, b) != 0 {
		t.Error("2.0 and 2.0.0 are the same version")
	}
	if _, err := wheelhouse.ParseVersion("not-a-version"); !errors.Is(err, wheelhouse.ErrInvalid) {
		t.Errorf("bad version: %v", err)
	}
}

func TestSpecifierMatch(t *testing.T) {
	cases := []struct {
		spec, version string
		want          bool
	}{
		{"==2.14.3", "2.14.3", true},
		{"==2.14.3", "2.14.4", false},
		{"==2.14.*", "2.14.9", true},
		{"==2.14.*", "2.15.0", false},
		{"!=2.14.*", "2.15.0", true},
		{">=3.7.4,<5", "4.12.2", true},
		{">=3.7.4,<5", "5.0", false},
		{"~=2.2", "2.9", true},
		{"~=2.2", "3.0", false},
		{"~=2.2.0", "2.3.0", false},
		{"", "1.0", true},
		{"", "1.0rc1", false},
		{">=1.0rc1", "1.0rc2", true},
		{">1.0", "1.0", false},
		{"<=1.0", "1.0+local", true},
		{"===1.0", "1.0", true},
	}
	for _, c := range cases {
		sp, err := wheelhouse.ParseSpecifier(c.spec)
		if err != nil {
			t.Fatalf("%q: %v", c.spec, err)
		}
		v, err := wheelhouse.ParseVersion(c.version)
		if err != nil {
			t.Fatal(err)
		}
		if got := sp.Match(v); got != c.want {
			t.Errorf("%q matches %q = %v, want %v", c.spec, c.version, got, c.want)
		}
	}
}

func TestParseRequirement(t *testing.T) {
	cases := map[string]wheelhouse.Requirement{
		"kfp==2.14.3":    {Name: "kfp", Project: "kfp", Specifier: "==2.14.3"},
		"Foo_Bar >= 1.0": {Name: "Foo_Bar", Project: "foo-bar", Specifier: ">=1.0"},
		`typing-extensions>=3.7.4,<5; python_version<"3.9"`: {Name: "typing-extensions", Project: "typing-extensions", Specifier: ">=3.7.4,<5", Marker: `python_version<"3.9"`},
		"requests[socks]":   {Name: "requests", Project: "requests", Extras: []string{"socks"}},
		"nbclient>=0.10,<1": {Name: "nbclient", Project: "nbclient", Specifier: ">=0.10,<1"},
	}
	for in, want := range cases {
		got, err := wheelhouse.ParseRequirement(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got.Name != want.Name || got.Project != want.Project || got.Specifier != want.Specifier || got.Marker != want.Marker || strings.Join(got.Extras, ",") != strings.Join(want.Extras, ",") {
			t.Errorf("%q = %+v, want %+v", in, got, want)
		}
	}
	for _, bad := range []string{"", "==1.0", "pkg @ https://x/y.whl", "kfp==not a version!"} {
		if _, err := wheelhouse.ParseRequirement(bad); err == nil {
			t.Errorf("%q should be refused", bad)
		}
	}
}

func TestParseWheelName(t *testing.T) {
	w, err := wheelhouse.ParseWheelName("Kfp_Pipeline.Spec-2.15.2-1-py3-none-any.whl")
	if err != nil {
		t.Fatal(err)
	}
	if w.Project != "kfp-pipeline-spec" || w.Version != "2.15.2" || w.Platform != "any" {
		t.Errorf("parsed %+v", w)
	}
	for _, bad := range []string{"kfp.tar.gz", "kfp-2.0.whl", "../kfp-2.0-py3-none-any.whl", "-1-py3-none-any.whl"} {
		if _, err := wheelhouse.ParseWheelName(bad); !errors.Is(err, wheelhouse.ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
}

func openStore(t *testing.T) *wheelhouse.Store {
	t.Helper()
	s, err := wheelhouse.Open(filepath.Join(t.TempDir(), "wheelhouse"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreImportListRemove(t *testing.T) {
	s := openStore(t)
	w1 := wheeltest.Wheel{Name: "demo_pkg", Version: "1.0", RequiresPython: ">=3.8", Files: map[string]string{"demo_pkg/__init__.py": "X = 1\n"}}
	w2 := wheeltest.Wheel{Name: "demo_pkg", Version: "1.10", Files: map[string]string{"demo_pkg/__init__.py": "X = 2\n"}}
	for _, w := range []wheeltest.Wheel{w2, w1} {
		if _, err := s.Import(w.FileName(), bytes.NewReader(w.Bytes()), ""); err != nil {
			t.Fatal(err)
		}
	}
	got := s.List()
	if len(got) != 2 || got[0].Version != "1.0" || got[1].Version != "1.10" || got[0].RequiresPython != ">=3.8" || got[0].Project != "demo-pkg" {
		t.Fatalf("list = %+v", got)
	}
	// Same name and content again is fine; other content under the same name is not.
	if _, err := s.Import(w1.FileName(), bytes.NewReader(w1.Bytes()), ""); err != nil {
		t.Errorf("re-import of the same wheel: %v", err)
	}
	other := w1
	other.Files = map[string]string{"demo_pkg/__init__.py": "X = 3\n"}
	if _, err := s.Import(w1.FileName(), bytes.NewReader(other.Bytes()), ""); !errors.Is(err, wheelhouse.ErrInvalid) {
		t.Errorf("import of other content under an existing name: %v", err)
	}
	if _, err := s.Import("junk-1.0-py3-none-any.whl", strings.NewReader("not a zip"), ""); !errors.Is(err, wheelhouse.ErrInvalid) {
		t.Errorf("import of a non-zip: %v", err)
	}
	if _, err := s.Import("other-1.0-py3-none-any.whl", bytes.NewReader(w1.Bytes()), ""); !errors.Is(err, wheelhouse.ErrInvalid) {
		t.Errorf("import under another project's name: %v", err)
	}
	if _, err := s.Import(w1.FileName(), bytes.NewReader(w1.Bytes()), strings.Repeat("0", 64)); !errors.Is(err, wheelhouse.ErrUpstream) {
		t.Errorf("import with a wrong expected hash: %v", err)
	}
	req, _ := wheelhouse.ParseRequirement("Demo.Pkg>=1.1")
	if f, ok := s.Satisfies(req); !ok || f.Version != "1.10" {
		t.Errorf("Satisfies(%s) = %+v %v", req, f, ok)
	}
	// A wheel copied in by hand is indexed on the next open; metadata survives reopening.
	w3 := wheeltest.Wheel{Name: "hand", Version: "0.1"}
	w3.Write(t, s.Dir())
	s2, err := wheelhouse.Open(s.Dir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s2.List()) != 3 {
		t.Fatalf("reopened list = %+v", s2.List())
	}
	if _, err := s2.Remove("demo-pkg==1.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Remove("hand-0.1-py3-none-any.whl"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Remove("nothing"); !errors.Is(err, wheelhouse.ErrNotFound) {
		t.Errorf("remove of nothing: %v", err)
	}
	if l := s2.List(); len(l) != 1 || l[0].Version != "1.10" {
		t.Errorf("after removals: %+v", l)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), w1.FileName())); !os.IsNotExist(err) {
		t.Errorf("removed wheel still on disk: %v", err)
	}
}

func serveIndex(t *testing.T, s *wheelhouse.Store, up *wheelhouse.Upstream) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/pypi/", &wheelhouse.Index{Store: s, Upstream: up, Prefix: "/pypi"})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func serveIndexB(b *testing.B, s *wheelhouse.Store) string {
	b.Helper()
	mux := http.NewServeMux()
	mux.Handle("/pypi/", &wheelhouse.Index{Store: s, Prefix: "/pypi"})
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, url, accept string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestIndexHTMLAndJSON(t *testing.T) {
	s := openStore(t)
	w := wheeltest.Wheel{Name: "demo_pkg", Version: "1.0", RequiresPython: ">=3.8"}
	f, err := s.Import(w.FileName(), bytes.NewReader(w.Bytes()), "")
	if err != nil {
		t.Fatal(err)
	}
	srv := serveIndex(t, s, nil)
	code, body, _ := get(t, srv.URL+"/pypi/simple/", "")
	if code != 200 || !strings.Contains(body, `<a href="demo-pkg/">demo-pkg</a>`) {
		t.Errorf("root: %d %s", code, body)
	}
	code, body, _ = get(t, srv.URL+"/pypi/simple/Demo_Pkg", "")
	if code != 200 || !strings.Contains(body, `href="../../files/demo_pkg-1.0-py3-none-any.whl#sha256=`+f.SHA256+`"`) || !strings.Contains(body, `data-requires-python="&gt;=3.8"`) {
		t.Errorf("project page (after redirect): %d %s", code, body)
	}
	code, body, hdr := get(t, srv.URL+"/pypi/simple/demo-pkg/", "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.1")
	var page struct {
		Name  string `json:"name"`
		Files []struct {
			Filename string            `json:"filename"`
			URL      string            `json:"url"`
			Hashes   map[string]string `json:"hashes"`
		} `json:"files"`
	}
	if code != 200 || hdr.Get("Content-Type") != "application/vnd.pypi.simple.v1+json" || json.Unmarshal([]byte(body), &page) != nil || len(page.Files) != 1 || page.Files[0].Hashes["sha256"] != f.SHA256 {
		t.Errorf("PEP 691 page: %d %s %s", code, hdr.Get("Content-Type"), body)
	}
	code, body, _ = get(t, srv.URL+"/pypi/files/"+w.FileName(), "")
	if code != 200 || body != string(w.Bytes()) {
		t.Errorf("file: %d, %d bytes", code, len(body))
	}
	code, body, _ = get(t, srv.URL+"/pypi/simple/absent/", "")
	if code != 404 || !strings.Contains(body, "kfp-box wheels import") {
		t.Errorf("absent project: %d %s", code, body)
	}
	resp, err := http.Post(srv.URL+"/pypi/simple/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d", resp.StatusCode)
	}
}

// pip is a pip that can run here: the system's python3 -m pip. Skips (failing under CI)
// when it is missing.
func pip(t *testing.T) []string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-m", "pip", "--version").Run() == nil {
			return []string{py, "-m", "pip"}
		}
	}
	msg := "no python3 with pip here (scripts/ensure-deps.sh installs python3-pip)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return nil
}

// TestRealPipDownloadsThroughUpstream: pip downloads a wheel through the box from an
// upstream index (another index served on loopback); the upstream is stopped; a fresh pip
// download still succeeds from the wheelhouse. A tampered upstream wheel is refused.
func TestRealPipDownloadsThroughUpstream(t *testing.T) {
	pipCmd := pip(t)
	upStore := openStore(t)
	w := wheeltest.Wheel{Name: "demo_pkg", Version: "2.0", Files: map[string]string{"demo_pkg/__init__.py": "X = 2\n"}}
	if _, err := upStore.Import(w.FileName(), bytes.NewReader(w.Bytes()), ""); err != nil {
		t.Fatal(err)
	}
	upSrv := serveIndex(t, upStore, nil)
	up, err := wheelhouse.NewUpstream(upSrv.URL+"/pypi/simple", nil)
	if err != nil {
		t.Fatal(err)
	}
	box := openStore(t)
	boxSrv := serveIndex(t, box, up)
	download := func(req string) (string, error) {
		dest := t.TempDir()
		args := append(append([]string{}, pipCmd[1:]...), "download", "--no-deps", "--disable-pip-version-check", "--no-cache-dir", "-d", dest, "--index-url", boxSrv.URL+"/pypi/simple/", req)
		out, err := exec.Command(pipCmd[0], args...).CombinedOutput()
		return string(out), err
	}
	if out, err := download("demo-pkg==2.0"); err != nil {
		t.Fatalf("first download through the box: %v\n%s", err, out)
	}
	if _, ok := box.Get(w.FileName()); !ok {
		t.Fatal("the wheel fetched from upstream is not in the wheelhouse")
	}
	upSrv.Close()
	if out, err := download("demo-pkg==2.0"); err != nil {
		t.Fatalf("download with the upstream stopped: %v\n%s", err, out)
	}
	out, err := download("demo-pkg==3.0")
	if err == nil || !strings.Contains(out, "demo-pkg==3.0") {
		t.Errorf("a missing version should fail naming it: %v\n%s", err, out)
	}
}

func TestUpstreamRefusesABadHash(t *testing.T) {
	w := wheeltest.Wheel{Name: "demo_pkg", Version: "2.0"}
	mux := http.NewServeMux()
	mux.HandleFunc("/simple/demo-pkg/", func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(rw, `<a href="/f/`+w.FileName()+`#sha256=`+strings.Repeat("ab", 32)+`">x</a> <a href="/f/nohash-1.0-py3-none-any.whl">y</a>`)
	})
	mux.HandleFunc("/f/", func(rw http.ResponseWriter, r *http.Request) { _, _ = rw.Write(w.Bytes()) })
	upSrv := httptest.NewServer(mux)
	defer upSrv.Close()
	up, err := wheelhouse.NewUpstream(upSrv.URL+"/simple/", nil)
	if err != nil {
		t.Fatal(err)
	}
	box := openStore(t)
	boxSrv := serveIndex(t, box, up)
	code, body, _ := get(t, boxSrv.URL+"/pypi/files/"+w.FileName(), "")
	if code != http.StatusBadGateway || !strings.Contains(body, "does not match") {
		t.Errorf("tampered wheel: %d %s", code, body)
	}
	if len(box.List()) != 0 {
		t.Errorf("a wheel with a bad hash was kept: %+v", box.List())
	}
	if _, err := wheelhouse.NewUpstream("ftp://x", nil); !errors.Is(err, wheelhouse.ErrInvalid) {
		t.Errorf("ftp upstream: %v", err)
	}
}
