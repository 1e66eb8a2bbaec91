package appliance

import (
	"context"

	"errors"
	"fmt"
	"github.com/gin-gonic/gin"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kfp-box/kfp-box/appliance/api"
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
	gpus    *gpu.Manager
	engine  *engine.Engine
	k8s     *k8s.Store
	api     *api.Server

	wheels   *wheelhouse.Store
	upstream *wheelhouse.Upstream // nil: offline
	python   pyenv.Interpreter
	pyenvs   *pyenv.Manager // host runtime only

	httpLn  net.Listener
	httpSrv *http.Server
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

func (a *Appliance) setupDataDir(context.Context) error {
	for _, d := range []string{a.cfg.DataDir, filepath.Join(a.cfg.DataDir, "objects"), filepath.Join(a.cfg.DataDir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (a *Appliance) setupStore(ctx context.Context) error {
	if a.cfg.DatastoreEndpoint != "" {
		return fmt.Errorf("%w: datastore_endpoint %q: only the embedded bbolt store is available in this build", ErrConfig, a.cfg.DatastoreEndpoint)
	}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	store, err := kv.Open(octx, "bolt", kv.Options{Path: filepath.Join(a.cfg.DataDir, "meta.db")})
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
	return nil
}

func (a *Appliance) setupAPI(ctx context.Context) error {
	a.api = api.New(api.Deps{
		Logger:       a.logger.With("component", "api"),
		Meta:         a.meta,
		Engine:       a.engineForAPI(),
		UI:           a.uiHandler(),
		Version:      Version,
		GPUs:         a.gpus,
		Objects:      a.objects,
		Metrics:      a.metricsHandler(),
		Routes:       []func(gin.IRouter){a.k8s.Routes, a.pypiRoutes},
		Wheels:       a.wheels,
		Preflight:    a.preflight,
		System:       a.systemInfo,
		GC:           a.collectGarbage,
		OnRunDeleted: a.runDeleted,
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
	a.httpSrv = &http.Server{Handler: a.api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	a.serveCh = make(chan error, 1)
	go func() {
		err := a.httpSrv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		a.serveCh <- err
	}()
	a.onStop("api", func(ctx context.Context) error { return a.httpSrv.Shutdown(ctx) })
	a.logger.Info("serving", "api", "http://"+ln.Addr().String()+"/apis/v2beta1", "ui", "http://"+ln.Addr().String()+"/")
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
