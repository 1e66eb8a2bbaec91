package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
)

// maxDaemonLog is the size at which the daemon's log is rotated when it (re)starts.
const maxDaemonLog = 16 << 20

// DaemonConfig configures a child containerd that kfp-box starts and supervises.
type DaemonConfig struct {
	// Dir holds the daemon's config, root, state, socket, pid file and log
	// (kfp-box uses $DATA/containerd).
	Dir string
	// Binary is the containerd executable; "" looks up "containerd" in PATH.
	Binary string
	// Logger receives the supervisor's messages; nil discards them.
	Logger *slog.Logger
	// MaxBackoff caps the wait between restarts after crashes (default 10s).
	MaxBackoff time.Duration
}

// Daemon is a supervised child containerd. Its tasks' shims are separate processes, so tasks
// keep running while the daemon restarts or stops.
type Daemon struct {
	cfg     DaemonConfig
	log     *slog.Logger
	address string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has exited
	stopping bool
	crashes  chan error
	stop     chan struct{} // closed by Stop
	done     chan struct{} // closed when the supervisor loop ends

	launches chan chan error // served by the launcher goroutine, see launcher
	endOnce  sync.Once
}

// DaemonAddress returns the socket path of the child containerd kept under dir.
func DaemonAddress(dir string) string {
	return filepath.Join(dir, "containerd.sock")
}

// StartDaemon writes the config of a child containerd under cfg.Dir, starts it and waits
// under ctx until it answers. A goroutine then restarts it with backoff whenever it dies;
// each crash is also reported on Crashes. Call Stop to end it.
func StartDaemon(ctx context.Context, cfg DaemonConfig) (*Daemon, error) {
	if cfg.Dir == "" {
		return nil, errors.New("containerd daemon: no directory")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	if cfg.Binary == "" {
		cfg.Binary = "containerd"
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("containerd daemon: %w (install containerd, e.g. apt-get install containerd runc)", err)
	}
	cfg.Binary = bin
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "containerd-daemon"),
		address:  DaemonAddress(dir),
		crashes:  make(chan error, 8),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		launches: make(chan chan error),
	}
	if len(d.address) >= 104 {
		return nil, fmt.Errorf("containerd daemon: socket path %q is too long for a unix socket; use a shorter data directory", d.address)
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("containerd daemon: %w", err)
	}
	if err := os.WriteFile(d.configPath(), []byte(d.configTOML()), 0o600); err != nil {
		return nil, fmt.Errorf("containerd daemon: write config: %w", err)
	}
	d.stopStale()
	go d.launcher()
	if err := d.launch(); err != nil {
		d.endLauncher()
		return nil, err
	}
	if err := d.waitReady(ctx); err != nil {
		_ = d.kill()
		d.endLauncher()
		return nil, err
	}
	go d.supervise()
	return d, nil
}

// Address is the daemon's gRPC socket.
func (d *Daemon) Address() string { return d.address }

// Crashes reports each unexpected exit of the daemon (it is restarted after each).
func (d *Daemon) Crashes() <-chan error { return d.crashes }

// Pid is the process id of the current daemon process, 0 if none runs.
func (d *Daemon) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

func (d *Daemon) configPath() string { return filepath.Join(d.cfg.Dir, "config.toml") }
func (d *Daemon) pidPath() string    { return filepath.Join(d.cfg.Dir, "containerd.pid") }

// configTOML is containerd 1.6's version 2 config: everything under Dir, the CRI plugin and
// snapshotters that cannot work here disabled, runc (cgroupfs driver, cgroup v1 or v2) as the
// default runtime.
func (d *Daemon) configTOML() string {
	q := strconv.Quote
	return strings.Join([]string{
		"# Written by kfp-box; rewritten on every start.",
		"version = 2",
		"root = " + q(filepath.Join(d.cfg.Dir, "root")),
		"state = " + q(filepath.Join(d.cfg.Dir, "state")),
		"oom_score = -500",
		`disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]`,
		"",
		"[grpc]",
		"  address = " + q(d.address),
		"[ttrpc]",
		"  address = " + q(d.address+".ttrpc"),
		"[debug]",
		`  level = "warn"`,
		"",
	}, "\n")
}

// stopStale ends a containerd left running from this directory by a kfp-box that died
// without stopping it, so the new one can take the socket and the metadata lock.
func (d *Daemon) stopStale() {
	b, err := os.ReadFile(d.pidPath())
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || filepath.Base(exe) != filepath.Base(d.cfg.Binary) {
		return
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !strings.Contains(string(cmdline), d.configPath()) {
		return
	}
	d.log.Warn("stopping a containerd left running by an earlier kfp-box", "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// launcher starts every containerd process of this Daemon from one OS thread that lives
// as long as the daemon: the kernel sends the parent-death signal when the *thread* that
// forked the child ends, and the Go runtime ends threads (for example when a goroutine
// that locked one returns), which would stop a healthy containerd at random.
func (d *Daemon) launcher() {
	runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
	for reply := range d.launches {
		reply <- d.launchNow()
	}
}

// endLauncher lets the launcher goroutine (and its thread) end; no launch may follow.
func (d *Daemon) endLauncher() { d.endOnce.Do(func() { close(d.launches) }) }

// launch starts one containerd process through the launcher thread.
func (d *Daemon) launch() error {
	reply := make(chan error, 1)
	d.launches <- reply
	return <-reply
}

// launchNow starts one containerd process; only the launcher goroutine calls it.
func (d *Daemon) launchNow() error {
	logPath := filepath.Join(d.cfg.Dir, "containerd.log")
	if st, err := os.Stat(logPath); err == nil && st.Size() > maxDaemonLog {
		_ = os.Rename(logPath, logPath+".1") // one old generation is enough to debug a crash
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("containerd daemon: %w", err)
	}
	defer logf.Close()
	_ = os.Remove(d.address)
	cmd := exec.Command(d.cfg.Binary, "--config", d.configPath())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = d.cfg.Dir
	// Its own process group keeps a terminal's ^C away from it (kfp-box stops it in
	// order); the parent-death signal ends it if kfp-box is killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("containerd daemon: start %s: %w", d.cfg.Binary, err)
	}
	exited := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()
	_ = os.WriteFile(d.pidPath(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600)
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	d.log.Info("containerd started", "pid", cmd.Process.Pid, "address", d.address)
	return nil
}

// waitReady polls until the daemon answers a Version call, the process exits, or ctx ends.
func (d *Daemon) waitReady(ctx context.Context) error {
	d.mu.Lock()
	exited := d.exited
	d.mu.Unlock()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := ping(ctx, d.address); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("containerd daemon: not ready (see %s): %w", filepath.Join(d.cfg.Dir, "containerd.log"), ctx.Err())
		case <-exited:
			return fmt.Errorf("containerd daemon: exited during start (see %s)", filepath.Join(d.cfg.Dir, "containerd.log"))
		case <-tick.C:
		}
	}
}

// ping checks that a containerd answers at address.
func ping(ctx context.Context, address string) error {
	if _, err := os.Stat(address); err != nil {
		return err
	}
	conn, err := net.DialTimeout("unix", address, time.Second)
	if err != nil {
		return err
	}
	_ = conn.Close()
	c, err := client.New(address, client.WithTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.Version(pctx)
	return err
}

// supervise restarts the daemon after each unexpected exit, with exponential backoff that
// resets once a daemon has stayed up for a minute.
func (d *Daemon) supervise() {
	defer close(d.done)
	backoff := 100 * time.Millisecond
	for {
		d.mu.Lock()
		exited, cmd := d.exited, d.cmd
		d.mu.Unlock()
		started := time.Now()
		<-exited
		d.mu.Lock()
		stopping := d.stopping
		d.mu.Unlock()
		if stopping {
			return
		}
		err := fmt.Errorf("containerd daemon exited unexpectedly: %v", cmd.ProcessState)
		d.log.Error("containerd crashed; restarting", "err", err, "backoff", backoff)
		select {
		case d.crashes <- err:
		default:
		}
		if time.Since(started) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-d.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, d.cfg.MaxBackoff)
		d.mu.Lock()
		stopping = d.stopping
		d.mu.Unlock()
		if stopping {
			return
		}
		if err := d.launch(); err != nil {
			d.log.Error("containerd restart failed", "err", err)
			// Keep an exited channel so the loop waits for the backoff again.
			closed := make(chan struct{})
			close(closed)
			d.mu.Lock()
			d.exited = closed
			d.mu.Unlock()
			continue
		}
		d.mu.Lock()
		stopping, cur := d.stopping, d.cmd
		d.mu.Unlock()
		if stopping {
			// Stop ran while this one started; end it too.
			_ = cur.Process.Signal(syscall.SIGTERM)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := d.waitReady(ctx); err != nil {
			d.log.Error("containerd not ready after restart", "err", err)
		}
		cancel()
	}
}

// Stop ends the daemon: SIGTERM, then SIGKILL when ctx ends first. Running tasks keep
// running in their shims. Stop may be called more than once.
func (d *Daemon) Stop(ctx context.Context) error {
	d.mu.Lock()
	already := d.stopping
	d.stopping = true
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	if !already {
		close(d.stop)
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	var err error
	select {
	case <-exited:
	case <-ctx.Done():
		_ = d.kill()
		<-exited
		err = fmt.Errorf("containerd daemon: killed after stop timeout: %w", ctx.Err())
	}
	select {
	case <-d.done:
	case <-ctx.Done():
		_ = d.kill()
		<-d.done
	}
	d.endLauncher()
	_ = os.Remove(d.pidPath())
	return err
}

// kill sends SIGKILL to the current process.
func (d *Daemon) kill() error {
	d.mu.Lock()
	cmd := d.cmd
	d.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	return cmd.Process.Kill()
}
