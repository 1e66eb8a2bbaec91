package containerd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kfp-box/kfp-box/runtime"
)

func newSpec() *oci.Spec {
	return &oci.Spec{Process: &specs.Process{Args: []string{"python3", "-c", "pass"}}, Linux: &specs.Linux{}}
}

func apply(t *testing.T, s *oci.Spec, opts ...oci.SpecOpts) error {
	t.Helper()
	for _, o := range opts {
		if err := o(context.Background(), nil, &containers.Container{ID: "t"}, s); err != nil {
			return err
		}
	}
	return nil
}

func TestWithResources(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	tests := []struct {
		name   string
		res    runtime.Resources
		quota  *int64
		shares uint64
		limit  *int64
		soft   *int64
	}{
		{"none", runtime.Resources{}, nil, 0, nil, nil},
		{"half a core", runtime.Resources{CPULimit: 0.5}, i64(50_000), 0, nil, nil},
		{"tiny limit is the kernel minimum", runtime.Resources{CPULimit: 0.001}, i64(1000), 0, nil, nil},
		{"request only", runtime.Resources{CPURequest: 2}, nil, 2048, nil, nil},
		{"memory", runtime.Resources{MemoryLimit: 1 << 30, MemoryRequest: 1 << 29}, nil, 0, i64(1 << 30), i64(1 << 29)},
		{"request above limit is capped", runtime.Resources{MemoryLimit: 1 << 20, MemoryRequest: 1 << 30}, nil, 0, i64(1 << 20), i64(1 << 20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSpec()
			if err := apply(t, s, withResources(tt.res)); err != nil {
				t.Fatal(err)
			}
			r := s.Linux.Resources
			var quota *int64
			var shares uint64
			if r.CPU != nil {
				quota = r.CPU.Quota
				if r.CPU.Shares != nil {
					shares = *r.CPU.Shares
				}
				if r.CPU.Quota != nil && *r.CPU.Period != cpuPeriod {
					t.Errorf("period = %d", *r.CPU.Period)
				}
			}
			if !eqPtr(quota, tt.quota) || shares != tt.shares {
				t.Errorf("cpu quota %v shares %d, want %v %d", deref(quota), shares, deref(tt.quota), tt.shares)
			}
			var limit, soft *int64
			if r.Memory != nil {
				limit, soft = r.Memory.Limit, r.Memory.Reservation
			}
			if !eqPtr(limit, tt.limit) || !eqPtr(soft, tt.soft) {
				t.Errorf("memory limit %v soft %v, want %v %v", deref(limit), deref(soft), deref(tt.limit), deref(tt.soft))
			}
		})
	}
}

func eqPtr(a, b *int64) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }
func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestBindMounts(t *testing.T) {
	dir := t.TempDir()
	vol := filepath.Join(dir, "volumes", "my-pvc")
	spec := runtime.TaskSpec{ID: "t", Mounts: []runtime.Mount{
		{Source: dir, Target: "/minio/mlpipeline/x/", ReadOnly: true},
		{Source: vol, Target: "/data"},
	}, GPUs: &runtime.GPUs{Mounts: []runtime.Mount{{Source: dir, Target: "/usr/lib/nvidia"}}}}
	got, err := bindMounts(spec)
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.Mount{
		{Destination: "/minio/mlpipeline/x", Type: "bind", Source: dir, Options: []string{"rbind", "rprivate", "ro"}},
		{Destination: "/data", Type: "bind", Source: vol, Options: []string{"rbind", "rprivate", "rw"}},
		{Destination: "/usr/lib/nvidia", Type: "bind", Source: dir, Options: []string{"rbind", "rprivate", "ro"}},
	}
	if len(got) != len(want) {
		t.Fatalf("mounts = %+v", got)
	}
	for i := range want {
		if got[i].Destination != want[i].Destination || got[i].Source != want[i].Source || !slices.Equal(got[i].Options, want[i].Options) {
			t.Errorf("mount %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if st, err := os.Stat(vol); err != nil || !st.IsDir() {
		t.Errorf("a read-write volume source was not created: %v", err)
	}
	spec.Mounts = []runtime.Mount{{Source: filepath.Join(dir, "absent"), Target: "/in", ReadOnly: true}}
	if _, err := bindMounts(spec); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("missing read-only source: %v", err)
	}
}

func TestWithInitAndDevice(t *testing.T) {
	s := newSpec()
	if err := apply(t, s, withInit("/usr/lib/kfp-box/kfp-box-init"), withDevice(runtime.Device{Path: "/dev/null", ContainerPath: "/dev/nvidia0"})); err != nil {
		t.Fatal(err)
	}
	if want := []string{initTarget, "--", "python3", "-c", "pass"}; !slices.Equal(s.Process.Args, want) {
		t.Errorf("args = %q, want %q", s.Process.Args, want)
	}
	m := s.Mounts[len(s.Mounts)-1]
	if m.Destination != initTarget || m.Source != "/usr/lib/kfp-box/kfp-box-init" || !slices.Contains(m.Options, "ro") {
		t.Errorf("init mount = %+v", m)
	}
	if d := s.Linux.Devices; len(d) != 1 || d[0].Path != "/dev/nvidia0" || d[0].Major != 1 || d[0].Minor != 3 {
		t.Errorf("devices = %+v", d)
	}
	if a := s.Linux.Resources.Devices; len(a) == 0 || !a[len(a)-1].Allow || a[len(a)-1].Access != "rwm" {
		t.Errorf("device cgroup rules = %+v", a)
	}
	empty := &oci.Spec{Process: &specs.Process{}}
	if err := apply(t, empty, withInit("/x")); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("init without a command: %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := runtime.TaskSpec{ID: "run-1.task_a", Image: "busybox", LogPath: "/l"}
	tests := []struct {
		name   string
		mutate func(*runtime.TaskSpec)
		valid  bool
	}{
		{"ok", func(*runtime.TaskSpec) {}, true},
		{"id too long", func(s *runtime.TaskSpec) { s.ID = strings.Repeat("a", 77) }, false},
		{"id with slash", func(s *runtime.TaskSpec) { s.ID = "a/b" }, false},
		{"no image", func(s *runtime.TaskSpec) { s.Image = "" }, false},
		{"relative mount", func(s *runtime.TaskSpec) { s.Mounts = []runtime.Mount{{Source: "x", Target: "/y"}} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.mutate(&s)
			if err := validate(s); (err == nil) != tt.valid || (err != nil && !errors.Is(err, runtime.ErrInvalid)) {
				t.Errorf("validate: %v, want valid=%v", err, tt.valid)
			}
		})
	}
}

func TestRecordedAndOOM(t *testing.T) {
	st, ok := recorded(map[string]string{labelExitCode: "137", labelOOM: "true", labelStartedAt: "2026-01-02T03:04:05Z", labelExitedAt: "2026-01-02T03:04:06Z", labelMessage: "m"})
	if !ok || st.Code != 137 || !st.OOMKilled || st.Message != "m" || st.ExitedAt.Sub(st.StartedAt).Seconds() != 1 {
		t.Errorf("recorded = %+v %v", st, ok)
	}
	if _, ok := recorded(map[string]string{labelManaged: "true"}); ok {
		t.Error("an unrecorded container reads as exited")
	}
	if oomKilled(DefaultNamespace, "no-such-task") {
		t.Error("oomKilled of a task without a cgroup")
	}
}

func TestDaemonConfig(t *testing.T) {
	d := &Daemon{cfg: DaemonConfig{Dir: "/var/lib/kfp-box/containerd"}, address: DaemonAddress("/var/lib/kfp-box/containerd")}
	cfg := d.configTOML()
	for _, want := range []string{
		"version = 2",
		`root = "/var/lib/kfp-box/containerd/root"`,
		`state = "/var/lib/kfp-box/containerd/state"`,
		`address = "/var/lib/kfp-box/containerd/containerd.sock"`,
		`"io.containerd.grpc.v1.cri"`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
}
