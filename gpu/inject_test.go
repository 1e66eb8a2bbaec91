package gpu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kfp-box/kfp-box/runtime"
)

const libDir = "usr/lib/x86_64-linux-gnu"

// hostFS is a host root with the NVIDIA driver 550.54.15 installed as the .run installer or
// the distribution packages lay it out.
func hostFS() fstest.MapFS {
	char := fs.ModeDevice | fs.ModeCharDevice | 0o666
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s), Mode: 0o755} }
	link := func(to string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(to), Mode: fs.ModeSymlink | 0o777}
	}
	m := fstest.MapFS{
		"dev/nvidiactl":                                   {Mode: char},
		"dev/nvidia-uvm":                                  {Mode: char},
		"dev/null":                                        {Mode: char},
		"usr/bin/nvidia-smi":                              file("ELF"),
		libDir + "/libcuda.so.550.54.15":                  file("cuda"),
		libDir + "/libcuda.so.1":                          link("libcuda.so.550.54.15"),
		libDir + "/libcuda.so":                            link("libcuda.so.1"),
		libDir + "/libnvidia-ml.so.550.54.15":             file("nvml"),
		libDir + "/libnvidia-ml.so.1":                     link("/" + libDir + "/libnvidia-ml.so.550.54.15"),
		libDir + "/libnvidia-ptxjitcompiler.so.550.54.15": file("ptx"),
		libDir + "/libnvidia-ptxjitcompiler.so.1":         link("libnvidia-ptxjitcompiler.so.550.54.15"),
		libDir + "/libnvidia-mlx.so.1":                    file("not ours"),
		libDir + "/libc.so.6":                             file("libc"),
		"usr/lib/i386-linux-gnu/libcuda.so.550.54.15":     file("32-bit"),
	}
	for i := range 8 {
		m[fmt.Sprintf("dev/nvidia%d", i)] = &fstest.MapFile{Mode: char}
	}
	return m
}

func leaseOf(t *testing.T, fsys fs.FS, count int) (*Manager, *Lease) {
	t.Helper()
	m, _ := newManager(t, newDGX(t), func(o *Options) { o.DevFS = fsys })
	hold, err := m.Allocate(context.Background(), Request{Owner: "first", Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hold.Release)
	l, err := m.Allocate(context.Background(), Request{Owner: "exec-1", Count: count})
	if err != nil {
		t.Fatal(err)
	}
	return m, l
}

func TestInjectionDeviceNodes(t *testing.T) {
	m, l := leaseOf(t, hostFS(), 2)
	g, err := m.InjectionFor(l, "containerd")
	if err != nil {
		t.Fatal(err)
	}
	u := l.UUIDs()
	want := &runtime.GPUs{
		UUIDs: u,
		Env: map[string]string{
			"NVIDIA_VISIBLE_DEVICES":     u[0] + "," + u[1],
			"CUDA_VISIBLE_DEVICES":       u[0] + "," + u[1],
			"NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
		},
		Devices: []runtime.Device{
			{Path: "/dev/nvidia2", Permissions: "rwm"},
			{Path: "/dev/nvidia3", Permissions: "rwm"},
			{Path: "/dev/nvidiactl", Permissions: "rwm"},
			{Path: "/dev/nvidia-uvm", Permissions: "rwm"},
		},
		Mounts: []runtime.Mount{
			{Source: "/" + libDir + "/libnvidia-ml.so.550.54.15", Target: "/" + libDir + "/libnvidia-ml.so.550.54.15", ReadOnly: true},
			{Source: "/" + libDir + "/libnvidia-ml.so.550.54.15", Target: "/" + libDir + "/libnvidia-ml.so.1", ReadOnly: true},
			{Source: "/" + libDir + "/libcuda.so.550.54.15", Target: "/" + libDir + "/libcuda.so.550.54.15", ReadOnly: true},
			{Source: "/" + libDir + "/libcuda.so.550.54.15", Target: "/" + libDir + "/libcuda.so", ReadOnly: true},
			{Source: "/" + libDir + "/libcuda.so.550.54.15", Target: "/" + libDir + "/libcuda.so.1", ReadOnly: true},
			{Source: "/" + libDir + "/libnvidia-ptxjitcompiler.so.550.54.15", Target: "/" + libDir + "/libnvidia-ptxjitcompiler.so.550.54.15", ReadOnly: true},
			{Source: "/" + libDir + "/libnvidia-ptxjitcompiler.so.550.54.15", Target: "/" + libDir + "/libnvidia-ptxjitcompiler.so.1", ReadOnly: true},
			{Source: "/usr/bin/nvidia-smi", Target: "/usr/bin/nvidia-smi", ReadOnly: true},
		},
	}
	if !reflect.DeepEqual(g, want) {
		t.Fatalf("injection:\n got %+v\nwant %+v", g, want)
	}
}

func TestInjectionHostRuntimeIsEnvOnly(t *testing.T) {
	m, l := leaseOf(t, fstest.MapFS{}, 1)
	g, err := m.InjectionFor(l, HostRuntime)
	if err != nil {
		t.Fatal(err)
	}
	if g.Env["CUDA_VISIBLE_DEVICES"] != l.UUIDs()[0] || g.Env["NVIDIA_VISIBLE_DEVICES"] != l.UUIDs()[0] {
		t.Fatalf("env = %v", g.Env)
	}
	if len(g.Devices)+len(g.Mounts)+len(g.CDIDevices) != 0 {
		t.Fatalf("host runtime got more than env: %+v", g)
	}
}

func TestInjectionCDI(t *testing.T) {
	s := newDGX(t)
	byIndex := `cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
- name: "0"
- name: "1"
- name: "2"
- name: all
containerEdits: {}
`
	byUUID := fmt.Sprintf(`{"cdiVersion":"0.6.0","kind":"nvidia.com/gpu","devices":[{"name":%q},{"name":%q}]}`,
		dev(s, 0).UUID, dev(s, 1).UUID)
	other := "cdiVersion: 0.6.0\nkind: vendor.com/fpga\ndevices:\n- name: \"3\"\n"
	tests := []struct {
		name  string
		files map[string]string
		count int
		want  []string // nil: device nodes
	}{
		{"by index", map[string]string{"etc/cdi/nvidia.yaml": byIndex}, 2, []string{"nvidia.com/gpu=0", "nvidia.com/gpu=1"}},
		{"by uuid in var/run", map[string]string{"var/run/cdi/nvidia.json": byUUID}, 2, []string{"nvidia.com/gpu=" + dev(s, 0).UUID, "nvidia.com/gpu=" + dev(s, 1).UUID}},
		{"spec lacks a leased gpu", map[string]string{"etc/cdi/nvidia.yaml": byIndex}, 4, nil},
		{"other vendor only", map[string]string{"etc/cdi/fpga.yaml": other}, 1, nil},
		{"garbage ignored", map[string]string{"etc/cdi/bad.yaml": "{{{", "etc/cdi/notes.txt": byIndex}, 1, nil},
		{"no cdi dirs", nil, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := hostFS()
			for p, c := range tt.files {
				fsys[p] = &fstest.MapFile{Data: []byte(c), Mode: 0o644}
			}
			m, _ := newManager(t, s, func(o *Options) { o.DevFS = fsys })
			l, err := m.Allocate(context.Background(), Request{Owner: "x", Count: tt.count})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			g, err := m.InjectionFor(l, "containerd")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g.CDIDevices, tt.want) {
				t.Fatalf("CDIDevices = %v, want %v", g.CDIDevices, tt.want)
			}
			if tt.want != nil && (len(g.Devices) != 0 || len(g.Mounts) != 0) {
				t.Fatalf("CDI injection also carries devices or mounts: %+v", g)
			}
			if tt.want == nil && len(g.Devices) != tt.count+2 {
				t.Fatalf("fallback has %d device nodes, want %d", len(g.Devices), tt.count+2)
			}
			if g.Env["NVIDIA_VISIBLE_DEVICES"] != strings.Join(l.UUIDs(), ",") {
				t.Fatalf("env = %v", g.Env)
			}
		})
	}
}

func TestInjectionFailures(t *testing.T) {
	noNode := hostFS()
	delete(noNode, "dev/nvidia2")
	noCtl := hostFS()
	delete(noCtl, "dev/nvidiactl")
	noLibs := hostFS()
	for p := range noLibs {
		if strings.HasPrefix(p, "usr/lib/") {
			delete(noLibs, p)
		}
	}
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"missing gpu node", noNode, "/dev/nvidia2"},
		{"missing nvidiactl", noCtl, "/dev/nvidiactl"},
		{"missing libraries", noLibs, "driver libraries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, l := leaseOf(t, tt.fsys, 1)
			_, err := m.InjectionFor(l, "containerd")
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("InjectionFor = %v, want ErrUnavailable naming %q", err, tt.want)
			}
		})
	}
	t.Run("released lease", func(t *testing.T) {
		m, l := leaseOf(t, hostFS(), 1)
		l.Release()
		if _, err := m.InjectionFor(l, "containerd"); !errors.Is(err, ErrReleased) {
			t.Fatalf("InjectionFor(released) = %v", err)
		}
	})
}

func TestResolve(t *testing.T) {
	fsys := fstest.MapFS{
		"a/real":   {Data: []byte("x")},
		"a/rel":    {Data: []byte("real"), Mode: fs.ModeSymlink},
		"a/abs":    {Data: []byte("/a/rel"), Mode: fs.ModeSymlink},
		"a/loop":   {Data: []byte("loop"), Mode: fs.ModeSymlink},
		"a/escape": {Data: []byte("../../etc/passwd"), Mode: fs.ModeSymlink},
		"a/dir/x":  {Data: []byte("x")},
		"a/todir":  {Data: []byte("dir"), Mode: fs.ModeSymlink},
	}
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"a/real", "a/real", true},
		{"a/rel", "a/real", true},
		{"a/abs", "a/real", true},
		{"a/loop", "", false},
		{"a/escape", "", false},
		{"a/todir", "a/dir", false},
		{"a/missing", "", false},
	}
	for _, tt := range tests {
		got, ok := resolve(fsys, tt.in)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("resolve(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParseCDISpec checks that no input makes the CDI reader panic and that what it accepts
// has a kind.
func FuzzParseCDISpec(f *testing.F) {
	f.Add([]byte("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"0\"\n"))
	f.Add([]byte(`{"cdiVersion":"0.6.0","kind":"nvidia.com/gpu","devices":[{"name":"GPU-1"}]}`))
	f.Add([]byte("devices: 3"))
	f.Add([]byte("{{{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kind, names, err := parseCDISpec(data)
		if err != nil {
			return
		}
		if kind == "" {
			t.Fatal("accepted a spec without kind")
		}
		for _, n := range names {
			if n == "" {
				t.Fatal("empty device name returned")
			}
		}
	})
}
