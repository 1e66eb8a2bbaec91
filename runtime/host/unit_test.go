package host

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/runtime/runtimetest"
)

func TestLogWriter(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		stream string
		want   []string // texts of the lines
	}{
		{"lines", "a\nb\n", "stdout", []string{"a", "b"}},
		{"final line without newline", "a\nb", "stderr", []string{"a", "b"}},
		{"empty lines kept", "\n\nx\n", "stdout", []string{"", "", "x"}},
		{"empty input", "", "stdout", nil},
		{"long line split", strings.Repeat("x", maxLogLine+10) + "\n", "stdout",
			[]string{strings.Repeat("x", maxLogLine), strings.Repeat("x", 10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			lw := newLogWriter(&buf)
			now := time.Date(2026, 11, 22, 8, 0, 0, 5, time.UTC)
			lw.now = func() time.Time { return now }
			if err := lw.copyStream(strings.NewReader(tt.input), tt.stream); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, line := range strings.SplitAfter(buf.String(), "\n") {
				if line == "" {
					continue
				}
				l, err := runtimetest.ParseLogLine(strings.TrimSuffix(line, "\n"))
				if err != nil {
					t.Fatal(err)
				}
				if !l.Time.Equal(now) || l.Stream != tt.stream {
					t.Errorf("line %q: time %v stream %q", line, l.Time, l.Stream)
				}
				got = append(got, l.Text)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("lines = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLogLineFormat(t *testing.T) {
	var buf bytes.Buffer
	lw := newLogWriter(&buf)
	lw.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("X", 3600)) }
	if err := lw.writeLine("stderr", []byte("hello world\n")); err != nil {
		t.Fatal(err)
	}
	// Fixed-width nanoseconds in UTC, so lines sort as text.
	want := "2026-01-02T02:04:05.000000600Z stderr hello world\n"
	if buf.String() != want {
		t.Errorf("line = %q, want %q", buf.String(), want)
	}
}

func TestExitFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	in := runtime.ExitStatus{Code: 137, OOMKilled: true, Message: "OOM killed",
		StartedAt: time.Unix(100, 5).UTC(), ExitedAt: time.Unix(200, 7).UTC()}
	if err := writeJSON(dir, exitFile, in); err != nil {
		t.Fatal(err)
	}
	var out runtime.ExitStatus
	if err := readJSON(dir, exitFile, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("read %+v, want %+v", out, in)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only %s (no temporary file left)", len(entries), exitFile)
	}
	if err := readJSON(dir, stateFile, &out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err %v, want os.ErrNotExist", err)
	}
}

// TestWriteFileAtReplaces checks the rename: a reader sees the old or the new content.
func TestWriteFileAtReplaces(t *testing.T) {
	dir := t.TempDir()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, content := range []string{"first", "second, longer"} {
		if err := writeFileAt(fd, "f", []byte(content)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "f")); string(got) != content {
			t.Errorf("content = %q, want %q", got, content)
		}
	}
}

func TestParseStatStartTime(t *testing.T) {
	tests := []struct {
		name, stat string
		want       uint64
		wantErr    bool
	}{
		{"plain", "42 (sleep) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 100", 123456, false},
		{"name with spaces and parens", "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987 1000 100", 987, false},
		{"truncated", "42 (x) S 1 2", 0, true},
		{"garbage", "nothing", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatStartTime([]byte(tt.stat))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	self, err := procStartTime(os.Getpid())
	if err != nil || self == 0 {
		t.Errorf("own start time: %d, %v", self, err)
	}
	if _, err := procStartTime(1 << 30); !errors.Is(err, errGone) {
		t.Errorf("start time of a pid that cannot exist: err %v, want errGone", err)
	}
}

func TestPlanCgroup(t *testing.T) {
	v1 := cgroupLayout{Root: "/sys/fs/cgroup"}
	v2 := cgroupLayout{Root: "/sys/fs/cgroup", V2: true}
	tests := []struct {
		name     string
		layout   cgroupLayout
		res      runtime.Resources
		wantDirs []string
		want     map[string]string // file name -> value
	}{
		{"no limits", v1, runtime.Resources{}, nil, nil},
		{"v1 memory", v1, runtime.Resources{MemoryLimit: 1 << 20},
			[]string{"/sys/fs/cgroup/memory/kfp-box/t1"},
			map[string]string{"memory.limit_in_bytes": "1048576", "memory.memsw.limit_in_bytes": "1048576"}},
		{"v1 cpu", v1, runtime.Resources{CPULimit: 1.5, CPURequest: 0.5},
			[]string{"/sys/fs/cgroup/memory/kfp-box/t1", "/sys/fs/cgroup/cpu/kfp-box/t1"},
			map[string]string{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "150000", "cpu.shares": "512"}},
		{"v1 tiny cpu clamps", v1, runtime.Resources{CPULimit: 0.001, CPURequest: 0.0001},
			[]string{"/sys/fs/cgroup/memory/kfp-box/t1", "/sys/fs/cgroup/cpu/kfp-box/t1"},
			map[string]string{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "1000", "cpu.shares": "2"}},
		{"v2 all", v2, runtime.Resources{MemoryLimit: 2 << 20, CPULimit: 2, CPURequest: 1},
			[]string{"/sys/fs/cgroup/kfp-box/t1"},
			map[string]string{"memory.max": "2097152", "memory.swap.max": "0", "cpu.max": "200000 100000", "cpu.weight": "39"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cg := planCgroup(tt.layout, "t1", tt.res)
			if tt.wantDirs == nil {
				if cg != nil {
					t.Fatalf("plan = %+v, want none", cg)
				}
				return
			}
			if strings.Join(cg.Dirs, ",") != strings.Join(tt.wantDirs, ",") {
				t.Errorf("dirs = %v, want %v", cg.Dirs, tt.wantDirs)
			}
			if cg.MemoryDir != tt.wantDirs[0] {
				t.Errorf("memory dir = %s, want %s", cg.MemoryDir, tt.wantDirs[0])
			}
			got := map[string]string{}
			for _, f := range cg.Files {
				got[f.Name] = f.Value
			}
			if len(got) != len(tt.want) {
				t.Errorf("files = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestDetectCgroups(t *testing.T) {
	tests := []struct {
		name   string
		files  []string
		wantOK bool
		wantV2 bool
	}{
		{"v2", []string{"cgroup.controllers"}, true, true},
		{"v1", []string{"memory/memory.limit_in_bytes"}, true, false},
		{"none", nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tt.files {
				p := filepath.Join(root, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			l, ok := detectCgroups(root)
			if ok != tt.wantOK || l.V2 != tt.wantV2 {
				t.Errorf("detect = %+v, %v; want ok %v v2 %v", l, ok, tt.wantOK, tt.wantV2)
			}
		})
	}
}

func TestLookPath(t *testing.T) {
	root := t.TempDir()
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{"/bin/tool", 0o755}, {"/usr/bin/data", 0o644}, {"/usr/bin/tool", 0o755}} {
		p := root + f.path
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(root+"/sbin/dir", 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file, path, want string
		wantErr                bool
	}{
		{"first in PATH wins", "tool", "/usr/bin:/bin", "/usr/bin/tool", false},
		{"not executable skipped", "data", "/usr/bin", "", true},
		{"directory skipped", "dir", "/sbin", "", true},
		{"absolute kept", "/opt/x", "/bin", "/opt/x", false},
		{"missing", "nope", "/bin:/usr/bin", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lookPath(root, tt.file, tt.path)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("lookPath = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestTaskEnv(t *testing.T) {
	uid := int64(1000)
	spec := runtime.TaskSpec{
		Env:  []string{"PATH=/opt/bin", "A=1"},
		User: &uid,
		GPUs: &runtime.GPUs{Env: map[string]string{"NVIDIA_VISIBLE_DEVICES": "GPU-1", "CUDA_VISIBLE_DEVICES": "0"}},
	}
	env := taskEnv(spec)
	for k, want := range map[string]string{
		"PATH": "/opt/bin", "HOME": "/", "A": "1",
		"NVIDIA_VISIBLE_DEVICES": "GPU-1", "CUDA_VISIBLE_DEVICES": "0",
	} {
		if got := envValue(env, k); got != want {
			t.Errorf("%s = %q, want %q (env %q)", k, got, want, env)
		}
	}
	if got := envValue(taskEnv(runtime.TaskSpec{}), "PATH"); got != defaultPath {
		t.Errorf("default PATH = %q", got)
	}
}

func TestValidate(t *testing.T) {
	ok := runtime.TaskSpec{ID: "a-1", Args: []string{"true"}, LogPath: "/tmp/x.log"}
	tests := []struct {
		name    string
		ns      bool
		mutate  func(*runtime.TaskSpec)
		wantErr bool
	}{
		{"ok", true, func(*runtime.TaskSpec) {}, false},
		{"bad id", true, func(s *runtime.TaskSpec) { s.ID = "../x" }, true},
		{"long id", true, func(s *runtime.TaskSpec) { s.ID = strings.Repeat("a", 77) }, true},
		{"no args", true, func(s *runtime.TaskSpec) { s.Args = nil }, true},
		{"relative log", true, func(s *runtime.TaskSpec) { s.LogPath = "x.log" }, true},
		{"relative work dir", true, func(s *runtime.TaskSpec) { s.WorkDir = "w" }, true},
		{"mount on /", true, func(s *runtime.TaskSpec) { s.Mounts = []runtime.Mount{{Source: "/a", Target: "/"}} }, true},
		{"relative mount", true, func(s *runtime.TaskSpec) { s.Mounts = []runtime.Mount{{Source: "a", Target: "/a"}} }, true},
		{"mount without namespaces", false, func(s *runtime.TaskSpec) { s.Mounts = []runtime.Mount{{Source: "/tmp", Target: "/a"}} }, true},
		{"no mounts without namespaces", false, func(*runtime.TaskSpec) {}, false},
		{"existing work dir without namespaces", false, func(s *runtime.TaskSpec) { s.WorkDir = "/tmp" }, false},
		{"missing work dir without namespaces", false, func(s *runtime.TaskSpec) { s.WorkDir = "/no/such/kfp/dir" }, true},
		{"missing work dir with namespaces", true, func(s *runtime.TaskSpec) { s.WorkDir = "/no/such/kfp/dir" }, false},
		{"missing mount source", true, func(s *runtime.TaskSpec) { s.Mounts = []runtime.Mount{{Source: "/no/such/kfp/src", Target: "/a"}} }, true},
		{"mount", true, func(s *runtime.TaskSpec) { s.Mounts = []runtime.Mount{{Source: "/tmp", Target: "/a"}} }, false},
		{"hidden source", true, func(s *runtime.TaskSpec) {
			s.Hide, s.Mounts = []string{"/tmp"}, []runtime.Mount{{Source: "/tmp", Target: "/a"}}
		}, false},
		{"target in a hidden path", true, func(s *runtime.TaskSpec) {
			s.Hide, s.Mounts = []string{"/var/lib/kfp-box/"}, []runtime.Mount{{Source: "/tmp", Target: "/var/lib/kfp-box/x"}}
		}, false},
		{"target is a hidden path", true, func(s *runtime.TaskSpec) {
			s.Hide, s.Mounts = []string{"/var/lib/kfp-box"}, []runtime.Mount{{Source: "/tmp", Target: "/var/lib/kfp-box"}}
		}, true},
		{"target beside a hidden path", true, func(s *runtime.TaskSpec) {
			s.Hide, s.Mounts = []string{"/var/lib/kfp-box"}, []runtime.Mount{{Source: "/tmp", Target: "/var/lib/kfp-box2"}}
		}, false},
		{"work dir in a hidden path", true, func(s *runtime.TaskSpec) { s.Hide, s.WorkDir = []string{"/var/lib/kfp-box"}, "/var/lib/kfp-box/w" }, true},
		{"relative hidden path", true, func(s *runtime.TaskSpec) { s.Hide = []string{"data"} }, true},
		{"hiding /", true, func(s *runtime.TaskSpec) { s.Hide = []string{"/"} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := ok
			tt.mutate(&spec)
			err := (&Runtime{ns: tt.ns}).validate(&spec)
			if (err != nil) != tt.wantErr {
				t.Fatalf("validate: %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, runtime.ErrInvalid) {
				t.Errorf("error %v does not wrap runtime.ErrInvalid", err)
			}
		})
	}
}

func TestMounterWritable(t *testing.T) {
	m := &mounter{
		copies:  []string{"/r", "/r/tmp"},
		created: []string{"/r/minio"},
		targets: []string{"/r/minio/b"},
	}
	tests := []struct {
		dir  string
		want bool
	}{
		{"/r", true},           // a tmpfs copy
		{"/r/tmp", true},       // a copy moved over /tmp
		{"/r/usr", false},      // a bind of the host's /usr inside the copy of /
		{"/r/minio/x", true},   // below a directory made on tmpfs
		{"/r/minio/b/c", true}, // inside a bind mount target (made in its source)
		{"/r/minio2", false},
		{"/etc", false},
	}
	for _, tt := range tests {
		if got := m.writable(tt.dir); got != tt.want {
			t.Errorf("writable(%s) = %v, want %v", tt.dir, got, tt.want)
		}
	}
	if got := firstComponent("/minio/mlpipeline/v2"); got != "minio" {
		t.Errorf("firstComponent = %q", got)
	}
}

func TestCredential(t *testing.T) {
	if credential(nil, nil) != nil {
		t.Error("no user or group must keep the shim's credentials")
	}
	u, g := int64(5), int64(7)
	c := credential(&u, &g)
	if c.Uid != 5 || c.Gid != 7 || c.Groups == nil || len(c.Groups) != 0 {
		t.Errorf("credential = %+v", c)
	}
}
