package cli

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
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
	tests := []struct {
		name      string
		runtime   string
		probe     error
		wantLevel checkLevel
	}{
		{"usable", "auto", nil, checkOK},
		{"auto falls back", "auto", errors.New("no containerd"), checkWarn},
		{"containerd required", "containerd", errors.New("no containerd"), checkFail},
		{"host does not need it", "host", errors.New("no containerd"), checkWarn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := doctorEnv{
				cfg:      appliance.Config{Runtime: tt.runtime},
				lookPath: missing,
				output:   func(string, ...string) (string, error) { return "", nil },
				probe:    func(context.Context) error { return tt.probe },
			}
			rs := checkContainerd(context.Background(), e)
			if rs[0].Level != tt.wantLevel {
				t.Errorf("containerd level = %v, want %v (%s)", rs[0].Level, tt.wantLevel, rs[0].Detail)
			}
			if rs[1].Level == checkOK || rs[1].Fix == "" {
				t.Errorf("missing runc: %+v", rs[1])
			}
		})
	}
}

func TestCheckPortAndDataDir(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if r := checkPort(context.Background(), "api port", l.Addr().String(), "--listen"); r.Level != checkFail || !strings.Contains(r.Fix, "--listen") {
		t.Errorf("busy port: %+v", r)
	}
	if r := checkPort(context.Background(), "api port", "127.0.0.1:0", "--listen"); r.Level != checkOK {
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
