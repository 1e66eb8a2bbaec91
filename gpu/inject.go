package gpu

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kfp-box/kfp-box/runtime"
)

// HostRuntime is the runtime name whose tasks get only the environment: host processes see
// the GPUs directly and CUDA honours CUDA_VISIBLE_DEVICES.
const HostRuntime = "host"

// cdiKind is the CDI vendor/class of NVIDIA GPUs.
const cdiKind = "nvidia.com/gpu"

// Control device nodes. nvidiactl is required; the UVM nodes exist once nvidia-uvm is loaded.
var (
	requiredCtlNodes = []string{"dev/nvidiactl"}
	optionalCtlNodes = []string{"dev/nvidia-uvm", "dev/nvidia-uvm-tools"}
)

// libDirs are searched in order for the driver's user-space libraries; the first holding
// libnvidia-ml or libcuda is used, so 32-bit copies are never mixed in.
var libDirs = []string{
	"usr/lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu", "usr/lib64",
	"lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu", "lib64", "usr/lib",
}

// driverLibs are the compute and utility libraries of the driver (what CUDA and nvidia-smi need).
var driverLibs = []string{
	"libnvidia-ml.so", "libcuda.so", "libcudadebugger.so", "libnvidia-ptxjitcompiler.so",
	"libnvidia-nvvm.so", "libnvidia-cfg.so", "libnvidia-gpucomp.so", "libnvidia-allocator.so",
}

// binDirs are searched for nvidia-smi, which is mounted at /usr/bin/nvidia-smi in the task.
var binDirs = []string{"usr/bin", "usr/local/bin", "usr/sbin", "bin"}

// InjectionFor builds what the runtime needs to give the task the lease's GPUs.
//
// Every runtime gets NVIDIA_VISIBLE_DEVICES and CUDA_VISIBLE_DEVICES listing the UUIDs (and
// NVIDIA_DRIVER_CAPABILITIES=compute,utility). The host runtime (runtimeName "host") gets
// nothing else. Container runtimes get CDI device names when a CDI spec for nvidia.com/gpu
// in one of the CDI directories names every leased GPU (by UUID or by index); otherwise the
// device nodes /dev/nvidia<minor>, /dev/nvidiactl, /dev/nvidia-uvm and /dev/nvidia-uvm-tools
// (with "rwm" cgroup access), and read-only bind mounts of the driver's libraries and of
// nvidia-smi found through the DevFS. A missing device node or driver library fails with
// ErrUnavailable.
func (m *Manager) InjectionFor(l *Lease, runtimeName string) (*runtime.GPUs, error) {
	if l == nil {
		return nil, nil
	}
	m.mu.Lock()
	if l.released {
		m.mu.Unlock()
		return nil, fmt.Errorf("lease of %q: %w", l.owner, ErrReleased)
	}
	devs := make([]Device, 0, len(l.uuids))
	for _, u := range l.uuids {
		d, ok := m.byUUID[u]
		if !ok {
			m.mu.Unlock()
			return nil, fmt.Errorf("lease of %q: gpu %q: %w", l.owner, u, ErrNotFound)
		}
		devs = append(devs, *d)
	}
	driver := ""
	if len(devs) > 0 {
		driver = devs[0].DriverVersion
	}
	m.mu.Unlock()

	g := &runtime.GPUs{UUIDs: append([]string(nil), l.uuids...), Env: l.Env()}
	if runtimeName == HostRuntime {
		return g, nil
	}
	if names := cdiNames(m.devFS, m.cdiDirs, devs); names != nil {
		g.CDIDevices = names
		return g, nil
	}
	nodes, err := deviceNodes(m.devFS, devs)
	if err != nil {
		return nil, err
	}
	g.Devices = nodes
	mounts, err := driverMounts(m.devFS, driver)
	if err != nil {
		return nil, err
	}
	g.Mounts = mounts
	return g, nil
}

// deviceNodes lists the per-GPU and control device nodes present in fsys.
func deviceNodes(fsys fs.FS, devs []Device) ([]runtime.Device, error) {
	var out []runtime.Device
	add := func(p string, required bool) error {
		if _, err := fs.Stat(fsys, p); err != nil {
			if required {
				return fmt.Errorf("device node /%s: %w", p, ErrUnavailable)
			}
			return nil
		}
		out = append(out, runtime.Device{Path: "/" + p, Permissions: "rwm"})
		return nil
	}
	for _, d := range devs {
		if err := add(fmt.Sprintf("dev/nvidia%d", d.Minor), true); err != nil {
			return nil, err
		}
	}
	for _, p := range requiredCtlNodes {
		if err := add(p, true); err != nil {
			return nil, err
		}
	}
	for _, p := range optionalCtlNodes {
		_ = add(p, false)
	}
	return out, nil
}

// driverMounts finds the driver libraries and nvidia-smi. Each library's real file is mounted
// at its own path and at the path of every symlink to it (libcuda.so.1, libcuda.so), since a
// task's image has none of them.
func driverMounts(fsys fs.FS, driverVersion string) ([]runtime.Mount, error) {
	dir := ""
	for _, d := range libDirs {
		if hasAny(fsys, d, "libnvidia-ml.so.", "libcuda.so.") {
			dir = d
			break
		}
	}
	if dir == "" {
		return nil, fmt.Errorf("NVIDIA driver libraries (libcuda.so, libnvidia-ml.so) not found under /%s: %w",
			strings.Join(libDirs, ", /"), ErrUnavailable)
	}
	var out []runtime.Mount
	for _, base := range driverLibs {
		out = append(out, libMounts(fsys, dir, base, driverVersion)...)
	}
	for _, d := range binDirs {
		p := path.Join(d, "nvidia-smi")
		real, ok := resolve(fsys, p)
		if !ok {
			continue
		}
		out = append(out, runtime.Mount{Source: "/" + real, Target: "/usr/bin/nvidia-smi", ReadOnly: true})
		break
	}
	return out, nil
}

// hasAny reports whether dir holds a file whose name starts with one of the prefixes.
func hasAny(fsys fs.FS, dir string, prefixes ...string) bool {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		for _, p := range prefixes {
			if strings.HasPrefix(e.Name(), p) {
				return true
			}
		}
	}
	return false
}

var versionSuffix = regexp.MustCompile(`^\.[0-9]+(\.[0-9]+)*$`)

// libMounts mounts one library: its real file (preferring base.<driverVersion>) and every
// name in dir that links to it.
func libMounts(fsys fs.FS, dir, base, driverVersion string) []runtime.Mount {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if n == base || strings.HasPrefix(n, base+".") && versionSuffix.MatchString(strings.TrimPrefix(n, base)) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil
	}
	real := ""
	if driverVersion != "" {
		if p, ok := resolve(fsys, path.Join(dir, base+"."+driverVersion)); ok {
			real = p
		}
	}
	if real == "" {
		for _, cand := range []string{base + ".1", base} {
			if p, ok := resolve(fsys, path.Join(dir, cand)); ok {
				real = p
				break
			}
		}
	}
	if real == "" {
		// Only a versioned file without links: take the longest name.
		sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
		p, ok := resolve(fsys, path.Join(dir, names[0]))
		if !ok {
			return nil
		}
		real = p
	}
	out := []runtime.Mount{{Source: "/" + real, Target: "/" + real, ReadOnly: true}}
	sort.Strings(names)
	for _, n := range names {
		p := path.Join(dir, n)
		if p == real {
			continue
		}
		if r, ok := resolve(fsys, p); ok && r == real {
			out = append(out, runtime.Mount{Source: "/" + real, Target: "/" + p, ReadOnly: true})
		}
	}
	return out
}

// resolve follows symlinks (at most 16) from p to a regular file and returns its path.
func resolve(fsys fs.FS, p string) (string, bool) {
	for range 16 {
		fi, err := fs.Lstat(fsys, p)
		if err != nil {
			return "", false
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, fi.Mode().IsRegular()
		}
		target, err := fs.ReadLink(fsys, p)
		if err != nil {
			return "", false
		}
		if path.IsAbs(target) {
			p = path.Clean(strings.TrimPrefix(target, "/"))
		} else {
			p = path.Join(path.Dir(p), target)
		}
		if p == "." || strings.HasPrefix(p, "../") || p == ".." {
			return "", false
		}
	}
	return "", false
}

// cdiSpec is the part of a CDI spec file kfp-box reads.
type cdiSpec struct {
	CDIVersion string `json:"cdiVersion"`
	Kind       string `json:"kind"`
	Devices    []struct {
		Name string `json:"name"`
	} `json:"devices"`
}

var errNotCDI = errors.New("not a CDI spec")

// parseCDISpec reads a CDI spec in YAML or JSON and returns its kind and device names.
func parseCDISpec(data []byte) (kind string, names []string, err error) {
	var s cdiSpec
	if err := yaml.Unmarshal(data, &s); err != nil {
		return "", nil, fmt.Errorf("cdi spec: %w", err)
	}
	if s.CDIVersion == "" || s.Kind == "" {
		return "", nil, errNotCDI
	}
	for _, d := range s.Devices {
		if d.Name != "" {
			names = append(names, d.Name)
		}
	}
	return s.Kind, names, nil
}

// cdiNames returns the qualified CDI names of devs when the CDI specs for nvidia.com/gpu in
// dirs name each of them, by UUID or else by index; nil when they do not.
func cdiNames(fsys fs.FS, dirs []string, devs []Device) []string {
	known := map[string]bool{}
	for _, dir := range dirs {
		d := strings.TrimPrefix(path.Clean(dir), "/")
		entries, err := fs.ReadDir(fsys, d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			ext := path.Ext(e.Name())
			if e.IsDir() || ext != ".yaml" && ext != ".yml" && ext != ".json" {
				continue
			}
			data, err := fs.ReadFile(fsys, path.Join(d, e.Name()))
			if err != nil {
				continue
			}
			kind, names, err := parseCDISpec(data)
			if err != nil || kind != cdiKind {
				continue
			}
			for _, n := range names {
				known[n] = true
			}
		}
	}
	if len(known) == 0 {
		return nil
	}
	out := make([]string, 0, len(devs))
	for _, d := range devs {
		switch idx := strconv.Itoa(d.Index); {
		case known[d.UUID]:
			out = append(out, cdiKind+"="+d.UUID)
		case known[idx]:
			out = append(out, cdiKind+"="+idx)
		default:
			return nil
		}
	}
	return out
}
