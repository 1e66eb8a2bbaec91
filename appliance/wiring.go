package appliance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	goruntime "runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kfp-box/kfp-box/appliance/api"
	"github.com/kfp-box/kfp-box/appliance/engine"
	"github.com/kfp-box/kfp-box/appliance/k8s"
	"github.com/kfp-box/kfp-box/gpu"
	"github.com/kfp-box/kfp-box/internal/registry"
	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/runtime/containerd"
	"github.com/kfp-box/kfp-box/runtime/host"
	"github.com/kfp-box/kfp-box/storage/objects"
	"github.com/kfp-box/kfp-box/storage/objects/local"
	"github.com/kfp-box/kfp-box/storage/objects/s3server"
	"github.com/kfp-box/kfp-box/ui"
)

func (a *Appliance) setupObjects(ctx context.Context) error {
	log := a.logger.With("component", "objects")
	if err := a.cfg.ResolveURLs(nil); err != nil { // a Config made without Load
		return err
	}
	id := a.cfg.ObjectStore
	sec := a.cfg.Section("object_store", id)
	st, err := objects.Open(ctx, id, objects.Options{DataDir: a.cfg.DataDir, Logger: log}, sec)
	if err != nil {
		return err
	}
	a.objects = st
	if id != local.ID {
		a.remote = st
		log.Info("using an external object store; artifacts are staged in and out around each task", "store", id, "settings", SectionView(sec))
		return nil
	}
	root := filepath.Join(a.cfg.DataDir, "objects")
	if a.cfg.S3Listen == "" || a.cfg.S3Listen == "off" {
		log.Info("embedded S3 server disabled")
		return nil
	}
	srv, err := s3server.New(s3server.Options{
		Root:            root,
		Listen:          a.cfg.S3Listen,
		CredentialsFile: filepath.Join(a.cfg.DataDir, S3CredentialsFile),
		EndpointFile:    filepath.Join(a.cfg.DataDir, S3EndpointFile),
		Logger:          log,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	a.s3 = srv
	a.onStop("s3", srv.Stop)
	access, _ := srv.Credentials()
	log.Info("embedded S3 serving", "endpoint", srv.Endpoint(), "access_key", access, "credentials", "kfp-box s3 credentials")
	return nil
}

// Files of the embedded S3 server in the data directory.
const (
	// S3CredentialsFile holds its generated keys (0600), written once.
	S3CredentialsFile = "s3-credentials.json"
	// S3EndpointFile holds the endpoint of its latest start.
	S3EndpointFile = "s3-endpoint"
)

func (a *Appliance) setupRuntime(ctx context.Context) error {
	log := a.logger.With("component", "runtime")
	opts := runtime.Options{DataDir: a.cfg.DataDir, Logger: log}
	section := func(id string) registry.Section { return a.cfg.Section("runtime", id) }
	id := a.cfg.Runtime
	if id == "auto" {
		// auto prefers containerd (images, isolation) and falls back to the host runtime.
		ctd, _ := section(containerd.ID).(*containerd.Settings)
		if ctd == nil {
			ctd = containerd.NewSettings()
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := containerd.Probe(pctx, containerd.ProbeOptions{Address: ctd.Address, DataDir: a.cfg.DataDir})
		cancel()
		if err != nil {
			log.Warn("containerd is not usable; tasks run as host processes (images are ignored)", "reason", err)
			id = host.ID
		} else {
			id = containerd.ID
		}
	}
	rt, err := runtime.Open(ctx, id, opts, section(id))
	if err != nil && a.cfg.Runtime == "auto" && id == containerd.ID && errors.Is(err, runtime.ErrUnavailable) {
		log.Warn("containerd failed to start; tasks run as host processes (images are ignored)", "reason", err)
		id = host.ID
		rt, err = runtime.Open(ctx, id, opts, section(id))
	}
	if err != nil {
		return err
	}
	a.runtime = rt
	a.onStop("runtime", func(context.Context) error { return rt.Close() })
	log.Info("task runtime ready", "runtime", rt.Name())
	if rt.Name() != host.ID {
		if a.cfg.HostUser != "" {
			log.Info("host_user applies to the host runtime only; containers run as their image's user or the platform spec's runAsUser", "host_user", a.cfg.HostUser)
		}
		return nil
	}
	tu, err := hostTaskUser(a.cfg.HostUser, log)
	if err != nil {
		return err
	}
	a.taskUser = tu
	return nil
}

func (a *Appliance) setupGPU(ctx context.Context) error {
	m, err := gpu.New(ctx, gpu.Options{Logger: a.logger.With("component", "gpu")})
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}
	a.gpus = m
	a.onStop("gpu", m.Stop)
	return nil
}

func (a *Appliance) setupEngine(ctx context.Context) error {
	workers := goruntime.NumCPU()
	if workers < 4 {
		workers = 4
	}
	parallel := a.cfg.MaxParallelTasks
	if parallel == 0 {
		parallel = 4 * goruntime.NumCPU()
	}
	e, err := engine.New(engine.Config{
		Logger:              a.logger, // the engine adds component=engine itself
		Meta:                a.meta,
		Runtime:             a.runtime,
		DataDir:             a.cfg.DataDir,
		Workers:             workers,
		MaxParallelTasks:    parallel,
		CacheEnabled:        a.cfg.CacheEnabled,
		DefaultPipelineRoot: objects.DefaultPipelineRoot,
		GPUs:                gpuAllocator{m: a.gpus, runtime: a.runtime.Name()},
		Remote:              a.remote,
		Secrets:             a.k8s,
		ConfigMaps:          a.k8s,
		Volumes:             a.k8s,
		Namespace:           a.cfg.Namespace,
		TaskUser:            a.taskUser,
		Hide:                []string{a.cfg.DataDir},
		RunToken:            a.runTokenFor(),
		APIURL:              a.taskAPIURL,
		PackageIndex:        a.packageIndexURL,
		PackageUpstream:     a.upstreamURL(),
		Python:              a.enginePython(),
	})
	if err != nil {
		return err
	}
	if err := e.Start(ctx); err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	a.engine = e
	a.onStop("engine", e.Stop)
	a.k8s.ServePods(k8s.PodSource{Meta: a.meta, Delete: e.DeletePod})
	// Claims deleted while in use by tasks that ended while the box was down go now that
	// the engine has taken back the tasks still running.
	if err := a.k8s.CollectVolumes(ctx); err != nil {
		a.logger.Warn("collect deleted volumes", "err", err)
	}
	return nil
}

func (a *Appliance) engineForAPI() api.Engine {
	if a.engine == nil {
		return nil
	}
	return a.engine
}

func (a *Appliance) uiHandler() http.Handler { return ui.Handler(a.cfg.UIDevURL) }

// metricsHandler serves the box's Prometheus metrics: GPUs, the engine's task slots, the Go
// runtime and the process.
func (a *Appliance) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if a.gpus != nil {
		reg.MustRegister(a.gpus.Collector())
	}
	if e := a.engine; e != nil {
		slot := func(name, help string, v func(engine.SlotStats) int) prometheus.Collector {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
				func() float64 { return float64(v(e.Slots())) })
		}
		reg.MustRegister(
			slot("kfpbox_engine_task_slots_used", "Task attempts holding a task slot (starting or running); 0 when idle.",
				func(s engine.SlotStats) int { return s.Used }),
			slot("kfpbox_engine_task_slots_reserved", "Task slots reserved by planning steps in progress.",
				func(s engine.SlotStats) int { return s.Reserved }),
			slot("kfpbox_engine_task_slots", "Task slots (tasks running at once; 0: no limit).",
				func(s engine.SlotStats) int { return s.Max }),
		)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// gpuAllocator adapts the GPU manager to the engine's allocator interface.
type gpuAllocator struct {
	m       *gpu.Manager
	runtime string
}

func (g gpuAllocator) Allocate(ctx context.Context, owner string, count int, accelerator string, onWait func(string)) (engine.GPULease, error) {
	l, err := g.m.Allocate(ctx, gpu.Request{Owner: owner, Count: count, Accelerator: accelerator, OnWait: onWait})
	if errors.Is(err, gpu.ErrUnsatisfiable) {
		return nil, fmt.Errorf("%w (%w)", err, engine.ErrUnsatisfiable)
	}
	if err != nil {
		return nil, err
	}
	inj, err := g.m.InjectionFor(l, g.runtime)
	if err != nil {
		l.Release()
		return nil, err
	}
	return gpuLease{Lease: l, inj: inj}, nil
}

// Restore takes back the GPUs of a task re-adopted after a restart.
func (g gpuAllocator) Restore(owner string, uuids []string) (engine.GPULease, error) {
	l, err := g.m.Restore(owner, uuids)
	if err != nil {
		return nil, err
	}
	return gpuLease{Lease: l}, nil
}

type gpuLease struct {
	*gpu.Lease
	inj *runtime.GPUs
}

// RuntimeGPUs passes device nodes, CDI names and driver mounts to the runtime.
func (l gpuLease) RuntimeGPUs() *runtime.GPUs { return l.inj }

// enginePython is the host tasks' environment manager, or nil (an untyped nil, so that
// the engine sees no manager) on the containerd runtime.
func (a *Appliance) enginePython() engine.PythonEnvs {
	if a.pyenvs == nil {
		return nil
	}
	return a.pyenvs
}
