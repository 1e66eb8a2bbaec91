package host

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
)

// ID is the backend's registered id.
const ID = "host"

// Settings is the host backend's configuration section (runtime.host in the configuration
// file). Its tags are the documentation `kfp-box config schema` prints.
type Settings struct {
	Shim            string `json:"shim" doc:"executable re-run as the task shim; empty: kfp-box's own binary (a replacement must call host.ShimMain first)"`
	MountNamespaces bool   `json:"mount_namespaces" doc:"give each task a private mount namespace when running as root (false: as without root, tasks with mounts are refused)"`
}

// NewSettings returns the section with its defaults.
func NewSettings() *Settings { return &Settings{MountNamespaces: true} }

// Validate checks the section's values.
func (s *Settings) Validate() error {
	if s.Shim != "" && !filepath.IsAbs(s.Shim) {
		return fmt.Errorf("shim %q: want an absolute path", s.Shim)
	}
	return nil
}

func init() {
	runtime.Register(ID, NewSettings, New)
	// A shim is this same binary re-executed. Running it here, from this package's init,
	// skips the initialization of every package initialized after this one (in kfp-box,
	// most of the tens of milliseconds and megabytes its dependencies spend at start-up).
	// ShimMain in main stays the documented entry; it is a no-op by then.
	ShimMain()
}

var _ runtime.Runtime = (*Runtime)(nil)

// Runtime is the host backend. Its state is files under $DATA/host, so several Runtime
// values (one per kfp-box process over time) see the same tasks.
type Runtime struct {
	log     *slog.Logger
	dir     string // $DATA/host/tasks
	shimDir string // $DATA/host/shim
	shim    string // the shim's binary
	ident   string // binaryIdent(shim)
	// ns is true when tasks get a private mount namespace (root with CAP_SYS_ADMIN).
	ns bool

	connMu sync.Mutex // serializes connecting to (and spawning) the shim

	mu       sync.Mutex
	tasks    map[string]*task // task values handed out, shared by Start and Lookup
	starting map[string]bool  // ids whose Start is under way in this process
	attach   net.Conn         // attachment to the shim: keeps it alive while kfp-box runs
	shimSock string           // the attached shim's socket
	closed   bool
}

// New opens the host backend on opts.DataDir with section s (nil: NewSettings()). It is
// the factory registered as "host".
func New(ctx context.Context, opts runtime.Options, s *Settings) (runtime.Runtime, error) {
	return Open(ctx, opts, s)
}

// Open is New with the concrete type.
func Open(_ context.Context, opts runtime.Options, s *Settings) (*Runtime, error) {
	if s == nil {
		s = NewSettings()
	}
	if opts.DataDir == "" {
		return nil, fmt.Errorf("host runtime: no data dir: %w", runtime.ErrInvalid)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	shim := s.Shim
	if shim == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("host runtime: own executable: %w", err)
		}
		shim = exe
	}
	dir := filepath.Join(opts.DataDir, "host", "tasks")
	shimDir := filepath.Join(opts.DataDir, "host", "shim")
	for _, d := range []string{dir, shimDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("host runtime: %w", err)
		}
	}
	ident, err := binaryIdent(shim)
	if err != nil {
		return nil, fmt.Errorf("host runtime: shim %s: %w: %w", shim, err, runtime.ErrUnavailable)
	}
	r := &Runtime{log: log, dir: dir, shimDir: shimDir, shim: shim, ident: ident,
		tasks: map[string]*task{}, starting: map[string]bool{}}
	switch err := Available(); {
	case !s.MountNamespaces:
		log.Info("host runtime without private mount namespaces (configured): tasks with mounts are refused")
	case err != nil:
		log.Warn("host runtime without private mount namespaces: tasks with mounts are refused", "reason", err)
	default:
		r.ns = true
	}
	log.Debug("host runtime open", "dir", dir, "shim", shim, "mount_namespaces", r.ns)
	// Attaching now proves the binary answers as a shim, and adopts a shim left running
	// by an earlier kfp-box with the tasks it supervises.
	if _, err := r.connect(""); err != nil {
		return nil, fmt.Errorf("host runtime: %w: %w (the binary's main must call host.ShimMain first)", err, runtime.ErrUnavailable)
	}
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
	for _, h := range spec.Hide {
		if !filepath.IsAbs(h) || filepath.Clean(h) == "/" {
			return fmt.Errorf("task %q: hidden path %q: must be absolute and not /: %w", spec.ID, h, runtime.ErrInvalid)
		}
		for _, m := range spec.Mounts {
			if filepath.Clean(m.Target) == filepath.Clean(h) {
				return fmt.Errorf("task %q: mount target %s is the hidden path itself: %w", spec.ID, m.Target, runtime.ErrInvalid)
			}
		}
		if spec.WorkDir != "" && within(spec.WorkDir, h) {
			return fmt.Errorf("task %q: work dir %s lies in the hidden path %s: %w", spec.ID, spec.WorkDir, h, runtime.ErrInvalid)
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

// within reports whether path p is dir or lies below it.
func within(p, dir string) bool {
	p, dir = filepath.Clean(p), filepath.Clean(dir)
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// Start writes the task's state directory, hands it to the shim and returns once the
// task's process runs.
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
	r.mu.Lock()
	busy := r.starting[spec.ID]
	if !busy {
		r.starting[spec.ID] = true
	}
	r.mu.Unlock()
	if busy {
		return nil, fmt.Errorf("task %q: %w", spec.ID, runtime.ErrAlreadyExists)
	}
	t, err := r.start(ctx, dir, spec)
	r.mu.Lock()
	delete(r.starting, spec.ID)
	if t != nil {
		r.tasks[spec.ID] = t
	}
	r.mu.Unlock()
	return t, err
}

func (r *Runtime) start(ctx context.Context, dir string, spec runtime.TaskSpec) (*task, error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("task %q: %w", spec.ID, runtime.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("task %q: %w", spec.ID, err)
	}
	t, err := r.launch(ctx, dir, spec)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return t, nil
}

// launch hands the task to the shim and waits for its "ok".
func (r *Runtime) launch(ctx context.Context, dir string, spec runtime.TaskSpec) (*task, error) {
	if err := writeJSON(dir, specFile, spec); err != nil {
		return nil, fmt.Errorf("task %q: %w", spec.ID, err)
	}
	var (
		c    *net.UnixConn
		br   *bufio.Reader
		line string
		rerr error
		err  error
	)
	for attempt := 0; ; attempt++ {
		var sock string
		c, br, sock, err = r.request(ctx, "start "+dir)
		if err != nil {
			return nil, fmt.Errorf("task %q: %w", spec.ID, err)
		}
		stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(deadlinePast) })
		line, rerr = br.ReadString('\n')
		stop()
		if attempt > 0 {
			break
		}
		// Another kfp-box binary took over the data dir, or the shim died before it took
		// the task (no state recorded; a dying shim can accept a connection for a moment):
		// hand the task to a current shim.
		retired := line == "error: shim retired\n"
		died := line == "" && shimGone(sock) && !fileExists(filepath.Join(dir, stateFile))
		if !retired && !died {
			break
		}
		c.Close()
		if _, err := r.connect(sock); err != nil {
			return nil, fmt.Errorf("task %q: %w", spec.ID, err)
		}
	}
	msg := strings.TrimSuffix(line, "\n")
	switch {
	case msg == "ok":
		done := make(chan struct{})
		go func() {
			// "exited" follows the exit record; EOF alone means the shim died.
			defer close(done)
			defer c.Close()
			_ = c.SetReadDeadline(time.Time{})
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
		if kc, _, _, err := r.request(context.Background(), "kill "+dir); err == nil {
			kc.Close()
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, _ = io.Copy(io.Discard, br)
		c.Close()
		return nil, fmt.Errorf("task %q: start: %w", spec.ID, ctx.Err())
	default:
		c.Close()
		if rest, ok := strings.CutPrefix(msg, "invalid: "); ok {
			return nil, fmt.Errorf("task %q: %s: %w", spec.ID, rest, runtime.ErrInvalid)
		}
		if msg == "" {
			msg = fmt.Sprintf("shim exited without reporting (%v; see %s)", rerr, filepath.Join(r.shimDir, shimLogFile))
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
	if r.starting[id] {
		return nil, fmt.Errorf("task %q: still starting: %w", id, runtime.ErrNotFound)
	}
	var spec runtime.TaskSpec
	if err := readJSON(dir, specFile, &spec); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// A Start that died before it wrote the spec leaves an empty directory: the
			// task never ran, and its id must be free to start it again.
			_ = os.Remove(dir)
			return nil, fmt.Errorf("task %q: %w", id, runtime.ErrNotFound)
		}
		return nil, fmt.Errorf("task %q: %w", id, err)
	}
	if !fileExists(filepath.Join(dir, stateFile)) && !fileExists(filepath.Join(dir, exitFile)) {
		// Its Start died with the process that called it, before or while the shim took
		// the task. A shim that has it says so; if none does, it never ran and never will
		// (a shim drops the request of a client that died before the task was registered).
		if _, status := r.findShim(dir); status == "unknown" {
			r.log.Info("host runtime: forgetting a task whose start never completed", "task", id)
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("task %q: never started: %w", id, runtime.ErrNotFound)
		}
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

// Close stops Start from launching tasks and detaches from the shim. Running tasks, and
// the shim while it supervises any, keep running.
func (r *Runtime) Close() error {
	r.mu.Lock()
	r.closed = true
	c := r.attach
	r.attach = nil
	r.mu.Unlock()
	if c != nil {
		c.Close()
	}
	return nil
}

func (r *Runtime) forget(id string) {
	r.mu.Lock()
	delete(r.tasks, id)
	r.mu.Unlock()
}

var _ runtime.FileCopier = (*Runtime)(nil)

// CopyOut implements runtime.FileCopier. Host tasks see the host's file system (their mounts
// only add paths), so what a task left at path is at path on the host too.
func (r *Runtime) CopyOut(_ context.Context, taskID, path, dst string) error {
	if err := runtime.CopyOut("/", path, dst); err != nil {
		return fmt.Errorf("task %q: %w", taskID, err)
	}
	return nil
}
