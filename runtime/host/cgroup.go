package host

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
)

// cgroupParent is the cgroup (in every hierarchy) under which task cgroups are created.
const cgroupParent = "kfp-box"

// cfsPeriod is the CFS period in microseconds used for CPU limits.
const cfsPeriod = 100000

// cgroupLayout says where the cgroup hierarchies are mounted.
type cgroupLayout struct {
	// Root is the cgroup mount root, normally /sys/fs/cgroup.
	Root string
	// V2 is true on a unified (cgroup v2) hierarchy mounted at Root.
	V2 bool
}

// detectCgroups looks at root (normally /sys/fs/cgroup). It returns ok false when neither
// a v2 hierarchy nor a v1 memory controller is mounted there.
func detectCgroups(root string) (cgroupLayout, bool) {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return cgroupLayout{Root: root, V2: true}, true
	}
	if _, err := os.Stat(filepath.Join(root, "memory", "memory.limit_in_bytes")); err == nil {
		return cgroupLayout{Root: root}, true
	}
	return cgroupLayout{Root: root}, false
}

// cgroupFile is one setting written into a task's cgroup.
type cgroupFile struct {
	Dir, Name, Value string
	// Optional settings are skipped when the kernel lacks them (swap accounting).
	Optional bool
}

// taskCgroup is the plan for one task's cgroups: the directories and the settings.
type taskCgroup struct {
	Layout cgroupLayout
	// Dirs are the task's cgroup directories, one per v1 hierarchy or the single v2 one.
	Dirs []string
	// MemoryDir is the directory holding the memory controller's files.
	MemoryDir string
	Files     []cgroupFile
}

// planCgroup computes the cgroup directories and files for task id with limits res. It
// does no I/O, so it is tested on its own. It returns nil when res sets nothing to limit.
func planCgroup(l cgroupLayout, id string, res runtime.Resources) *taskCgroup {
	if res.MemoryLimit <= 0 && res.CPULimit <= 0 && res.CPURequest <= 0 {
		return nil
	}
	cg := &taskCgroup{Layout: l}
	if l.V2 {
		dir := filepath.Join(l.Root, cgroupParent, id)
		cg.Dirs, cg.MemoryDir = []string{dir}, dir
		if res.MemoryLimit > 0 {
			v := strconv.FormatInt(res.MemoryLimit, 10)
			cg.Files = append(cg.Files,
				cgroupFile{Dir: dir, Name: "memory.max", Value: v},
				cgroupFile{Dir: dir, Name: "memory.swap.max", Value: "0", Optional: true})
		}
		if res.CPULimit > 0 {
			cg.Files = append(cg.Files, cgroupFile{Dir: dir, Name: "cpu.max",
				Value: fmt.Sprintf("%d %d", cfsQuota(res.CPULimit), cfsPeriod)})
		}
		if res.CPURequest > 0 {
			// The Kubernetes mapping from shares to weight.
			w := 1 + (cpuShares(res.CPURequest)-2)*9999/262142
			cg.Files = append(cg.Files, cgroupFile{Dir: dir, Name: "cpu.weight", Value: strconv.FormatInt(w, 10)})
		}
		return cg
	}
	mem := filepath.Join(l.Root, "memory", cgroupParent, id)
	cpu := filepath.Join(l.Root, "cpu", cgroupParent, id)
	// The memory cgroup is part of every plan: it is how an OOM kill is told from a SIGKILL.
	cg.Dirs, cg.MemoryDir = []string{mem}, mem
	if res.MemoryLimit > 0 {
		v := strconv.FormatInt(res.MemoryLimit, 10)
		cg.Files = append(cg.Files,
			cgroupFile{Dir: mem, Name: "memory.limit_in_bytes", Value: v},
			cgroupFile{Dir: mem, Name: "memory.memsw.limit_in_bytes", Value: v, Optional: true})
	}
	if res.CPULimit > 0 || res.CPURequest > 0 {
		cg.Dirs = append(cg.Dirs, cpu)
	}
	if res.CPULimit > 0 {
		cg.Files = append(cg.Files,
			cgroupFile{Dir: cpu, Name: "cpu.cfs_period_us", Value: strconv.Itoa(cfsPeriod)},
			cgroupFile{Dir: cpu, Name: "cpu.cfs_quota_us", Value: strconv.FormatInt(cfsQuota(res.CPULimit), 10)})
	}
	if res.CPURequest > 0 {
		cg.Files = append(cg.Files, cgroupFile{Dir: cpu, Name: "cpu.shares", Value: strconv.FormatInt(cpuShares(res.CPURequest), 10)})
	}
	return cg
}

func cfsQuota(cores float64) int64 {
	q := int64(cores * cfsPeriod)
	if q < 1000 {
		q = 1000 // the kernel's minimum
	}
	return q
}

func cpuShares(cores float64) int64 {
	s := int64(cores * 1024)
	if s < 2 {
		s = 2
	}
	if s > 262144 {
		s = 262144
	}
	return s
}

// create makes the directories and writes the settings. On v2 it first enables the
// controllers for the kfp-box parent.
func (cg *taskCgroup) create() error {
	if cg.Layout.V2 {
		parent := filepath.Join(cg.Layout.Root, cgroupParent)
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return err
		}
		// Best effort: a controller the root does not delegate stays off and its file
		// write below fails with a clear error.
		_ = os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory +cpu"), 0)
	}
	for _, d := range cg.Dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
	}
	for _, f := range cg.Files {
		err := os.WriteFile(filepath.Join(f.Dir, f.Name), []byte(f.Value), 0)
		if err != nil && !(f.Optional && errors.Is(err, os.ErrNotExist)) {
			return fmt.Errorf("cgroup: set %s=%s: %w", f.Name, f.Value, err)
		}
	}
	return nil
}

// enterV1 moves the calling thread into the task's v1 cgroups and returns a function that
// moves it back to where it was. The shim calls it on the thread that forks the task, so
// the task is born inside its cgroups and not a single page escapes the limit, while the
// shim's other threads (starting other tasks) stay where they are.
func (cg *taskCgroup) enterV1() (leave func(), err error) {
	orig, err := selfCgroupsV1(cg.Layout.Root)
	if err != nil {
		return nil, err
	}
	var back []string
	leave = func() {
		for _, d := range back {
			_ = os.WriteFile(filepath.Join(d, "tasks"), []byte("0"), 0)
		}
	}
	for _, d := range cg.Dirs {
		ctrl := filepath.Base(filepath.Dir(filepath.Dir(d))) // <root>/<ctrl>/kfp-box/<id>
		from, ok := orig[ctrl]
		if !ok {
			continue
		}
		// "0" in a v1 tasks file is the writing thread.
		if err := os.WriteFile(filepath.Join(d, "tasks"), []byte("0"), 0); err != nil {
			leave()
			return nil, fmt.Errorf("cgroup: enter %s: %w", d, err)
		}
		back = append(back, from)
	}
	return leave, nil
}

// selfCgroupsV1 maps each v1 controller to the directory of the calling thread's cgroup in it.
func selfCgroupsV1(root string) (map[string]string, error) {
	f, err := os.Open("/proc/thread-self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-id:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || parts[1] == "" {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = filepath.Join(root, c, parts[2])
		}
	}
	return out, sc.Err()
}

// oomKilled reports whether the kernel's OOM killer killed a process in the cgroup.
func (cg *taskCgroup) oomKilled() bool {
	name, key := "memory.oom_control", "oom_kill"
	if cg.Layout.V2 {
		name = "memory.events"
	}
	data, err := os.ReadFile(filepath.Join(cg.MemoryDir, name))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n > 0
		}
	}
	return false
}

// killAll sends SIGKILL to every process left in the task's cgroups.
//
// It never kills the calling process: on v1 a shim's thread joins a task's cgroups for a
// moment to fork the task into them, which lists the whole shim in cgroup.procs.
func (cg *taskCgroup) killAll() {
	self := os.Getpid()
	for _, d := range cg.Dirs {
		for _, pid := range cgroupProcs(d) {
			if pid != self {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

func cgroupProcs(dir string) []int {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeCgroupDirs removes cgroup directories, killing what is left in them and retrying
// while the killed processes are still being torn down (EBUSY), for at most a second.
func removeCgroupDirs(dirs []string) error {
	var errs []error
	for _, d := range dirs {
		deadline := time.Now().Add(time.Second)
		for {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, err)
				break
			}
			for _, pid := range cgroupProcs(d) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}
