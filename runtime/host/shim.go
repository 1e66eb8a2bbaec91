package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kfp-box/kfp-box/runtime"
)

// The shim's interface with Start: an environment variable and two pipes.
const (
	// ShimEnv marks a process as a host-runtime shim ("1"); ShimMain looks for it.
	ShimEnv = "KFPBOX_HOST_SHIM"
	// shimNSEnv is "1" when the shim must give the task its own mount namespace.
	shimNSEnv = "KFPBOX_HOST_SHIM_NS"
	// shimSpareEnv is a spare's shimMode: "warm" or "idle" (warm, at low priority).
	shimSpareEnv = "KFPBOX_HOST_SHIM_SPARE"
	// ctrlFD is where the shim reads its task's state directory, one line. A shim is
	// started before it has a task (a spare, to keep exec off Start's path); EOF before a
	// line means it will not get one and exits.
	ctrlFD = 3
	// statusFD is where the shim writes "ready\n" once it waits for its task, then "ok\n"
	// once the task runs, or "error: ...\n" or "invalid: ...\n", then "exited\n" once the
	// exit is recorded. That line, not the pipe's EOF, tells Start's process the task is
	// over: the EOF comes only after the mount namespace is torn down (tens of
	// milliseconds on some kernels).
	statusFD = 4
)

// defaultPath is the PATH a task gets when its spec sets none, as in a container.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ShimMain runs the shim when this process was started as one and then exits; otherwise it
// returns false at once. Call it first thing in main (cmd/kfp-box) and in TestMain of any
// test binary that starts host tasks, because the host runtime re-executes its own binary
// as the shim.
func ShimMain() (handled bool) {
	if os.Getenv(ShimEnv) == "" {
		return false
	}
	os.Exit(runShim())
	return true
}

// runShim is the whole life of a shim: wait for a task, set up, start the task, report,
// copy its output into the log, record its exit.
//
// Everything up to the task's start runs as straight-line blocking system calls on one
// locked thread, with no hand-offs between goroutines: that path is the task's start
// latency. With mount namespaces, that thread is also the only one that enters the task's
// namespace; its goroutine ends without unlocking once the task is forked, which ends the
// thread, so the rest of the shim stays in the host's namespace.
func runShim() int {
	// The task must not inherit the pipes: the status pipe's EOF means "shim gone".
	syscall.CloseOnExec(ctrlFD)
	syscall.CloseOnExec(statusFD)
	closeInherited()
	status := os.NewFile(statusFD, "status")
	// Signals: SIGTERM is Kill's request; the rest must not end the shim.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM)
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	// A spare warms up and waits at low priority, so that making it never slows the tasks
	// that run meanwhile. Only root may raise the priority back, so only root lowers it.
	// A shim made for a task that waits now does neither.
	mode := shimMode(os.Getenv(shimSpareEnv))
	spare := mode != shimDirect
	spareNice := mode == shimIdleSpare && os.Geteuid() == 0
	if spareNice {
		setNice(10)
	}
	if spare {
		warmUp()
	}

	ns := os.Getenv(shimNSEnv) == "1"
	result := make(chan *startedTask, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: see above
		var nsErr error
		if ns {
			// Made now, while the shim is a spare, off the start path.
			nsErr = ownMountNamespace()
		}
		_, _ = io.WriteString(status, "ready\n") // a spare is handed out only once ready
		result <- startTask(status, sigs, ns, nsErr, spareNice)
	}()
	t := <-result
	if t.cmd == nil {
		return t.code
	}
	return superviseTask(status, sigs, t)
}

// startedTask is what the start phase hands to the supervision phase.
type startedTask struct {
	// code is the shim's exit code when no task was started (cmd nil).
	code      int
	dir       string
	spec      runtime.TaskSpec
	dirfd     int
	logf      *os.File
	cmd       *exec.Cmd
	cg        *taskCgroup
	outR      *os.File
	errR      *os.File
	startedAt time.Time
}

// ownMountNamespace gives the calling thread a mount namespace of its own, with "/" a
// recursive slave of the host's: host mounts and unmounts still reach the task, its mounts
// never reach the host (runc's default too).
func ownMountNamespace() error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	return nil
}

// closeInherited closes descriptors above statusFD that the shim inherited without
// close-on-exec (kfp-box started with extra descriptors, by systemd socket activation or a
// test harness): held by a long-lived shim and its task, they would keep other programs'
// pipes open. The Go runtime's own descriptors are all close-on-exec.
func closeInherited() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= statusFD {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			_ = unix.Close(fd)
		}
	}
}

// setNice sets the nice value of every thread of the shim (on Linux it is per thread;
// threads made later inherit it from the thread that makes them).
func setNice(n int) {
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			_ = unix.Setpriority(unix.PRIO_PROCESS, tid, n)
		}
	}
}

// readCtrl reads the task directory from the control pipe with blocking reads, so the
// waiting thread itself is woken by the kernel. It returns "" at EOF.
func readCtrl() string {
	_ = syscall.SetNonblock(ctrlFD, false) // this end belongs to the shim alone
	defer syscall.Close(ctrlFD)
	var line []byte
	buf := make([]byte, 512)
	for {
		n, err := syscall.Read(ctrlFD, buf)
		if n > 0 {
			line = append(line, buf[:n]...)
			if i := bytes.IndexByte(line, '\n'); i >= 0 {
				return string(line[:i])
			}
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if n <= 0 || err != nil {
			return ""
		}
	}
}

// startTask waits for the task's directory, prepares everything and starts the task. It
// runs on a locked thread (in the task's mount namespace when ns).
func startTask(status *os.File, sigs chan os.Signal, ns bool, nsErr error, reNice bool) *startedTask {
	dir := readCtrl()
	if dir == "" {
		return &startedTask{code: 0} // a spare that was never used
	}
	if reNice {
		setNice(0) // the task inherits this thread's priority
	}
	// A SIGTERM that reached the idle spare was not a Kill of this task.
	for len(sigs) > 0 {
		<-sigs
	}
	if f, err := os.OpenFile(filepath.Join(dir, shimLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
		_ = unix.Dup3(int(f.Fd()), 2, 0)
		f.Close()
	}
	report := func(kind string, err error) *startedTask {
		fmt.Fprintf(os.Stderr, "shim %s: %v\n", dir, err)
		fmt.Fprintf(status, "%s: %s\n", kind, strings.ReplaceAll(err.Error(), "\n", " "))
		return &startedTask{code: 1}
	}
	fail := func(err error) *startedTask { return report("error", err) }
	if nsErr != nil {
		return fail(nsErr)
	}
	t := &startedTask{dir: dir}
	if err := readJSON(dir, specFile, &t.spec); err != nil {
		return fail(err)
	}
	spec := &t.spec
	var err error
	if t.dirfd, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return fail(err)
	}
	// The log is opened before the mounts, which could hide its directory.
	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o755); err != nil {
		return fail(fmt.Errorf("log dir: %w", err))
	}
	if t.logf, err = os.OpenFile(spec.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
		return fail(fmt.Errorf("log: %w", err))
	}

	root := ""
	if ns {
		m := &mounter{scratch: filepath.Join(dir, mntDir), log: os.Stderr}
		if err := m.setup(spec.Mounts, spec.WorkDir); err != nil {
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
	if layout, ok := detectCgroups("/sys/fs/cgroup"); ok && os.Geteuid() == 0 {
		t.cg = planCgroup(layout, spec.ID, spec.Resources)
	} else if spec.Resources != (runtime.Resources{}) {
		fmt.Fprintf(os.Stderr, "shim %s: no cgroups (not root or none mounted): resource limits not applied\n", dir)
	}
	if t.cg != nil {
		if err := t.cg.create(); err != nil {
			// A read-only or delegated-away cgroup tree: run, like the rest of the host
			// runtime's degraded modes, without limits rather than not at all.
			fmt.Fprintf(os.Stderr, "shim %s: resource limits not applied: %v\n", dir, err)
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
		dropCgroup()
		return fail(err)
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
	leave := func() {}
	if cg != nil && cg.Layout.V2 {
		cgfd, err := unix.Open(cg.Dirs[0], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			dropCgroup()
			return fail(err)
		}
		defer unix.Close(cgfd)
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cgfd
	} else if cg != nil {
		if leave, err = cg.enterV1(); err != nil {
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
		dropCgroup()
		return fail(fmt.Errorf("start %q: %w", spec.Args[0], err))
	}
	pid := cmd.Process.Pid
	st := shimState{ShimPID: os.Getpid(), PID: pid, StartedAt: t.startedAt}
	st.ShimStartTime, _ = procStartTime(st.ShimPID)
	st.PIDStartTime, _ = procStartTime(pid)
	if cg != nil {
		st.Cgroups = cg.Dirs
	}
	if err := writeJSONAt(t.dirfd, stateFile, st); err != nil {
		signalGroup(pid, syscall.SIGKILL)
		_ = cmd.Wait()
		dropCgroup()
		return fail(err)
	}
	if err := unix.Fstatat(t.dirfd, killFile, new(unix.Stat_t), 0); err == nil {
		// Killed while starting (Start gave up): its signal may have been drained above.
		select {
		case sigs <- syscall.SIGTERM:
		default:
		}
	}
	_, _ = io.WriteString(status, "ok\n")
	t.cmd = cmd
	return t
}

// superviseTask copies the task's output into its log, forwards Kill requests, and
// records the exit.
func superviseTask(status *os.File, sigs chan os.Signal, t *startedTask) int {
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
				fmt.Fprintf(os.Stderr, "shim %s: copy %s: %v\n", t.dir, s.name, err)
			}
		}()
	}
	done := make(chan struct{})
	go killLoop(sigs, t.dirfd, pid, done)

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
			fmt.Fprintf(os.Stderr, "shim %s: remove cgroups: %v\n", t.dir, err)
		}
	}
	if exit.OOMKilled {
		exit.Message = fmt.Sprintf("OOM killed (memory limit %d bytes)", t.spec.Resources.MemoryLimit)
	}
	if err := writeJSONAt(t.dirfd, exitFile, exit); err != nil {
		fmt.Fprintf(os.Stderr, "shim %s: record exit: %v\n", t.dir, err)
		return 1
	}
	// Also keeps status referenced (and so open) until here.
	_, _ = io.WriteString(status, "exited\n")
	return 0
}

// warmSpec exercises every field of TaskSpec, so warmUp fills encoding/json's caches.
var warmSpec = []byte(`{"id":"w","image":"i","args":["a"],"env":["A=1"],"work_dir":"/",
"mounts":[{"source":"/s","target":"/t","read_only":true}],
"resources":{"cpu_limit":1,"memory_limit":1},"gpus":{"uuids":["u"],"env":{"A":"1"}},
"user":1,"group":1,"log_path":"/l","labels":{"a":"b"}}`)

// warmUp does, while the shim is a spare waiting for its task, one-time work that would
// otherwise be paid on the task's start.
func warmUp() {
	// The first os.StartProcess checks, once per process, that pidfds work, and that check
	// forks a child: do it now rather than on the task's start.
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Release()
	}
	var spec runtime.TaskSpec
	_ = json.Unmarshal(warmSpec, &spec)
	_, _ = json.Marshal(shimState{})
	_, _ = json.Marshal(runtime.ExitStatus{})
	var kr killRequest
	_ = json.Unmarshal([]byte(`{"grace_ns":1}`), &kr)
}

// killLoop turns each SIGTERM the shim receives into SIGTERM for the task's process
// group and, after the grace period Kill wrote into kill.json, SIGKILL.
func killLoop(sigs <-chan os.Signal, dirfd, pid int, done <-chan struct{}) {
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
		case <-sigs:
		}
		grace := readGrace(dirfd)
		signalGroup(pid, syscall.SIGTERM)
		switch {
		case grace <= 0:
			signalGroup(pid, syscall.SIGKILL)
		case timer == nil:
			timer = time.AfterFunc(grace, func() { signalGroup(pid, syscall.SIGKILL) })
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
