package host

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
)

// ID is the backend's registered id.
const ID = "host"

// shimReadyTimeout bounds a shim's start-up, so that a binary that is not a shim (its
// main does not call ShimMain) fails Open instead of hanging it.
const shimReadyTimeout = 10 * time.Second

// Config keys read from runtime.Options.Config.
const (
	// ConfigShim overrides the shim executable (default: this process's own binary). The
	// binary must call ShimMain at the start of main.
	ConfigShim = "shim"
	// ConfigMountNamespaces set to "false" runs shims without a private mount namespace even
	// as root (tasks with mounts are then refused), as happens anyway without root.
	ConfigMountNamespaces = "mount_namespaces"
)

func init() {
	runtime.Register(ID, New)
	// A shim is this same binary re-executed. Running it here, from this package's init,
	// skips the initialization of every package initialized after this one (in kfp-box,
	// most of the tens of milliseconds and megabytes its dependencies spend at start-up).
	// ShimMain in main stays the documented entry; it is a no-op by then.
	ShimMain()
}

var _ runtime.Runtime = (*Runtime)(nil)

// Runtime is the host backend. Its state is files under $DATA/host/tasks, so several
// Runtime values (one per kfp-box process over time) see the same tasks.
type Runtime struct {
	log  *slog.Logger
	dir  string // $DATA/host/tasks
	shim string
	// ns is true when the shims get a private mount namespace (root with CAP_SYS_ADMIN).
	ns bool

	mu        sync.Mutex
	tasks     map[string]*task // task values handed out, shared by Start and Lookup
	spare     *shimProc        // a started shim waiting for a task
	spareWait chan struct{}    // closed when the spare being made is ready (nil: none)
	// manualSpare stops Start from making the next spare (benchmarks make it off the clock).
	manualSpare bool
	closed      bool
}

// New opens the host backend on opts.DataDir. It is the runtime.Factory registered as "host".
func New(ctx context.Context, opts runtime.Options) (runtime.Runtime, error) {
	return Open(ctx, opts)
}

// Open is New with the concrete type.
func Open(_ context.Context, opts runtime.Options) (*Runtime, error) {
	if opts.DataDir == "" {
		return nil, fmt.Errorf("host runtime: no data dir: %w", runtime.ErrInvalid)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	shim := opts.Config[ConfigShim]
	if shim == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("host runtime: own executable: %w", err)
		}
		shim = exe
	}
	dir := filepath.Join(opts.DataDir, "host", "tasks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("host runtime: %w", err)
	}
	r := &Runtime{log: log, dir: dir, shim: shim, tasks: map[string]*task{}}
	switch err := Available(); {
	case opts.Config[ConfigMountNamespaces] == "false":
		log.Info("host runtime without private mount namespaces (configured): tasks with mounts are refused")
	case err != nil:
		log.Warn("host runtime without private mount namespaces: tasks with mounts are refused", "reason", err)
	default:
		r.ns = true
	}
	log.Debug("host runtime open", "dir", dir, "shim", shim, "mount_namespaces", r.ns)
	// The first spare is made now: it proves the binary answers as a shim.
	sp, err := r.spawnShim(shimSpare)
	if err != nil {
		return nil, fmt.Errorf("host runtime: %w: %w (the binary's main must call host.ShimMain first)", err, runtime.ErrUnavailable)
	}
	r.spare = sp
	return r, nil
}

// Available reports whether tasks can get a private mount namespace, which bind mounts
// need: it requires root with CAP_SYS_ADMIN. Without it the backend still runs tasks that
// have no mounts.
func Available() error {
	if euid := os.Geteuid(); euid != 0 {
		return fmt.Errorf("host runtime: mount namespaces need root, running as uid %d: %w", euid, runtime.ErrUnavailable)
	}
	capEff, err := effectiveCaps()
	if err != nil {
		return fmt.Errorf("host runtime: %w", err)
	}
	const capSysAdmin = 21
	if capEff&(1<<capSysAdmin) == 0 {
		return fmt.Errorf("host runtime: mount namespaces need CAP_SYS_ADMIN: %w", runtime.ErrUnavailable)
	}
	return nil
}

func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff in /proc/self/status")
}

// Name returns "host".
func (r *Runtime) Name() string { return ID }

var idRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func validID(id string) bool { return len(id) <= 76 && idRE.MatchString(id) }

// validate checks what the host backend can run.
func (r *Runtime) validate(spec *runtime.TaskSpec) error {
	switch {
	case !validID(spec.ID):
		return fmt.Errorf("task %q: bad id: %w", spec.ID, runtime.ErrInvalid)
	case len(spec.Args) == 0:
		return fmt.Errorf("task %q: no command (the host runtime has no image entrypoint): %w", spec.ID, runtime.ErrInvalid)
	case !filepath.IsAbs(spec.LogPath):
		return fmt.Errorf("task %q: log path %q is not absolute: %w", spec.ID, spec.LogPath, runtime.ErrInvalid)
	case spec.WorkDir != "" && !filepath.IsAbs(spec.WorkDir):
		return fmt.Errorf("task %q: work dir %q is not absolute: %w", spec.ID, spec.WorkDir, runtime.ErrInvalid)
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) || filepath.Clean(m.Target) == "/" {
			return fmt.Errorf("task %q: mount %s:%s: paths must be absolute and the target not /: %w", spec.ID, m.Source, m.Target, runtime.ErrInvalid)
		}
	}
	if !r.ns && len(spec.Mounts) > 0 {
		return fmt.Errorf("task %q: mounts need a private mount namespace, which needs root: %w", spec.ID, runtime.ErrInvalid)
	}
	if !r.ns && spec.WorkDir != "" {
		if fi, err := os.Stat(spec.WorkDir); err != nil || !fi.IsDir() {
			return fmt.Errorf("task %q: work dir %s does not exist, and creating it needs a private mount namespace, which needs root: %w", spec.ID, spec.WorkDir, runtime.ErrInvalid)
		}
	}
	for _, m := range spec.Mounts {
		if _, err := os.Stat(m.Source); err != nil {
			return fmt.Errorf("task %q: mount source: %w: %w", spec.ID, err, runtime.ErrInvalid)
		}
	}
	return nil
}

// Start writes the task's state directory, launches its shim and returns once the task's
// process runs.
func (r *Runtime) Start(ctx context.Context, spec runtime.TaskSpec) (runtime.Task, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("task %q: start: %w", spec.ID, err)
	}
	if err := r.validate(&spec); err != nil {
		return nil, err
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("task %q: host runtime closed: %w", spec.ID, runtime.ErrUnavailable)
	}
	if spec.Image != "" {
		r.log.Debug("host runtime ignores the image", "task", spec.ID, "image", spec.Image)
	}
	dir := filepath.Join(r.dir, spec.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("task %q: %w", spec.ID, runtime.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("task %q: %w", spec.ID, err)
	}
	t, err := r.launch(ctx, dir, spec)
	if !r.manualSpare {
		r.refill()
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	r.mu.Lock()
	r.tasks[spec.ID] = t
	r.mu.Unlock()
	return t, nil
}

// shimMode says how a shim is made.
type shimMode string

// Shim modes, passed in shimSpareEnv.
const (
	// shimDirect is a shim made for a task that waits now: no warm-up.
	shimDirect shimMode = ""
	// shimSpare warms up before it reports ready.
	shimSpare shimMode = "warm"
	// shimIdleSpare warms up and waits at low priority: the spares made while tasks run.
	shimIdleSpare shimMode = "idle"
)

// shimProc is a started shim, with the parent's ends of its pipes.
type shimProc struct {
	cmd    *exec.Cmd
	ctrl   *os.File // write the task dir here
	status *os.File // "ready", then "ok" or an error, then "exited"; EOF when the shim exits
	br     *bufio.Reader
	reaped chan struct{}
}

// spawnShim execs a shim that waits for its task. It is detached: its own session, stdio
// on /dev/null (it moves stderr to the task's shim.log).
//
// It returns once the shim reports ready (see shimMode for what it does first).
func (r *Runtime) spawnShim(mode shimMode) (*shimProc, error) {
	ctrlR, ctrlW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	statR, statW, err := os.Pipe()
	if err != nil {
		ctrlR.Close()
		ctrlW.Close()
		return nil, err
	}
	env := []string{ShimEnv + "=1"}
	attr := &syscall.SysProcAttr{Setsid: true}
	if r.ns {
		env = append(env, shimNSEnv+"=1") // the shim makes its own mount namespace
	}
	if mode != shimDirect {
		env = append(env, shimSpareEnv+"="+string(mode))
	}
	cmd := &exec.Cmd{
		Path:        r.shim,
		Args:        []string{"kfp-box-shim"},
		Env:         env,
		ExtraFiles:  []*os.File{ctrlR, statW}, // ctrlFD, statusFD
		SysProcAttr: attr,
	}
	err = cmd.Start()
	ctrlR.Close()
	statW.Close()
	if err != nil {
		ctrlW.Close()
		statR.Close()
		return nil, fmt.Errorf("start shim %s: %w", r.shim, err)
	}
	sp := &shimProc{cmd: cmd, ctrl: ctrlW, status: statR, br: bufio.NewReader(statR), reaped: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // reap the shim while this process lives
		close(sp.reaped)
	}()
	// Wait until it has warmed up and waits for its task: a spare is only handed out ready.
	_ = statR.SetReadDeadline(time.Now().Add(shimReadyTimeout))
	line, err := sp.br.ReadString('\n')
	_ = statR.SetReadDeadline(time.Time{})
	if line != "ready\n" {
		_ = cmd.Process.Kill()
		sp.discard()
		return nil, fmt.Errorf("shim %s did not answer (%q, %v)", r.shim, line, err)
	}
	return sp, nil
}

// discard lets an unused shim exit.
func (sp *shimProc) discard() {
	sp.ctrl.Close()
	sp.status.Close()
}

// takeShim returns the spare shim if one is ready, else makes one for this task (a spare
// still warming up at low priority would be slower to wait for). The spare takes the
// shim's exec and Go start-up off Start's path; Start has the next one made once its task
// runs, so that making it does not compete with the start.
func (r *Runtime) takeShim() (*shimProc, error) {
	r.mu.Lock()
	sp := r.spare
	r.spare = nil
	r.mu.Unlock()
	if sp != nil {
		return sp, nil
	}
	return r.spawnShim(shimDirect)
}

// refill makes a spare shim in the background unless one exists or is being made.
func (r *Runtime) refill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.spare != nil || r.spareWait != nil {
		return
	}
	w := make(chan struct{})
	r.spareWait = w
	go func() {
		defer close(w)
		sp, err := r.spawnShim(shimIdleSpare)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.spareWait = nil
		switch {
		case err != nil:
			r.log.Warn("host runtime: spare shim", "err", err)
		case r.closed:
			sp.discard()
		default:
			r.spare = sp
		}
	}()
}

// launch hands the task to a shim and waits for its "ok".
func (r *Runtime) launch(ctx context.Context, dir string, spec runtime.TaskSpec) (*task, error) {
	if err := writeJSON(dir, specFile, spec); err != nil {
		return nil, fmt.Errorf("task %q: %w", spec.ID, err)
	}
	sp, err := r.takeShim()
	if err != nil {
		return nil, fmt.Errorf("task %q: %w", spec.ID, err)
	}
	if _, err := io.WriteString(sp.ctrl, dir+"\n"); err != nil {
		// The spare died (killed by someone); use a fresh one.
		sp.discard()
		if sp, err = r.spawnShim(shimDirect); err != nil {
			return nil, fmt.Errorf("task %q: %w", spec.ID, err)
		}
		if _, err := io.WriteString(sp.ctrl, dir+"\n"); err != nil {
			sp.discard()
			return nil, fmt.Errorf("task %q: hand over to shim: %w", spec.ID, err)
		}
	}
	sp.ctrl.Close()

	stop := context.AfterFunc(ctx, func() { _ = sp.status.SetReadDeadline(deadlinePast) })
	br := sp.br
	line, rerr := br.ReadString('\n')
	stop()
	msg := strings.TrimSuffix(line, "\n")
	switch {
	case msg == "ok":
		done := make(chan struct{})
		go func() {
			// "exited" follows the exit record; EOF alone means the shim died. Not waiting
			// for EOF after "exited" matters: the last close of the pipe happens only after
			// the shim's mount namespace is torn down.
			defer close(done)
			defer sp.status.Close()
			for {
				l, err := br.ReadString('\n')
				if err != nil || l == "exited\n" {
					return
				}
			}
		}()
		return &task{r: r, id: spec.ID, dir: dir, labels: spec.Labels, done: done}, nil
	case rerr != nil && ctx.Err() != nil:
		// Given up: have the shim kill the task at once; it still records the exit.
		_ = writeJSON(dir, killFile, killRequest{})
		_ = sp.cmd.Process.Signal(syscall.SIGTERM)
		_, _ = io.Copy(io.Discard, sp.status)
		sp.status.Close()
		return nil, fmt.Errorf("task %q: start: %w", spec.ID, ctx.Err())
	default:
		sp.status.Close()
		<-sp.reaped
		if rest, ok := strings.CutPrefix(msg, "invalid: "); ok {
			return nil, fmt.Errorf("task %q: %s: %w", spec.ID, rest, runtime.ErrInvalid)
		}
		if msg == "" {
			msg = "shim exited without reporting (see " + filepath.Join(dir, shimLog) + ")"
		}
		return nil, fmt.Errorf("task %q: %s", spec.ID, strings.TrimPrefix(msg, "error: "))
	}
}

// Lookup finds a task by id, whether this Runtime started it or an earlier kfp-box did.
func (r *Runtime) Lookup(_ context.Context, id string) (runtime.Task, error) {
	return r.lookup(id)
}

func (r *Runtime) lookup(id string) (*task, error) {
	if !validID(id) {
		return nil, fmt.Errorf("task %q: %w", id, runtime.ErrNotFound)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.tasks[id]; ok {
		return t, nil
	}
	dir := filepath.Join(r.dir, id)
	var spec runtime.TaskSpec
	if err := readJSON(dir, specFile, &spec); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("task %q: %w", id, runtime.ErrNotFound)
		}
		return nil, fmt.Errorf("task %q: %w", id, err)
	}
	t := &task{r: r, id: id, dir: dir, labels: spec.Labels}
	r.tasks[id] = t
	return t, nil
}

// List returns every task with a state directory, running or exited.
func (r *Runtime) List(_ context.Context) ([]runtime.Task, error) {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("host runtime: list: %w", err)
	}
	tasks := make([]runtime.Task, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		t, err := r.lookup(e.Name())
		if err != nil {
			if !errors.Is(err, runtime.ErrNotFound) {
				r.log.Warn("host runtime: skip unreadable task", "task", e.Name(), "err", err)
			}
			continue
		}
		tasks = append(tasks, t)
	}
	return tasks, nil
}

// Close stops Start from launching tasks and lets the spare shim exit. Running tasks, and
// their shims, keep running.
func (r *Runtime) Close() error {
	r.mu.Lock()
	r.closed = true
	sp := r.spare
	r.spare = nil
	r.mu.Unlock()
	if sp != nil {
		sp.discard()
	}
	return nil
}

func (r *Runtime) forget(id string) {
	r.mu.Lock()
	delete(r.tasks, id)
	r.mu.Unlock()
}
