package cli

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/appliance/pyenv"
)

// fakeStat answers os.Stat from a map file system rooted at /.
func fakeStat(files fstest.MapFS) func(string) (os.FileInfo, error) {
	return func(p string) (os.FileInfo, error) {
		return fs.Stat(files, strings.TrimPrefix(p, "/"))
	}
}

func TestCheckCgroupsAndNVML(t *testing.T) {
	tests := []struct {
		name   string
		files  fstest.MapFS
		check  func(doctorEnv) checkResult
		level  checkLevel
		detail string
	}{
		{"cgroup v1", fstest.MapFS{"sys/fs/cgroup/cpu": {Mode: fs.ModeDir}, "sys/fs/cgroup/memory": {Mode: fs.ModeDir}}, checkCgroups, checkOK, "v1"},
		{"cgroup v1 without memory", fstest.MapFS{"sys/fs/cgroup/cpu": {Mode: fs.ModeDir}}, checkCgroups, checkWarn, "without memory"},
		{"no driver", fstest.MapFS{}, checkNVML, checkWarn, "not found"},
		{"driver without nodes", fstest.MapFS{"usr/lib64/libnvidia-ml.so.1": {}}, checkNVML, checkWarn, "nvidiactl is missing"},
		{"driver", fstest.MapFS{"usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1": {}, "dev/nvidiactl": {}}, checkNVML, checkOK, "present"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.check(doctorEnv{stat: fakeStat(tt.files)})
			if r.Level != tt.level || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("got %v %q, want %v containing %q", r.Level, r.Detail, tt.level, tt.detail)
			}
			if r.Level != checkOK && r.Fix == "" {
				t.Errorf("a %v result has no fix", r.Level)
			}
		})
	}
}

func TestCheckContainerd(t *testing.T) {
	missing := func(string) (string, error) { return "", errors.New("not found") }
	noNS := errors.New("host runtime: mount namespaces need root")
	tests := []struct {
		name                string
		runtime             string
		probe, host         error
		ctd, runc, hostWant checkLevel
	}{
		{"usable", "auto", nil, nil, checkOK, checkWarn, checkOK},
		{"auto falls back", "auto", errors.New("no containerd"), nil, checkWarn, checkWarn, checkOK},
		{"auto without root", "auto", errors.New("no containerd"), noNS, checkWarn, checkWarn, checkWarn},
		{"containerd required", "containerd", errors.New("no containerd"), nil, checkFail, checkFail, checkOK},
		{"containerd without root", "containerd", nil, noNS, checkOK, checkFail, checkWarn},
		{"host does not need it", "host", errors.New("no containerd"), nil, checkWarn, checkWarn, checkOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := doctorEnv{
				cfg:         appliance.Config{Runtime: tt.runtime},
				lookPath:    missing,
				output:      func(string, ...string) (string, error) { return "", nil },
				probe:       func(context.Context) error { return tt.probe },
				hostRuntime: func() error { return tt.host },
			}
			rs := checkContainerd(context.Background(), e)
			if len(rs) != 3 {
				t.Fatalf("got %d results, want containerd, runc and host runtime: %+v", len(rs), rs)
			}
			for i, want := range []checkLevel{tt.ctd, tt.runc, tt.hostWant} {
				if rs[i].Level != want {
					t.Errorf("%s level = %v, want %v (%s)", rs[i].Name, rs[i].Level, want, rs[i].Detail)
				}
				if rs[i].Level != checkOK && rs[i].Fix == "" {
					t.Errorf("%s: a %v result has no fix", rs[i].Name, rs[i].Level)
				}
			}
		})
	}
}

func TestCheckPortAndDataDir(t *testing.T) {
	// A port held by a web server that is not a kfp-box (it answers 200 to everything) is
	// a failure, for both probes.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>hello</html>")) }))
	defer other.Close()
	l, err := net.Listen("tcp", strings.TrimPrefix(other.URL, "http://"))
	if err == nil {
		l.Close()
		t.Fatal("the test server's port is free")
	}
	l = other.Listener
	if r := checkPort(context.Background(), "api port", l.Addr().String(), "--listen", boxAPI); r.Level != checkFail || !strings.Contains(r.Fix, "--listen") {
		t.Errorf("busy port: %+v", r)
	}
	if r := checkPort(context.Background(), "s3 port", l.Addr().String(), "--s3-listen", boxS3); r.Level != checkFail || !strings.Contains(r.Fix, "--s3-listen") {
		t.Errorf("busy port: %+v", r)
	}
	if r := checkPort(context.Background(), "api port", "127.0.0.1:0", "--listen", boxAPI); r.Level != checkOK {
		t.Errorf("free port: %+v", r)
	}
	dir := t.TempDir()
	file := dir + "/file"
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  string
		want checkLevel
	}{{dir, checkOK}, {dir + "/new/sub", checkOK}, {file, checkFail}} {
		e := doctorEnv{cfg: appliance.Config{DataDir: tc.dir}, stat: os.Stat}
		if r := checkDataDir(e); r.Level != tc.want {
			t.Errorf("data dir %s: %+v, want %v", tc.dir, r, tc.want)
		}
		if r := checkDisk(e); r.Level == checkFail && !strings.Contains(r.Detail, "free") {
			t.Errorf("disk: %+v", r)
		}
	}
}

func TestPrintChecks(t *testing.T) {
	var buf bytes.Buffer
	n := printChecks(&buf, []checkResult{
		{Name: "a", Detail: "fine"},
		{Name: "b", Level: checkWarn, Detail: "meh", Fix: "do x"},
		{Name: "c", Level: checkFail, Detail: "broken", Fix: "do y"},
	})
	if n != 1 {
		t.Errorf("failures = %d, want 1", n)
	}
	for _, want := range []string{"[ok  ] a", "[warn] b", "fix: do x", "[FAIL] c", "fix: do y"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestCheckPython(t *testing.T) {
	cases := []struct {
		in        pyenv.Interpreter
		level     checkLevel
		wantInAll string
	}{
		{pyenv.Interpreter{Path: "/usr/bin/python3", Version: "3.11.2", ExternallyManaged: true}, checkOK, "externally managed"},
		{pyenv.Interpreter{Problem: "host Python \"python3\" not found: " + pyenv.AptFix}, checkWarn, "apt-get install python3 python3-venv"},
		{pyenv.Interpreter{Path: "/usr/bin/python3", Problem: "host Python /usr/bin/python3 has no venv or ensurepip, so tasks cannot get an environment with pip: apt-get install python3-venv"}, checkWarn, "apt-get install python3-venv"},
	}
	for _, tc := range cases {
		e := doctorEnv{cfg: appliance.Config{HostPython: "python3"}, python: func(context.Context, string) pyenv.Interpreter { return tc.in }}
		r := checkPython(context.Background(), e)
		if r.Level != tc.level || !strings.Contains(r.Detail+" "+r.Fix, tc.wantInAll) {
			t.Errorf("%+v: got %+v", tc.in, r)
		}
	}
}

// TestDoctorBesideRunningBox runs doctor with the configuration of a running box: the API
// and S3 ports that box holds are reported as the box's (ok), not as taken (FAIL).
func TestDoctorBesideRunningBox(t *testing.T) {
	b := startServe(t)
	out, _ := runCLI(t, "doctor", "--data-dir", b.dir, "--listen", b.api, "--s3-listen", b.s3, "--runtime", "host")
	for _, want := range []string{
		"[ok  ] api port     " + b.api + " is served by a running kfp-box's API",
		"[ok  ] s3 port      " + b.s3 + " is served by a running kfp-box's S3 server",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	// The same ports named for the other service are not mistaken for it.
	out, _ = runCLI(t, "doctor", "--data-dir", b.dir, "--listen", b.s3, "--s3-listen", b.api, "--runtime", "host")
	for _, want := range []string{"[FAIL] api port     cannot listen on " + b.s3, "[FAIL] s3 port      cannot listen on " + b.api} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor with the ports swapped lacks %q:\n%s", want, out)
		}
	}
}
