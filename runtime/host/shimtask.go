package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kfp-box/kfp-box/runtime"
)

// startedTask is what the start phase hands to the supervision phase.
type startedTask struct {
	failure   string // the answer to Start when cmd is nil
	dir       string
	diag      *diagLog
	spec      runtime.TaskSpec
	dirfd     int
	logf      *os.File
	cmd       *exec.Cmd
	cg        *taskCgroup
	outR      *os.File
	errR      *os.File
	startedAt time.Time
}

// diagLog is a task's shim.log, the shim's diagnostics about that task, opened on the first
// line written: through the task directory's descriptor once there is one, because the
// thread that starts the task may have hidden the data directory from its own view.
type diagLog struct {
	path  string
	dirfd int // the task directory, 0 until opened
	mu    sync.Mutex
	f     *os.File
}

func (d *diagLog) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		var f *os.File
		if d.dirfd > 0 {
			fd, err := unix.Openat(d.dirfd, shimLog, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND|unix.O_CLOEXEC, 0o600)
			if err != nil {
				return len(p), nil // diagnostics are best effort
			}
			f = os.NewFile(uintptr(fd), d.path)
		} else {
			var err error
			if f, err = os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
				return len(p), nil
			}
		}
		d.f = f
	}
	return d.f.Write(p)
}

// Close closes the file if it was opened.
func (d *diagLog) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

// selfStartTime is the shim's own start time, read once.
var selfStartTime = sync.OnceValue(func() uint64 {
	st, _ := procStartTime(os.Getpid())
	return st
})

// hostCgroups is the machine's cgroup layout, detected once per shim.
var hostCgroups = sync.OnceValues(func() (cgroupLayout, bool) { return detectCgroups("/sys/fs/cgroup") })

// devNull is every task's stdin, opened once per shim (nil, and so a fresh /dev/null per
// task, if that fails).
var devNull = sync.OnceValue(func() *os.File {
	f, _ := os.Open(os.DevNull)
	return f
})

// startTask prepares everything for the task in dir and starts it, then reports "ok" on
// status. On failure it returns no cmd and the answer in failure, for the caller to send
// once it has forgotten the task. It runs on a locked thread (in the task's mount
// namespace when ns). A request in kills makes the task's supervision kill it.
func startTask(status io.Writer, dir string, kills chan struct{}, ns bool, nsErr error) *startedTask {
	t := &startedTask{dir: dir, diag: &diagLog{path: filepath.Join(dir, shimLog)}}
	report := func(kind string, err error) *startedTask {
		fmt.Fprintf(t.diag, "start: %v\n", err)
		t.diag.Close()
		failure := fmt.Sprintf("%s: %s\n", kind, strings.ReplaceAll(err.Error(), "\n", " "))
		if t.dirfd > 0 {
			unix.Close(t.dirfd)
		}
		if t.logf != nil {
			t.logf.Close()
		}
		return &startedTask{failure: failure}
	}
	fail := func(err error) *startedTask { return report("error", err) }
	if nsErr != nil {
		return fail(nsErr)
	}
	if err := readJSON(dir, specFile, &t.spec); err != nil {
		return fail(err)
	}
	spec := &t.spec
	var err error
	if t.dirfd, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return fail(err)
	}
	t.diag.mu.Lock()
	t.diag.dirfd = t.dirfd
	t.diag.mu.Unlock()
	// The log is opened before the mounts, which could hide its directory.
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o755); err != nil {
		return fail(fmt.Errorf("log dir: %w", err))
	}
	if t.logf, err = os.OpenFile(spec.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
		return fail(fmt.Errorf("log: %w", err))
	}
	// Taken before the task runs: on a disk that is full by the time the task ends, its
	// exit is still recorded rather than lost (the task would be reported as unknown).
	if err := reserveFile(t.dirfd, exitReserve, exitReserveSize); err != nil {
		return fail(err)
	}

	root := ""
	if ns {
		m := &mounter{scratch: filepath.Join(dir, mntDir), log: t.diag}
		if err := m.setup(spec.Mounts, spec.WorkDir); err != nil {
			return fail(err)
		}
		if err := m.hide(spec.Hide, spec.Mounts); err != nil {
			return fail(err)
		}
		root = m.root
	}
	env := taskEnv(*spec)
	path, err := lookPath(root, spec.Args[0], envValue(env, "PATH"))
	if err != nil {
		return report("invalid", err) // Start wraps it with runtime.ErrInvalid
	}

	// Limits need cgroups, which need root; without root a task runs unlimited, as the
	// host runtime's degraded mode (see Available) promises nothing more.
	if layout, ok := hostCgroups(); ok && os.Geteuid() == 0 {
		t.cg = planCgroup(layout, spec.ID, spec.Resources)
	} else if spec.Resources != (runtime.Resources{}) {
		fmt.Fprintln(t.diag, "no cgroups (not root or none mounted): resource limits not applied")
	}
	if t.cg != nil {
		if err := t.cg.create(); err != nil {
			// A read-only or delegated-away cgroup tree: run, like the rest of the host
			// runtime's degraded modes, without limits rather than not at all.
			fmt.Fprintf(t.diag, "resource limits not applied: %v\n", err)
			_ = removeCgroupDirs(t.cg.Dirs)
			t.cg = nil
		}
	}
	cg := t.cg
	dropCgroup := func() {
		if cg != nil {
			_ = removeCgroupDirs(cg.Dirs)
		}
	}

	var outW, errW *os.File
	if t.outR, outW, err = os.Pipe(); err != nil {
		dropCgroup()
		return fail(err)
	}
	if t.errR, errW, err = os.Pipe(); err != nil {
		t.outR.Close()
		outW.Close()
		dropCgroup()
		return fail(err)
	}
	closeReaders := func() {
		t.outR.Close()
		t.errR.Close()
	}
	workDir := spec.WorkDir
	if workDir == "" {
		workDir = "/"
	}
	cmd := &exec.Cmd{
		Path:   path,
		Args:   spec.Args,
		Env:    env,
		Dir:    workDir,
		Stdout: outW,
		Stderr: errW,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:    true,
			Chroot:     root,
			Credential: credential(spec.User, spec.Group),
		},
	}
	if null := devNull(); null != nil {
		cmd.Stdin = null
	}
	leave := func() {}
	if cg != nil && cg.Layout.V2 {
		cgfd, err := unix.Open(cg.Dirs[0], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			outW.Close()
			errW.Close()
			closeReaders()
			dropCgroup()
			return fail(err)
		}
		defer unix.Close(cgfd)
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cgfd
	} else if cg != nil {
		if leave, err = cg.enterV1(); err != nil {
			outW.Close()
			errW.Close()
			closeReaders()
			dropCgroup()
			return fail(err)
		}
	}
	t.startedAt = time.Now()
	err = cmd.Start() // on this thread: the task gets its mount namespace
	leave()
	outW.Close()
	errW.Close()
	if err != nil {
		closeReaders()
		dropCgroup()
		return fail(fmt.Errorf("start %q: %w", spec.Args[0], err))
	}
	pid := cmd.Process.Pid
	st := shimState{ShimPID: os.Getpid(), ShimStartTime: selfStartTime(), PID: pid, StartedAt: t.startedAt}
	st.PIDStartTime, _ = procStartTime(pid)
	if cg != nil {
		st.Cgroups = cg.Dirs
	}
	if err := writeJSONAt(t.dirfd, stateFile, st); err != nil {
		signalGroup(pid, syscall.SIGKILL)
		_ = cmd.Wait()
		closeReaders()
		dropCgroup()
		return fail(err)
	}
	if err := unix.Fstatat(t.dirfd, killFile, new(unix.Stat_t), 0); err == nil {
		// Killed while starting (Start gave up before its request could be delivered).
		select {
		case kills <- struct{}{}:
		default:
		}
	}
	_, _ = io.WriteString(status, "ok\n")
	t.cmd = cmd
	return t
}

// superviseTask copies the task's output into its log, carries out Kill requests, and
// records the exit.
func superviseTask(t *startedTask, kills <-chan struct{}) {
	defer unix.Close(t.dirfd)
	defer t.diag.Close() // before the descriptor it may open the file through
	defer t.logf.Close()
	pid, cg := t.cmd.Process.Pid, t.cg
	lw := newLogWriter(t.logf)
	var copiers sync.WaitGroup
	for _, s := range []struct {
		r    *os.File
		name string
	}{{t.outR, "stdout"}, {t.errR, "stderr"}} {
		copiers.Add(1)
		go func() {
			defer copiers.Done()
			if err := lw.copyStream(s.r, s.name); err != nil {
				fmt.Fprintf(t.diag, "copy %s: %v\n", s.name, err)
			}
		}()
	}
	done := make(chan struct{})
	go killLoop(kills, t.dirfd, pid, done)

	waitErr := t.cmd.Wait()
	exitedAt := time.Now()
	close(done)
	// The task is over: like a container, nothing it started outlives it.
	signalGroup(pid, syscall.SIGKILL)
	if cg != nil {
		cg.killAll()
	}
	copied := make(chan struct{})
	go func() { copiers.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
		// A descendant that left the process group still holds the pipes.
		t.outR.Close()
		t.errR.Close()
		<-copied
	}

	exit := runtime.ExitStatus{Code: -1, StartedAt: t.startedAt, ExitedAt: exitedAt}
	if t.cmd.ProcessState != nil {
		exit.Code = exitCode(t.cmd.ProcessState)
	} else {
		exit.Message = fmt.Sprintf("wait: %v", waitErr)
	}
	if cg != nil {
		exit.OOMKilled = cg.oomKilled()
		if err := removeCgroupDirs(cg.Dirs); err != nil {
			fmt.Fprintf(t.diag, "remove cgroups: %v\n", err)
		}
	}
	if exit.OOMKilled {
		exit.Message = fmt.Sprintf("OOM killed (memory limit %d bytes)", t.spec.Resources.MemoryLimit)
	}
	if err := lw.writeErr(); err != nil {
		// The task ran on; its output from the first failed write on is lost.
		fmt.Fprintf(t.diag, "log: %v\n", err)
		exit.Message = strings.TrimPrefix(exit.Message+"; ", "; ") + fmt.Sprintf("task log incomplete: %v", err)
	}
	data, err := json.Marshal(exit)
	if err == nil {
		err = writeReservedAt(t.dirfd, exitReserve, exitFile, data)
	}
	if err != nil {
		fmt.Fprintf(t.diag, "record exit: %v\n", err)
	}
}

// killLoop turns each Kill request into SIGTERM for the task's process group and, after
// the grace period Kill wrote into kill.json, SIGKILL (at once without a grace period).
func killLoop(kills <-chan struct{}, dirfd, pid int, done <-chan struct{}) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-done:
			return
		case <-kills:
		}
		grace := readGrace(dirfd)
		switch {
		case grace <= 0: // no grace: SIGKILL alone, as the containerd backend does
			signalGroup(pid, syscall.SIGKILL)
		case timer == nil:
			signalGroup(pid, syscall.SIGTERM)
			timer = time.AfterFunc(grace, func() { signalGroup(pid, syscall.SIGKILL) })
		default:
			signalGroup(pid, syscall.SIGTERM)
		}
	}
}

// readGrace reads kill.json; without one the grace period is zero.
func readGrace(dirfd int) time.Duration {
	fd, err := unix.Openat(dirfd, killFile, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	f := os.NewFile(uintptr(fd), killFile)
	defer f.Close()
	var req killRequest
	data, err := io.ReadAll(f)
	if err == nil {
		err = json.Unmarshal(data, &req)
	}
	if err != nil {
		return 0
	}
	return req.Grace
}

// signalGroup signals the task's process group, or the task alone if it left its group.
func signalGroup(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pid, sig)
	}
}

// exitCode follows container conventions: 128+n for a process killed by signal n.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// taskEnv is the task's environment: defaults a container would have, the spec's Env, then
// the GPUs' Env. Later entries win (os/exec keeps the last of duplicate keys).
func taskEnv(spec runtime.TaskSpec) []string {
	home := "/root"
	if spec.User != nil && *spec.User != 0 {
		home = "/"
	}
	env := []string{"PATH=" + defaultPath, "HOME=" + home}
	env = append(env, spec.Env...)
	if spec.GPUs != nil {
		keys := make([]string, 0, len(spec.GPUs.Env))
		for k := range spec.GPUs.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = append(env, k+"="+spec.GPUs.Env[k])
		}
	}
	return env
}

// envValue returns the last value of key in env.
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// lookPath resolves name like a shell would in the task's PATH, looking at the files under
// root (the task's future "/"). It returns the path as the task will see it.
func lookPath(root, name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(root + p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

// credential returns the user and group to run as, nil to stay root. Supplementary groups
// are cleared.
func credential(user, group *int64) *syscall.Credential {
	if user == nil && group == nil {
		return nil
	}
	c := &syscall.Credential{Groups: []uint32{}}
	if user != nil {
		c.Uid = uint32(*user)
	}
	if group != nil {
		c.Gid = uint32(*group)
	}
	return c
}
