package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cdi"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kfp-box/kfp-box/runtime"
)

// initTarget is where the init binary is bind-mounted inside every task.
const initTarget = "/.kfp-box/init"

// cpuPeriod is the CFS period used for CPU limits (100ms, like Kubernetes).
const cpuPeriod = 100_000

// specOpts builds the OCI spec of a task: the image's config, then the TaskSpec's argv,
// env, working directory, mounts, user, resources and devices; the host network; no new
// privileges; and the init binary as PID 1.
func (r *Runtime) specOpts(spec runtime.TaskSpec, img client.Image) ([]oci.SpecOpts, error) {
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		// Host network: tasks reach the box's S3 and API on 127.0.0.1 (docs/adr/004).
		oci.WithHostNamespace(specs.NetworkNamespace),
		oci.WithHostHostsFile,
		oci.WithHostResolvconf,
		oci.WithNoNewPrivileges,
		oci.WithHostname(hostname(spec.ID)),
		withCgroupMount,
	}
	if len(spec.Args) > 0 {
		opts = append(opts, oci.WithProcessArgs(spec.Args...))
	}
	env := append([]string(nil), spec.Env...)
	if spec.GPUs != nil {
		for k, v := range spec.GPUs.Env {
			env = append(env, k+"="+v)
		}
	}
	if len(env) > 0 {
		opts = append(opts, oci.WithEnv(env))
	}
	if spec.WorkDir != "" {
		opts = append(opts, oci.WithProcessCwd(spec.WorkDir))
	}
	mounts, err := bindMounts(spec)
	if err != nil {
		return nil, err
	}
	if len(mounts) > 0 {
		opts = append(opts, oci.WithMounts(mounts))
	}
	switch {
	case spec.User != nil && spec.Group != nil:
		opts = append(opts, oci.WithUIDGID(uint32(*spec.User), uint32(*spec.Group)))
	case spec.User != nil:
		opts = append(opts, oci.WithUserID(uint32(*spec.User)))
	case spec.Group != nil:
		gid := uint32(*spec.Group)
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			s.Process.User.GID = gid
			return nil
		})
	}
	opts = append(opts, withResources(spec.Resources))
	if spec.Resources.ShmSize > 0 {
		opts = append(opts, oci.WithDevShmSize((spec.Resources.ShmSize+1023)/1024))
	}
	if g := spec.GPUs; g != nil {
		if len(g.CDIDevices) > 0 {
			opts = append(opts, cdi.WithCDIDevices(g.CDIDevices...))
		} else {
			for _, d := range g.Devices {
				opts = append(opts, withDevice(d))
			}
		}
	}
	if r.init != "" {
		opts = append(opts, withInit(r.init))
	}
	return opts, nil
}

// withCgroupMount mounts the task's own cgroups read-only at /sys/fs/cgroup, as Kubernetes
// pods have them: runtimes and libraries (JVM, Go, Python's os.process_cpu_count users,
// PyTorch) size thread pools and caches from the limits they find there.
func withCgroupMount(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	for _, m := range s.Mounts {
		if m.Destination == "/sys/fs/cgroup" {
			return nil
		}
	}
	s.Mounts = append(s.Mounts, specs.Mount{
		Destination: "/sys/fs/cgroup",
		Type:        "cgroup",
		Source:      "cgroup",
		Options:     []string{"ro", "nosuid", "noexec", "nodev"},
	})
	return nil
}

// hostname is the task's host name: its id, cut to the 63 characters a label allows.
func hostname(id string) string {
	if len(id) > 63 {
		return id[:63]
	}
	return id
}

// bindMounts turns the TaskSpec's mounts (and the GPU driver mounts) into OCI bind mounts.
// A missing read-write source directory is created (a named volume's first use); a missing
// read-only source is an error.
func bindMounts(spec runtime.TaskSpec) ([]specs.Mount, error) {
	all := append([]runtime.Mount(nil), spec.Mounts...)
	if spec.GPUs != nil {
		for _, m := range spec.GPUs.Mounts {
			m.ReadOnly = true
			all = append(all, m)
		}
	}
	out := make([]specs.Mount, 0, len(all))
	for _, m := range all {
		if _, err := os.Stat(m.Source); errors.Is(err, os.ErrNotExist) {
			if m.ReadOnly {
				return nil, fmt.Errorf("task %q: mount source %q does not exist: %w", spec.ID, m.Source, runtime.ErrInvalid)
			}
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return nil, fmt.Errorf("task %q: mount source: %w", spec.ID, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("task %q: mount source: %w", spec.ID, err)
		}
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		out = append(out, specs.Mount{
			Destination: filepath.Clean(m.Target),
			Type:        "bind",
			Source:      m.Source,
			Options:     []string{"rbind", "rprivate", mode},
		})
	}
	return out, nil
}

// withResources sets CPU quota and shares and the memory limit and reservation. Swap is
// capped at the memory limit when the kernel accounts it, so a limit cannot leak to swap.
func withResources(res runtime.Resources) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		lr := s.Linux.Resources
		if res.CPULimit > 0 || res.CPURequest > 0 {
			if lr.CPU == nil {
				lr.CPU = &specs.LinuxCPU{}
			}
			if res.CPULimit > 0 {
				quota := int64(res.CPULimit * cpuPeriod)
				quota = max(quota, 1000) // the kernel's minimum is 1ms
				period := uint64(cpuPeriod)
				lr.CPU.Quota, lr.CPU.Period = &quota, &period
			}
			if res.CPURequest > 0 {
				shares := uint64(max(res.CPURequest*1024, 2))
				lr.CPU.Shares = &shares
			}
		}
		if res.MemoryLimit > 0 || res.MemoryRequest > 0 {
			if lr.Memory == nil {
				lr.Memory = &specs.LinuxMemory{}
			}
			if res.MemoryLimit > 0 {
				limit := res.MemoryLimit
				lr.Memory.Limit = &limit
				if swapAccounted() {
					swap := limit
					lr.Memory.Swap = &swap
				}
			}
			if res.MemoryRequest > 0 {
				req := res.MemoryRequest
				if res.MemoryLimit > 0 && req > res.MemoryLimit {
					req = res.MemoryLimit
				}
				lr.Memory.Reservation = &req
			}
		}
		return nil
	}
}

// swapAccounted reports whether the memory cgroup accounts swap, so that a swap limit can
// be set (cgroup v1 with swapaccount, or cgroup v2).
func swapAccounted() bool {
	for _, p := range []string{"/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", "/sys/fs/cgroup/memory.swap.max", "/sys/fs/cgroup/init.scope/memory.swap.max"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// withDevice adds a host device node (a GPU without a CDI spec).
func withDevice(d runtime.Device) oci.SpecOpts {
	return func(ctx context.Context, c oci.Client, ctr *containers.Container, s *oci.Spec) error {
		perms := d.Permissions
		if perms == "" {
			perms = "rwm"
		}
		if err := oci.WithLinuxDevice(d.Path, perms)(ctx, c, ctr, s); err != nil {
			return fmt.Errorf("device %q: %w", d.Path, err)
		}
		if d.ContainerPath != "" && d.ContainerPath != d.Path {
			devs := s.Linux.Devices
			devs[len(devs)-1].Path = d.ContainerPath
		}
		return nil
	}
}

// withInit bind-mounts the static init read-only and makes it PID 1 in front of the argv.
// It runs last, after the image config and the TaskSpec set the argv.
func withInit(path string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil || len(s.Process.Args) == 0 {
			return fmt.Errorf("no command: the task has no args and the image no entrypoint: %w", runtime.ErrInvalid)
		}
		s.Mounts = append(s.Mounts, specs.Mount{
			Destination: initTarget,
			Type:        "bind",
			Source:      path,
			Options:     []string{"rbind", "rprivate", "ro"},
		})
		s.Process.Args = append([]string{initTarget, "--"}, s.Process.Args...)
		return nil
	}
}
