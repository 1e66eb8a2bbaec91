package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/appliance/api"
	"github.com/kfp-box/kfp-box/appliance/auth"
	"github.com/kfp-box/kfp-box/appliance/engine"
	"github.com/kfp-box/kfp-box/appliance/k8s"
	"github.com/kfp-box/kfp-box/appliance/pyenv"
	"github.com/kfp-box/kfp-box/appliance/schedule"
	"github.com/kfp-box/kfp-box/gpu"
	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/meta"
	"github.com/kfp-box/kfp-box/storage/objects"
	"github.com/kfp-box/kfp-box/storage/objects/s3server"
	"github.com/kfp-box/kfp-box/storage/wheelhouse"
)

// Version is set at build time with -ldflags "-X github.com/kfp-box/kfp-box/appliance.Version=...".
var Version = "dev"

// Appliance is one running box.
type Appliance struct {
	cfg    Config
	logger *slog.Logger

	kv      kv.Store
	meta    *meta.Store
	objects objects.Store
	remote  objects.Store // the external store, when artifacts are staged around tasks
	s3      *s3server.Server
	runtime runtime.Runtime
	// taskUser is who host tasks run as (nil: kfp-box's own user); see hostTaskUser.
	taskUser *engine.TaskUser
	gpus     *gpu.Manager
	engine   *engine.Engine
	k8s      *k8s.Store
	auth     *auth.Store
	api      *api.Server
	tls      *tlsInfo

	wheels   *wheelhouse.Store
	upstream *wheelhouse.Upstream // nil: offline
	python   pyenv.Interpreter
	pyenvs   *pyenv.Manager // host runtime only

	httpLn  net.Listener
	httpSrv *http.Server
	apiURL  atomic.Value // string: URL(), once the API listens (read by the engine's tasks)
	serveCh chan error

	gcMu sync.Mutex // one garbage collection at a time

	mu       sync.Mutex
	stops    []stopFn // in setup order; run in reverse
	shutdown bool
}

type stopFn struct {
	name string
	fn   func(ctx context.Context) error
}

// New sets up every component in order. On error it tears down what was set up.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Appliance, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("%w: data_dir: %v", ErrConfig, err)
	}
	cfg.DataDir = abs
	a := &Appliance{cfg: cfg, logger: logger}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"data directory", a.setupDataDir},
		{"store", a.setupStore},
		{"auth", a.setupAuth},
		{"objects", a.setupObjects},
		{"runtime", a.setupRuntime},
		{"gpu", a.setupGPU},
		{"wheelhouse", a.setupWheelhouse},
		{"engine", a.setupEngine},
		{"api", a.setupAPI},
	}
	for _, s := range steps {
		if err := s.fn(ctx); err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			_ = a.Shutdown(sctx)
			return nil, fmt.Errorf("setup %s: %w", s.name, err)
		}
	}
	return a, nil
}

func (a *Appliance) onStop(name string, fn func(context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stops = append(a.stops, stopFn{name, fn})
}

// setupDataDir makes the data directory, private to kfp-box's user (0700): that one
// directory is what keeps other local users out of the metadata, secrets, logs, task state
// and artifacts below it. The files inside keep ordinary modes, so that the directories
// bound into a task stay readable to the unprivileged user it runs as; the task sees them
// at their mount targets, never through the data directory, which is hidden from it.
func (a *Appliance) setupDataDir(context.Context) error {
	dir := a.cfg.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, perm&0o700|0o700); err != nil {
			return fmt.Errorf("make the data directory private: %w", err)
		}
		a.logger.Warn("the data directory was open to other users; made it private (0700)", "dir", dir, "mode_was", fmt.Sprintf("%#o", perm))
	}
	for _, d := range []string{filepath.Join(dir, "objects"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (a *Appliance) setupStore(ctx context.Context) error {
	id, err := DatastoreBackend(a.cfg.DatastoreEndpoint)
	if err != nil {
		return err
	}
	path := filepath.Join(a.cfg.DataDir, "meta.db")
	if id != "bolt" {
		path = a.cfg.DatastoreEndpoint
		a.logger.Info("metadata on an SQL datastore through kine", "component", "store", "endpoint", RedactDSN(path))
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := kv.Open(octx, id, kv.Options{Path: path, Logger: a.logger.With("component", "store")})
	if err != nil {
		return err
	}
	a.kv = store
	a.onStop("store", func(context.Context) error { return store.Close() })
	m, err := meta.Open(ctx, store, a.logger.With("component", "meta"))
	if err != nil {
		return err
	}
	a.meta = m
	a.k8s = k8s.NewStore(store)
	a.k8s.SetNamespace(a.cfg.Namespace)
	if err := a.k8s.EnsureNamespaces(ctx); err != nil {
		return err
	}
	skipped, err := a.k8s.OpenVolumes(ctx, filepath.Join(a.cfg.DataDir, "volumes"))
	if err != nil {
		return fmt.Errorf("volumes: %w", err)
	}
	if len(skipped) > 0 {
		a.logger.Warn("volumes whose names cannot name a PersistentVolumeClaim were moved to the runs' namespace without one",
			"dir", filepath.Join(a.cfg.DataDir, "volumes", a.cfg.Namespace), "names", skipped)
	}
	wctx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	if err := a.k8s.StartWatch(wctx); err != nil {
		stopWatch()
		return err
	}
	a.onStop("kubernetes watch", func(context.Context) error { stopWatch(); return nil })
	return nil
}

// setupAuth opens the token store; the admin token is made at the first start.
func (a *Appliance) setupAuth(ctx context.Context) error {
	st, err := auth.Open(ctx, a.kv, auth.Options{Dir: filepath.Join(a.cfg.DataDir, "auth"), RunLive: a.runLive})
	if err != nil {
		return err
	}
	a.auth = st
	return nil
}

// runTokenFor is what the engine hands tasks: run tokens when authentication is on.
func (a *Appliance) runTokenFor() func(string) string {
	if !a.AuthEnabled() || a.auth == nil {
		return nil
	}
	return a.auth.RunToken
}

// loopbackURL is how programs on this machine, tasks included, reach the API: plain HTTP
// on a loopback address, which the listener accepts from loopback peers whatever address it
// listens on. A listener on one other address is reached there, over HTTPS.
func (a *Appliance) loopbackURL() string {
	addr, ok := a.httpLn.Addr().(*net.TCPAddr)
	if !ok {
		return a.URL()
	}
	ip := addr.IP
	switch {
	case ip == nil || ip.IsUnspecified():
		ip = net.IPv4(127, 0, 0, 1)
		if addr.IP != nil && addr.IP.To4() == nil {
			ip = net.IPv6loopback
		}
	case !ip.IsLoopback():
		return a.URL()
	}
	return "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(addr.Port))
}

// taskAPIURL is the API's address as tasks reach it ("" before it listens).
func (a *Appliance) taskAPIURL() string {
	u, _ := a.apiURL.Load().(string)
	return u
}

// runLive says whether a run's tasks may still use its token.
func (a *Appliance) runLive(ctx context.Context, runID string) bool {
	r, err := a.meta.GetRun(ctx, runID)
	return err == nil && !meta.IsTerminalRunState(r.State)
}

// KubeconfigPath is the kubeconfig for the admin token, written at start.
func (a *Appliance) KubeconfigPath() string {
	return filepath.Join(a.cfg.DataDir, "auth", "kubeconfig")
}

// writeKubeconfig keeps $DATA/auth/kubeconfig pointing at this box with the admin token. It
// is rewritten only when the address changed; failing to write it (a full disk) is logged.
func (a *Appliance) writeKubeconfig() {
	tok, err := os.ReadFile(a.auth.AdminTokenPath())
	if err != nil {
		a.logger.Warn("kubeconfig not written", "err", err)
		return
	}
	var ca []byte
	if a.tls != nil {
		if ca, err = os.ReadFile(a.tls.certFile); err != nil {
			ca = nil
		}
	}
	data := auth.Kubeconfig(a.TLSURL(), strings.TrimSpace(string(tok)), ca, a.cfg.Namespace)
	p := a.KubeconfigPath()
	if old, err := os.ReadFile(p); err == nil && string(old) == string(data) {
		return
	}
	if err := writeFileAtomic(p, data, 0o600); err != nil {
		a.logger.Warn("kubeconfig not written", "path", p, "err", err)
	}
}

// AdminTokenPath is the file holding the admin token.
func (a *Appliance) AdminTokenPath() string { return a.auth.AdminTokenPath() }

// AuthEnabled says whether requests need a token.
func (a *Appliance) AuthEnabled() bool { return a.cfg.Auth != "none" }

// LoginPath makes a one-time UI login link's path ("" when authentication is off).
func (a *Appliance) LoginPath() string {
	if !a.AuthEnabled() {
		return ""
	}
	code, err := a.auth.LoginCode(api.LoginCodeTTL)
	if err != nil {
		return ""
	}
	return "/login?code=" + code
}

// URL is the box's base URL: http on loopback, https beyond.
func (a *Appliance) URL() string {
	if a.tls != nil && !a.tls.plainToo {
		return "https://" + a.httpLn.Addr().String()
	}
	return "http://" + a.httpLn.Addr().String()
}

// TLSURL is the box's https URL (its URL when it serves no TLS).
func (a *Appliance) TLSURL() string {
	if a.tls == nil {
		return a.URL()
	}
	return "https://" + a.httpLn.Addr().String()
}

// TLSFingerprint is the SHA-256 fingerprint of the serving certificate ("" without TLS).
func (a *Appliance) TLSFingerprint() (fingerprint, certFile string, selfSigned bool) {
	if a.tls == nil {
		return "", "", false
	}
	return a.tls.fingerprint, a.tls.certFile, a.tls.selfSigned
}

func (a *Appliance) setupAPI(ctx context.Context) error {
	guard := api.GuardConfig{AllowedHosts: a.cfg.AllowedHosts(), DevOrigin: devOrigin(a.cfg.UIDevURL)}
	if a.AuthEnabled() {
		guard.Auth = a.auth
	} else {
		a.logger.Warn("authentication is off (--auth none): any local user and any program on this machine can act as the box's owner")
	}
	tlsInfo, err := a.setupTLS()
	if err != nil {
		return err
	}
	a.tls = tlsInfo
	a.api = api.New(api.Deps{
		Guard:           guard,
		Tokens:          a.auth,
		Logger:          a.logger.With("component", "api"),
		Meta:            a.meta,
		Engine:          a.engineForAPI(),
		UI:              a.uiHandler(),
		Version:         Version,
		GPUs:            a.gpus,
		Objects:         a.objects,
		Metrics:         a.metricsHandler(),
		Routes:          []func(gin.IRouter){a.k8s.Routes, a.pypiRoutes},
		Wheels:          a.wheels,
		Preflight:       a.preflight,
		System:          a.systemInfo,
		GC:              a.collectGarbage,
		OnRunDeleted:    a.runDeleted,
		PackageURLHosts: strings.Split(a.cfg.PackageURLHosts, ","),
		LogDir:          filepath.Join(a.cfg.DataDir, "logs"),
		Images:          a.imageStore(),
	})
	sch := schedule.New(a.meta, a.api.RunCreator(), a.logger.With("component", "schedule"), nil)
	if err := sch.Start(ctx); err != nil {
		return fmt.Errorf("start scheduler: %w", err)
	}
	a.onStop("schedule", sch.Stop)
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return err
	}
	a.httpLn = ln
	a.httpSrv = &http.Server{
		Handler:           a.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelDebug),
	}
	if tlsInfo != nil {
		a.httpSrv.TLSConfig = tlsInfo.config
		ln = newDualListener(ln, tlsInfo.config, tlsInfo.plainToo)
	}
	a.serveCh = make(chan error, 1)
	go func() {
		err := a.httpSrv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		a.serveCh <- err
	}()
	a.onStop("api", func(ctx context.Context) error { return a.httpSrv.Shutdown(ctx) })
	a.apiURL.Store(a.loopbackURL())
	a.writeKubeconfig()
	a.logger.Info("serving", "api", a.URL()+"/apis/v2beta1", "ui", a.URL()+"/", "auth", a.cfg.Auth)
	return nil
}

// imageStore is the runtime's image store when it keeps images (containerd), else nil.
func (a *Appliance) imageStore() runtime.ImageStore {
	if is, ok := a.runtime.(runtime.ImageStore); ok {
		return is
	}
	return nil
}

// Addr is the address the API listens on.
func (a *Appliance) Addr() string { return a.httpLn.Addr().String() }

// S3 returns the embedded S3 server's endpoint and credentials (ok false when it is off).
func (a *Appliance) S3() (endpoint, accessKey, secretKey string, ok bool) {
	if a.s3 == nil {
		return "", "", "", false
	}
	access, secret := a.s3.Credentials()
	return a.s3.Endpoint(), access, secret, true
}

// Meta is the metadata store.
func (a *Appliance) Meta() *meta.Store { return a.meta }

// Wait blocks until ctx ends or the HTTP server fails.
func (a *Appliance) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-a.serveCh:
		return err
	}
}

// Shutdown stops every component in reverse setup order. It logs each failure, keeps going,
// and may be called more than once.
func (a *Appliance) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	if a.shutdown {
		a.mu.Unlock()
		return nil
	}
	a.shutdown = true
	stops := a.stops
	a.mu.Unlock()
	var errs []error
	for i := len(stops) - 1; i >= 0; i-- {
		s := stops[i]
		if err := s.fn(ctx); err != nil {
			a.logger.Error("stop failed", "component", s.name, "err", err)
			errs = append(errs, fmt.Errorf("stop %s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}
