package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	ctrlog "github.com/containerd/log"

	"github.com/kfp-box/kfp-box/runtime"
)

// ID is the id this backend registers under.
const ID = "containerd"

// DefaultNamespace is the containerd namespace that holds kfp-box's images and tasks.
const DefaultNamespace = "kfp-box"

// DefaultSocket is the system containerd's socket, used when no address is configured.
const DefaultSocket = "/run/containerd/containerd.sock"

// InitBinaryName is the static init (cmd/kfp-box-init) looked up next to the kfp-box
// executable and then in PATH.
const InitBinaryName = "kfp-box-init"

// Label keys kfp-box keeps on its containers; Task.Labels never returns them.
const (
	labelPrefix    = "io.kfp-box/"
	labelManaged   = labelPrefix + "managed"
	labelLogPath   = labelPrefix + "log-path"
	labelStartedAt = labelPrefix + "started-at"
	labelExitCode  = labelPrefix + "exit-code"
	labelExitedAt  = labelPrefix + "exited-at"
	labelOOM       = labelPrefix + "oom-killed"
	labelMessage   = labelPrefix + "message"
	labelKillAt    = labelPrefix + "kill-deadline"
)

// runcRuntime is the shim every task runs under.
const runcRuntime = "io.containerd.runc.v2"

// Config configures the containerd backend. Zero values pick the defaults.
type Config struct {
	// Address is the containerd socket. Empty: the system socket when it answers, else a
	// child containerd under DataDir/containerd that the runtime starts and supervises.
	Address string
	// DataDir is kfp-box's data directory.
	DataDir string
	// Namespace is the containerd namespace (default "kfp-box").
	Namespace string
	// Snapshotter unpacks images (default "overlayfs").
	Snapshotter string
	// LoggerBinary is the executable the shim starts as each task's log binary with the
	// arguments [LoggerCommand, LOGPATH] (default: the init binary, else this executable,
	// which must then route those arguments to LoggerMain).
	LoggerBinary string
	// InitBinary is the static init bind-mounted as each task's PID 1; "" looks for
	// kfp-box-init next to this executable and in PATH, "none" runs tasks without one.
	InitBinary string
	// PullTimeout bounds an implicit pull for a missing image (default 10 minutes).
	PullTimeout time.Duration
	// Logger is scoped to the backend; nil discards.
	Logger *slog.Logger
}

// Runtime runs tasks as containerd containers, one container per task.
type Runtime struct {
	cfg    Config
	log    *slog.Logger
	client *client.Client
	daemon *Daemon // nil when the runtime did not start containerd
	init   string  // absolute path of the init binary, "" for none

	unpackedMu sync.Mutex
	unpacked   map[string]bool // image target digest -> unpacked for cfg.Snapshotter

	locksMu    sync.Mutex
	locks      map[string]*sync.Mutex // per task id, serializes harvesting an exit
	escalating map[string]bool        // task ids with a pending SIGKILL timer
	exits      sync.Map               // task id -> runtime.ExitStatus recorded by this process

	bg     context.Context // ends at Close; bounds background escalations
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ runtime.Runtime = (*Runtime)(nil)

func (c *Config) setDefaults() {
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.Snapshotter == "" {
		c.Snapshotter = "overlayfs"
	}
	if c.PullTimeout <= 0 {
		c.PullTimeout = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// New connects to containerd (starting a child one when needed, see Config.Address) and
// returns the backend. Failing to reach or start containerd wraps runtime.ErrUnavailable.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	quietClientLog.Do(func() {
		// The containerd client logs through logrus at info level ("fetch failed" for every
		// registry miss of the pull policy); kfp-box reports what matters through slog.
		_ = ctrlog.SetLevel("warn")
	})
	cfg.setDefaults()
	log := cfg.Logger.With("component", "runtime/containerd")
	initPath, err := findInit(cfg.InitBinary)
	if err != nil {
		return nil, err
	}
	if cfg.LoggerBinary == "" {
		// The static init starts in a few milliseconds; kfp-box itself is the fallback.
		cfg.LoggerBinary = initPath
	}
	if cfg.LoggerBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("containerd runtime: find log binary: %w", err)
		}
		cfg.LoggerBinary = exe
	}
	if initPath == "" {
		log.Warn("no kfp-box-init found; tasks run as PID 1 and may ignore SIGTERM until the grace period ends",
			"fix", "install kfp-box-init next to the kfp-box binary or in PATH")
	}
	c, d, err := Connect(ctx, ConnectOptions{Address: cfg.Address, DataDir: cfg.DataDir, Namespace: cfg.Namespace, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		cfg: cfg, log: log, client: c, daemon: d, init: initPath,
		unpacked: map[string]bool{}, locks: map[string]*sync.Mutex{}, escalating: map[string]bool{},
		bg: bg, cancel: cancel,
	}
	return r, nil
}

// findInit resolves Config.InitBinary to an absolute path ("" when none is used).
func findInit(want string) (string, error) {
	switch want {
	case "none":
		return "", nil
	case "":
		if exe, err := os.Executable(); err == nil {
			p := filepath.Join(filepath.Dir(exe), InitBinaryName)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p, nil
			}
		}
		if p, err := exec.LookPath(InitBinaryName); err == nil {
			return filepath.Abs(p)
		}
		return "", nil
	default:
		p, err := filepath.Abs(want)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("containerd runtime: init binary: %w", err)
		}
		return p, nil
	}
}

// ConnectOptions say how to reach containerd.
type ConnectOptions struct {
	// Address is an explicit socket; when set, nothing else is tried.
	Address string
	// DataDir holds the child containerd (DataDir/containerd) when one must be started.
	DataDir string
	// Namespace is the default namespace of the returned client (default "kfp-box").
	Namespace string
	// NoStart forbids starting a child containerd.
	NoStart bool
	// Logger receives the child daemon's supervisor messages.
	Logger *slog.Logger
}

// Connect returns a client for the configured containerd: Address when given, else the
// system socket when it answers, else the child socket under DataDir/containerd when a
// kfp-box already runs one, else a newly started child containerd (returned so the caller
// can stop it). Failures wrap runtime.ErrUnavailable.
func Connect(ctx context.Context, o ConnectOptions) (*client.Client, *Daemon, error) {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	dial := func(addr string) (*client.Client, error) {
		if err := ping(ctx, addr); err != nil {
			return nil, err
		}
		return client.New(addr, client.WithDefaultNamespace(o.Namespace), client.WithTimeout(10*time.Second))
	}
	if o.Address != "" {
		c, err := dial(o.Address)
		if err != nil {
			return nil, nil, fmt.Errorf("containerd at %q: %v: %w", o.Address, err, runtime.ErrUnavailable)
		}
		return c, nil, nil
	}
	if c, err := dial(DefaultSocket); err == nil {
		return c, nil, nil
	}
	if o.DataDir == "" {
		return nil, nil, fmt.Errorf("containerd: no socket at %q and no data directory for a child containerd: %w", DefaultSocket, runtime.ErrUnavailable)
	}
	dir := filepath.Join(o.DataDir, "containerd")
	if c, err := dial(DaemonAddress(dir)); err == nil {
		return c, nil, nil
	}
	if o.NoStart {
		return nil, nil, fmt.Errorf("containerd: none answers at %q or %q: %w", DefaultSocket, DaemonAddress(dir), runtime.ErrUnavailable)
	}
	d, err := StartDaemon(ctx, DaemonConfig{Dir: dir, Logger: o.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("%v: %w", err, runtime.ErrUnavailable)
	}
	c, err := client.New(d.Address(), client.WithDefaultNamespace(o.Namespace), client.WithTimeout(10*time.Second))
	if err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.Stop(stopCtx)
		return nil, nil, fmt.Errorf("containerd: %v: %w", err, runtime.ErrUnavailable)
	}
	return c, d, nil
}

// ProbeOptions are what Probe needs to decide whether containerd can be used.
type ProbeOptions struct {
	// Address is --containerd-address ("" = default socket or a child containerd).
	Address string
	// DataDir is where a child containerd would live.
	DataDir string
}

// Probe reports whether the containerd backend can run tasks here without starting
// anything: the configured socket answers, or (with no address) the system socket or a
// child socket answers, or containerd, its runc shim and runc are installed and we are root
// so a child containerd can be started. The error wraps runtime.ErrUnavailable and says how
// to fix it. `--runtime auto` uses it to pick containerd or the host runtime.
func Probe(ctx context.Context, o ProbeOptions) error {
	if o.Address != "" {
		if err := ping(ctx, o.Address); err != nil {
			return fmt.Errorf("containerd at %q does not answer (%v); start it or fix --containerd-address: %w", o.Address, err, runtime.ErrUnavailable)
		}
		return nil
	}
	if ping(ctx, DefaultSocket) == nil {
		return nil
	}
	if o.DataDir != "" && ping(ctx, DaemonAddress(filepath.Join(o.DataDir, "containerd"))) == nil {
		return nil
	}
	var missing []string
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s not found in PATH; install with: apt-get install containerd runc: %w", strings.Join(missing, ", "), runtime.ErrUnavailable)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("starting a child containerd needs root; run kfp-box as root or point --containerd-address at a running containerd: %w", runtime.ErrUnavailable)
	}
	return nil
}

// Name returns "containerd".
func (r *Runtime) Name() string { return ID }

// Client is the underlying containerd client (image commands and tests use it).
func (r *Runtime) Client() *client.Client { return r.client }

// Namespace is the containerd namespace of the backend's tasks and images.
func (r *Runtime) Namespace() string { return r.cfg.Namespace }

// Close stops pending kill escalations, closes the client and stops a child containerd the
// runtime started. Tasks keep running in their shims and are found again by Lookup.
func (r *Runtime) Close() error {
	r.cancel()
	r.wg.Wait()
	err := r.client.Close()
	if r.daemon != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err = errors.Join(err, r.daemon.Stop(ctx))
	}
	return err
}

// Daemon is the child containerd the runtime started, nil when it uses another one.
func (r *Runtime) Daemon() *Daemon { return r.daemon }

func (r *Runtime) nsCtx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

// taskLock returns the mutex that serializes harvesting task id's exit in this process.
func (r *Runtime) taskLock(id string) *sync.Mutex {
	r.locksMu.Lock()
	defer r.locksMu.Unlock()
	m, ok := r.locks[id]
	if !ok {
		m = &sync.Mutex{}
		r.locks[id] = m
	}
	return m
}

var quietClientLog sync.Once

var idRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// validate checks the parts of spec every task needs.
func validate(spec runtime.TaskSpec) error {
	if !idRE.MatchString(spec.ID) || len(spec.ID) > 76 {
		return fmt.Errorf("task id %q: must match %s and be at most 76 characters: %w", spec.ID, idRE, runtime.ErrInvalid)
	}
	if spec.Image == "" {
		return fmt.Errorf("task %q: no image: %w", spec.ID, runtime.ErrInvalid)
	}
	if spec.LogPath == "" || !filepath.IsAbs(spec.LogPath) {
		return fmt.Errorf("task %q: log path %q must be absolute: %w", spec.ID, spec.LogPath, runtime.ErrInvalid)
	}
	for k := range spec.Labels {
		if strings.HasPrefix(k, labelPrefix) {
			return fmt.Errorf("task %q: label %q uses the reserved prefix %q: %w", spec.ID, k, labelPrefix, runtime.ErrInvalid)
		}
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) {
			return fmt.Errorf("task %q: mount %q -> %q: paths must be absolute: %w", spec.ID, m.Source, m.Target, runtime.ErrInvalid)
		}
	}
	return nil
}

// mapErr turns containerd's errdefs into runtime sentinels, naming the task.
func mapErr(id string, err error) error {
	switch {
	case err == nil:
		return nil
	case errdefs.IsNotFound(err):
		return fmt.Errorf("task %q: %w", id, runtime.ErrNotFound)
	case errdefs.IsAlreadyExists(err):
		return fmt.Errorf("task %q: %w", id, runtime.ErrAlreadyExists)
	default:
		return fmt.Errorf("task %q: %w", id, err)
	}
}
