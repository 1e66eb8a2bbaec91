package host

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The shim's interface with the Runtime that spawns it: environment variables and one pipe.
const (
	// ShimEnv marks a process as the host-runtime shim ("1"); ShimMain looks for it.
	ShimEnv = "KFPBOX_HOST_SHIM"
	// shimNSEnv is "1" when the shim must give each task its own mount namespace.
	shimNSEnv = "KFPBOX_HOST_SHIM_NS"
	// shimDirEnv is the shim's directory ($DATA/host/shim).
	shimDirEnv = "KFPBOX_HOST_SHIM_DIR"
	// shimIdentEnv identifies the binary the shim runs (see binaryIdent): a Runtime only
	// uses a shim running its own binary.
	shimIdentEnv = "KFPBOX_HOST_SHIM_IDENT"
	// readyFD is where a new shim writes "ready <pid>\n" once it listens, "busy\n" when
	// another shim holds the directory, or "error: ...\n".
	readyFD = 3
)

// Files in the shim directory.
const (
	shimLockFile    = "lock"     // flock(2)ed by the shim that serves new tasks
	shimCurrentFile = "current"  // that shim's pid
	shimLogFile     = "shim.log" // the shims' own diagnostics (each task's go to its shim.log)
)

// shimFirstAttach bounds how long a new shim waits for its first client.
const shimFirstAttach = 10 * time.Second

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

// runShim is the whole life of a shim: take the directory, listen, serve until no client
// is attached and no task runs.
func runShim() int {
	syscall.CloseOnExec(readyFD)
	closeInherited()
	ready := os.NewFile(readyFD, "ready")
	// The shim outlives kfp-box: the signals that stop a terminal's or a service's
	// processes must not end it (and with it the supervision of every task). They are
	// caught and dropped, not ignored: an ignored signal stays ignored across exec, and
	// tasks would never see the SIGTERM of a Kill.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	_ = os.Chdir("/") // hold no directory of kfp-box's busy for as long as the shim lives
	s, err := listenShim(os.Getenv(shimDirEnv), os.Getenv(shimIdentEnv), os.Getenv(shimNSEnv) == "1")
	if errors.Is(err, errShimBusy) {
		_, _ = io.WriteString(ready, "busy\n")
		return 0
	}
	if err != nil {
		fmt.Fprintf(ready, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return 1
	}
	if f, err := os.OpenFile(filepath.Join(s.dir, shimLogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
		_ = unix.Dup3(int(f.Fd()), 2, 0)
		f.Close()
	}
	fmt.Fprintf(ready, "ready %d\n", os.Getpid())
	ready.Close()
	s.serve()
	return 0
}

// errShimBusy means another live shim serves the directory.
var errShimBusy = errors.New("another shim serves this directory")

// shimServer is the shim's state: one per process, serving every task of one data dir.
type shimServer struct {
	dir      string // $DATA/host/shim
	tasksDir string // $DATA/host/tasks
	ident    string
	ns       bool
	sock     string
	ln       *net.UnixListener
	lock     *os.File
	firstOne sync.Once
	stopped  chan struct{}

	mu      sync.Mutex
	tasks   map[string]*shimTask // by task directory
	active  int                  // attachments, tasks and requests in flight
	retired bool
	closing bool
}

// shimTask is a task the shim supervises.
type shimTask struct {
	kills chan struct{} // a Kill request; the grace period is in kill.json
	done  chan struct{} // closed once the exit is recorded
}

// listenShim takes the shim directory's lock and listens on <dir>/<pid>.sock.
func listenShim(dir, ident string, ns bool) (*shimServer, error) {
	if dir == "" || !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("shim: bad directory %q", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("shim: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, shimLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("shim: %w", err)
	}
	// A shim that is on its way out still holds the lock for a moment: wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			lock.Close()
			return nil, fmt.Errorf("shim: lock: %w", err)
		}
		if time.Now().After(deadline) {
			lock.Close()
			return nil, errShimBusy
		}
		time.Sleep(10 * time.Millisecond)
	}
	removeStaleSockets(dir)
	s := &shimServer{
		dir: dir, tasksDir: filepath.Join(filepath.Dir(dir), "tasks"), ident: ident, ns: ns,
		sock: filepath.Join(dir, strconv.Itoa(os.Getpid())+".sock"), lock: lock,
		tasks: map[string]*shimTask{}, stopped: make(chan struct{}),
	}
	_ = os.Remove(s.sock)
	ln, err := listenUnix(s.sock)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("shim: %w", err)
	}
	s.ln = ln
	if err := writeCurrent(dir, os.Getpid()); err != nil {
		ln.Close()
		lock.Close()
		return nil, fmt.Errorf("shim: %w", err)
	}
	// Held until the first client attaches, so that a new shim does not exit at once.
	s.active = 1
	time.AfterFunc(shimFirstAttach, s.attached)
	return s, nil
}

// writeCurrent records pid as the shim serving new tasks. An existing file is overwritten
// in place with a line of fixed width, which needs no new space, so that a shim still
// starts on a full disk (and kfp-box with it, to serve reads); a reader sees the old pid
// or the new one.
func writeCurrent(dir string, pid int) error {
	line := []byte(fmt.Sprintf("%-19d\n", pid))
	f, err := os.OpenFile(filepath.Join(dir, shimCurrentFile), os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return writeFile(dir, shimCurrentFile, line)
	}
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(line, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Truncate(int64(len(line))); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// removeStaleSockets removes the sockets of shims that are gone.
func removeStaleSockets(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	for _, n := range names {
		pid, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(n), ".sock"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.Remove(n)
		}
	}
}

// attached drops the hold a new shim keeps until its first client attaches.
func (s *shimServer) attached() { s.firstOne.Do(s.release) }

func (s *shimServer) acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.active++
	return true
}

// release ends one attachment, task or request; the last one stops the shim.
func (s *shimServer) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active > 0 || s.closing {
		return
	}
	s.closing = true
	_ = s.ln.Close()
	_ = os.Remove(s.sock)
	close(s.stopped)
}

// serve accepts requests until the shim stops.
func (s *shimServer) serve() {
	go func() {
		for {
			c, err := s.ln.AcceptUnix()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				fmt.Fprintf(os.Stderr, "shim %d: accept: %v\n", os.Getpid(), err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if !s.acquire() {
				c.Close()
				continue
			}
			go s.handle(c)
		}
	}()
	<-s.stopped
}

// handle serves one connection. Its first line is the request:
//
//	attach        → "attached <ident>"; the connection stays open, "retire" → "retired"
//	start <dir>   → "ok", "error: ..." or "invalid: ...", then "exited" once recorded
//	kill <dir>    → "ok", or "unknown" for a task this shim does not run
//	wait <dir>    → "exited" once the exit is recorded, or "unknown"
//	status <dir>  → "running" (or starting), "exited", or "unknown"
func (s *shimServer) handle(c *net.UnixConn) {
	handedOff := false
	defer func() {
		if v := recover(); v != nil {
			fmt.Fprintf(os.Stderr, "shim %d: panic serving a request: %v\n", os.Getpid(), v)
		}
		if !handedOff {
			c.Close()
			s.release()
		}
	}()
	if !samePeer(c) {
		return
	}
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	req, arg, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	switch req {
	case "attach":
		s.attach(c, br)
	case "start":
		handedOff = s.start(c, arg)
	case "kill":
		s.kill(c, arg)
	case "wait":
		s.wait(c, br, arg)
	case "status":
		s.status(c, arg)
	default:
		fmt.Fprintf(c, "error: unknown request %q\n", req)
	}
}

// samePeer reports whether the client runs as this shim's user: the 0700 directory
// already keeps others out; this keeps them out of a directory made too open.
func samePeer(c *net.UnixConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	_ = rc.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		ok = err == nil && int(cred.Uid) == os.Geteuid()
	})
	return ok
}

func (s *shimServer) attach(c *net.UnixConn, br *bufio.Reader) {
	s.attached()
	fmt.Fprintf(c, "attached %s\n", s.ident)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return // the client closed or died: detached
		}
		if line == "retire\n" {
			s.retire()
			_, _ = io.WriteString(c, "retired\n")
		}
	}
}

// retire stops taking new tasks and gives the directory to a new shim; this one serves
// its running tasks to their end.
func (s *shimServer) retire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired {
		return
	}
	s.retired = true
	_ = s.lock.Close()
}

// taskDir checks that a request names a task directory of this data dir.
func (s *shimServer) taskDir(dir string) (string, bool) {
	dir = filepath.Clean(dir)
	return dir, filepath.Dir(dir) == s.tasksDir && validID(filepath.Base(dir))
}

// start starts the task in dir and hands the connection to its supervision. It returns
// whether it did (and so the connection is no longer the caller's).
func (s *shimServer) start(c *net.UnixConn, arg string) bool {
	dir, ok := s.taskDir(arg)
	if !ok {
		fmt.Fprintf(c, "error: %q is not a task directory of this shim\n", arg)
		return false
	}
	st := &shimTask{kills: make(chan struct{}, 1), done: make(chan struct{})}
	s.mu.Lock()
	switch {
	case s.retired:
		s.mu.Unlock()
		_, _ = io.WriteString(c, "error: shim retired\n")
		return false
	case s.tasks[dir] != nil:
		s.mu.Unlock()
		fmt.Fprintf(c, "error: task %s already started\n", filepath.Base(dir))
		return false
	}
	s.tasks[dir] = st
	s.mu.Unlock()
	if peerGone(c) {
		// The process that asked died before its task was registered here: nobody waits
		// for it, and a restarted kfp-box, finding no task, starts it again. Only a task
		// registered while its requester lived is ever started.
		s.finish(dir, st)
		return false
	}
	settled := false // the task started, or was forgotten after failing to
	defer func() {
		if !settled { // a panic, which handle recovers from
			s.finish(dir, st)
		}
	}()

	// The task is forked from a thread of its own, which enters the task's mount namespace
	// when there is one. The thread never returns to the Go scheduler: this goroutine ends
	// locked, which ends the thread, so the rest of the shim stays in the host's namespace.
	goruntime.LockOSThread()
	var nsErr error
	if s.ns {
		nsErr = ownMountNamespace()
	}
	t := startTask(c, dir, st.kills, s.ns, nsErr)
	if t.cmd == nil {
		// Forgotten before the answer, so that a retry of the same task finds it free.
		settled = true
		s.finish(dir, st)
		_, _ = io.WriteString(c, t.failure)
		return false
	}
	settled = true
	go func() {
		defer func() {
			if v := recover(); v != nil { // the exit goes unrecorded: Wait says "unknown"
				fmt.Fprintf(os.Stderr, "shim %d: panic supervising %s: %v\n", os.Getpid(), dir, v)
			}
			s.finish(dir, st)
			_, _ = io.WriteString(c, "exited\n")
			c.Close()
			s.release()
		}()
		superviseTask(t, st.kills)
	}()
	return true
}

// finish forgets a task whose exit is recorded (or which never started).
func (s *shimServer) finish(dir string, st *shimTask) {
	s.mu.Lock()
	delete(s.tasks, dir)
	s.mu.Unlock()
	close(st.done)
}

func (s *shimServer) lookup(arg string) *shimTask {
	dir, ok := s.taskDir(arg)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tasks[dir]
}

// kill forwards a Kill request to the task's supervision.
func (s *shimServer) kill(c *net.UnixConn, arg string) {
	st := s.lookup(arg)
	if st == nil {
		_, _ = io.WriteString(c, "unknown\n")
		return
	}
	select {
	case st.kills <- struct{}{}:
	default: // one is pending already; it reads the latest kill.json
	}
	_, _ = io.WriteString(c, "ok\n")
}

// status says whether this shim runs the task in dir.
func (s *shimServer) status(c *net.UnixConn, arg string) {
	answer := "unknown\n"
	if s.lookup(arg) != nil {
		answer = "running\n"
	} else if dir, ok := s.taskDir(arg); ok && fileExists(filepath.Join(dir, exitFile)) {
		answer = "exited\n"
	}
	_, _ = io.WriteString(c, answer)
}

// peerGone reports whether the client of c has closed its end (it died): a peek finds
// end of file rather than no data yet.
func peerGone(c *net.UnixConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	_ = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		gone = n == 0 && err == nil
	})
	return gone
}

// wait answers once the task's exit is recorded, or when the client goes away.
func (s *shimServer) wait(c *net.UnixConn, br *bufio.Reader, arg string) {
	st := s.lookup(arg)
	if st == nil {
		if dir, ok := s.taskDir(arg); ok && fileExists(filepath.Join(dir, exitFile)) {
			_, _ = io.WriteString(c, "exited\n")
		} else {
			_, _ = io.WriteString(c, "unknown\n")
		}
		return
	}
	gone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, br)
		close(gone)
	}()
	select {
	case <-st.done:
		_, _ = io.WriteString(c, "exited\n")
	case <-gone:
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
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

// closeInherited closes descriptors above readyFD that the shim inherited without
// close-on-exec (kfp-box started with extra descriptors, by systemd socket activation or a
// test harness): held by the long-lived shim and its tasks, they would keep other
// programs' pipes open. The Go runtime's own descriptors are all close-on-exec.
func closeInherited() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= readyFD {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			_ = unix.Close(fd)
		}
	}
}

// maxSockPath is the longest path bound or dialled as is; sun_path holds 108 bytes.
const maxSockPath = 100

// listenUnix listens on the unix socket path, reaching a long path through a descriptor
// of its directory.
func listenUnix(path string) (*net.UnixListener, error) {
	var ln *net.UnixListener
	err := withSockPath(path, func(p string) error {
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		if err == nil {
			l.SetUnlinkOnClose(false) // the shim removes its socket itself
		}
		ln = l
		return err
	})
	return ln, err
}

// dialUnix connects to the unix socket path (long paths as listenUnix).
func dialUnix(path string) (*net.UnixConn, error) {
	var c *net.UnixConn
	err := withSockPath(path, func(p string) error {
		conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: p, Net: "unix"})
		c = conn
		return err
	})
	return c, err
}

// withSockPath calls f with path, or for a path too long for sun_path with
// /proc/self/fd/<n>/<name>, n a descriptor of its directory.
func withSockPath(path string, f func(string) error) error {
	if len(path) <= maxSockPath {
		return f(path)
	}
	fd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return f("/proc/self/fd/" + strconv.Itoa(fd) + "/" + filepath.Base(path))
}
