package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
	"github.com/kfp-box/kfp-box/storage/objects"
)

// DefaultPipelineRoot is KFP's default artifact root.
const DefaultPipelineRoot = "minio://mlpipeline/v2/artifacts"

// Sentinel errors.
var (
	// ErrStopped is returned after Stop.
	ErrStopped = errors.New("engine stopped")
	// ErrNotRetryable is returned by Retry for a run that did not fail.
	ErrNotRetryable = errors.New("run cannot be retried")
)

// GPULease is a set of GPUs held by one task until Release.
type GPULease interface {
	// UUIDs are the allocated GPUs.
	UUIDs() []string
	// Env is added to the task's environment.
	Env() map[string]string
	// Release gives the GPUs back.
	Release()
}

// ErrUnsatisfiable is wrapped by allocation errors that waiting for other tasks cannot fix
// (no GPUs at all, or fewer matching GPUs than asked for). The task stays pending with the
// error as its reason, as an unschedulable pod does, and the engine asks again from time to
// time (GPUs may appear after a driver install and restart of NVML).
var ErrUnsatisfiable = errors.New("cannot be satisfied on this box now")

// GPUAllocator hands out GPUs exclusively. A lease may also implement
// interface{ RuntimeGPUs() *runtime.GPUs } to pass device nodes and mounts to the runtime.
type GPUAllocator interface {
	// Allocate blocks until count GPUs matching accelerator ("" = any) are free, calling
	// onWait with a reason while it waits, or until ctx ends.
	Allocate(ctx context.Context, owner string, count int, accelerator string, onWait func(string)) (GPULease, error)
}

// GPURestorer is implemented by allocators that can take back the GPUs of a task re-adopted
// after a restart of the box, so that they are not handed to another task.
type GPURestorer interface {
	// Restore marks uuids as held by owner again and returns the lease.
	Restore(owner string, uuids []string) (GPULease, error)
}

// SecretStore returns the data of named secrets (secretAsEnv, secretAsVolume).
type SecretStore interface {
	// Secret returns the keys and values of secret name, or an error wrapping a not-found
	// sentinel.
	Secret(ctx context.Context, name string) (map[string][]byte, error)
}

// ConfigMapStore returns the data of named configmaps (configMapAsEnv, configMapAsVolume).
type ConfigMapStore interface {
	// ConfigMap returns the keys and values of configmap name, or an error wrapping a
	// not-found sentinel.
	ConfigMap(ctx context.Context, name string) (map[string]string, error)
}

// PythonEnvs prepares the Python environment of a task that runs Python.
type PythonEnvs interface {
	// Prepare readies the environment for a task whose argv is args. dir is the task's
	// own directory (it may write there), path the PATH it would get otherwise, onWait is
	// called with a reason when the preparation takes time (a first install). It returns
	// environment variables to set (PATH replaced) and mounts the task needs.
	Prepare(ctx context.Context, args []string, dir, path string, onWait func(string)) ([]string, []runtime.Mount, error)
}

// Config configures an Engine.
type Config struct {
	Logger *slog.Logger
	Meta   *meta.Store
	// Runtime runs container tasks.
	Runtime runtime.Runtime
	// DataDir holds objects (DataDir/objects/<bucket>/<key>), task logs
	// (DataDir/logs/<run>/<execution>) and task scratch files (DataDir/work).
	DataDir string
	// Workers is the number of runs reconciled at once (default 4).
	Workers int
	// MaxParallelTasks caps running tasks over all runs (0 = unlimited).
	MaxParallelTasks int
	// CacheEnabled is the server-wide cache switch.
	CacheEnabled bool
	// MaxCacheStaleness ignores cache entries older than this (0 = any age). A task's pod
	// annotation pipelines.kubeflow.org/max_cache_staleness overrides it.
	MaxCacheStaleness time.Duration
	// DefaultPipelineRoot is used when neither the run nor the spec names one.
	DefaultPipelineRoot string
	// GPUs allocates accelerators (nil: tasks asking for GPUs fail).
	GPUs GPUAllocator
	// Remote is an external object store (S3, SeaweedFS, MinIO). When set, the files under
	// DataDir/objects are only a local copy: a task's input artifacts are staged in from
	// Remote before it starts and its task root is staged out to Remote after it succeeds,
	// as KFP's launcher does. Nil when the local files are the store itself.
	Remote objects.Store
	// Secrets provides Kubernetes-style secrets (nil: tasks using secrets fail).
	Secrets SecretStore
	// ConfigMaps provides Kubernetes-style configmaps (nil: tasks using them fail).
	ConfigMaps ConfigMapStore
	// Namespace is the Kubernetes namespace runs execute in, what a task's downward-API
	// metadata.namespace reads (default "kubeflow", as on single-user KFP).
	Namespace string
	// Volumes provides PersistentVolumeClaims (nil: tasks mounting claims, CreatePVC and
	// DeletePVC fail).
	Volumes Volumes
	// TaskUser runs tasks whose platform spec names no runAsUser/runAsGroup as this user
	// (the host runtime's --host-user); nil leaves the runtime's default (the image's user
	// in a container, kfp-box's own user on the host). See confine.
	TaskUser *TaskUser
	// Hide are host paths no task may see (the data directory); see runtime.TaskSpec.Hide.
	Hide []string
	// RunToken makes the credential a run's tasks get to call the box's API (nil: none).
	// Each task finds it in the file KF_PIPELINES_SA_TOKEN_PATH names, where KFP mounts a
	// pod's service account token, and the API at KF_PIPELINES_ENDPOINT.
	RunToken func(runID string) string
	// APIURL is the box's API as tasks reach it (they share the host's network); "" when
	// it does not listen yet.
	APIURL func() string
	// KillGrace is how long a terminated task gets between SIGTERM and SIGKILL (default 10s).
	KillGrace time.Duration
	// PackageIndex returns the URL of the box's Python package index that tasks of a run
	// get as PIP_INDEX_URL (and its host as PIP_TRUSTED_HOST); "" or nil: none. It is the
	// one place that URL is made, so a run-scoped credential can be put into it.
	PackageIndex func(runID string) string
	// PackageUpstream is the upstream index the box pulls through ("" when offline); it
	// only shapes the message of a task that found no matching distribution.
	PackageUpstream string
	// Python gives host tasks that run Python an environment of their own (nil: tasks use
	// the interpreter their image or the host has).
	Python PythonEnvs
	// Now returns the current time (tests); default time.Now.
	Now func() time.Time
}

// Engine executes runs. Create it with New, then Start it.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	runs map[string]*runState
	// removing holds the runtime task ids being removed for deleted runs.
	removing map[string]bool
	queue    chan string
	queued   map[string]bool
	busy     map[string]bool
	dirty    map[string]bool
	// slots maps the runtime id of each task attempt holding a task slot to its run;
	// reserved counts slots reserved by planning steps in progress (see slots.go).
	slots    map[string]string
	reserved int
	// deletedPods holds the runtime ids of attempts killed by DeletePod (see pods.go).
	deletedPods map[string]bool
	starved     map[string]bool
	stopped     bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // workers
	tasks  sync.WaitGroup // task goroutines

	execIDs ids
	artIDs  ids
}

// New builds an engine; it does nothing until Start.
func New(cfg Config) (*Engine, error) {
	if cfg.Meta == nil || cfg.Runtime == nil || cfg.DataDir == "" {
		return nil, fmt.Errorf("engine: Meta, Runtime and DataDir are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.DefaultPipelineRoot == "" {
		cfg.DefaultPipelineRoot = DefaultPipelineRoot
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Engine{
		cfg: cfg, log: cfg.Logger.With("component", "engine"),
		runs: map[string]*runState{}, queued: map[string]bool{}, busy: map[string]bool{},
		dirty: map[string]bool{}, starved: map[string]bool{}, slots: map[string]string{},
		deletedPods: map[string]bool{},
		queue:       make(chan string, 1<<16),
	}
	e.execIDs = ids{store: cfg.Meta, kind: "execution"}
	e.artIDs = ids{store: cfg.Meta, kind: "artifact"}
	return e, nil
}

// Start resumes every run that is not finished, re-adopting its running tasks, and starts
// the workers.
func (e *Engine) Start(ctx context.Context) error {
	e.ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for i := 0; i < e.cfg.Workers; i++ {
		e.wg.Add(1)
		go e.worker()
	}
	ids, err := e.cfg.Meta.ActiveRunIDs(ctx)
	if err != nil {
		return fmt.Errorf("engine: active runs: %w", err)
	}
	for _, id := range ids {
		e.enqueue(id)
	}
	e.log.Info("engine started", "resumed_runs", len(ids), "workers", e.cfg.Workers)
	return nil
}

// Stop stops planning and waiting; running tasks keep running and are re-adopted by the
// next Start.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return nil
	}
	e.stopped = true
	e.mu.Unlock()
	if e.cancel != nil {
		e.cancel()
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); e.tasks.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Submit hands a stored PENDING run to the engine.
func (e *Engine) Submit(ctx context.Context, runID string) error {
	if _, err := e.cfg.Meta.GetRun(ctx, runID); err != nil {
		return err
	}
	e.enqueue(runID)
	return nil
}

// Terminate stops a run: CANCELING at once, FAILED once its tasks stopped (KFP's
// behaviour, which wait_for_run_completion recognises).
func (e *Engine) Terminate(ctx context.Context, runID string) error {
	now := e.cfg.Now()
	_, err := e.cfg.Meta.UpdateRun(ctx, runID, func(r *meta.Run) error {
		if meta.IsTerminalRunState(r.State) || r.State == meta.RunCanceling {
			return errNoChange
		}
		r.State = meta.RunCanceling
		r.StateHistory = append(r.StateHistory, meta.StateEvent{UpdateTime: now, State: meta.RunCanceling})
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return err
	}
	e.mu.Lock()
	if rs := e.runs[runID]; rs != nil {
		rs.cancelRequested = true // read by the run's worker under e.mu
		for _, cancel := range rs.allocCancel {
			cancel() // tasks still waiting for GPUs stop waiting
		}
	}
	e.mu.Unlock()
	e.enqueue(runID)
	return nil
}

var errNoChange = errors.New("no change")

// RunDeleted implements api.RunDeletedNotifier: the run is reconciled at once, which finds
// it gone, stops its tasks and frees their slots.
func (e *Engine) RunDeleted(runID string) { e.enqueue(runID) }

// Retry re-executes the failed parts of a FAILED run: failed, canceled and omitted tasks
// are planned again; succeeded, cached and skipped ones are kept.
func (e *Engine) Retry(ctx context.Context, runID string) error {
	r, err := e.cfg.Meta.GetRun(ctx, runID)
	if err != nil {
		return err
	}
	if r.State != meta.RunFailed {
		return fmt.Errorf("run %q is %s: %w: %w", runID, r.State, ErrNotRetryable, meta.ErrFailedPrecondition)
	}
	e.mu.Lock()
	if e.busy[runID] || e.queued[runID] {
		e.mu.Unlock()
		return fmt.Errorf("run %q is still being finished: %w", runID, meta.ErrFailedPrecondition)
	}
	delete(e.runs, runID)
	e.mu.Unlock()
	execs, err := e.cfg.Meta.ListExecutions(ctx, runID)
	if err != nil {
		return err
	}
	now := e.cfg.Now()
	w := retryWrites(execs, now)
	if err := e.cfg.Meta.Commit(ctx, w); err != nil {
		return err
	}
	_, err = e.cfg.Meta.UpdateRun(ctx, runID, func(r *meta.Run) error {
		r.State = meta.RunRunning
		r.Error = nil
		r.FinishedAt = time.Time{}
		r.StateHistory = append(r.StateHistory, meta.StateEvent{UpdateTime: now, State: meta.RunRunning})
		return nil
	})
	if err != nil {
		return err
	}
	e.enqueue(runID)
	return nil
}

// retryWrites reopens a failed run's records: leaves that failed, were canceled or omitted
// are deleted (planned again from scratch), DAGs, loops and iterations that failed are
// running again. DAG records that failed before having children are deleted too.
func retryWrites(execs []*meta.Execution, now time.Time) *meta.Writes {
	hasKids := map[string]bool{}
	for _, x := range execs {
		hasKids[x.ParentID] = true
	}
	w := &meta.Writes{}
	for _, x := range execs {
		bad := x.State == meta.ExecFailed || x.State == meta.ExecCanceled || x.State == meta.ExecOmitted
		if !bad {
			continue
		}
		switch x.Kind {
		case meta.KindRoot, meta.KindDAG, meta.KindLoop, meta.KindIteration:
			if x.Kind != meta.KindRoot && !hasKids[x.ID] {
				w.DeleteExecutions = append(w.DeleteExecutions, [2]string{x.RunID, x.ID})
				continue
			}
			c := *x
			c.State = meta.ExecRunning
			c.Error = ""
			c.FinishedAt = time.Time{}
			c.StateHistory = append(append([]meta.StateEvent(nil), x.StateHistory...), meta.StateEvent{UpdateTime: now, State: meta.ExecRunning})
			w.Executions = append(w.Executions, &c)
		default:
			w.DeleteExecutions = append(w.DeleteExecutions, [2]string{x.RunID, x.ID})
		}
	}
	return w
}

// enqueue asks a worker to reconcile a run.
func (e *Engine) enqueue(runID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	if e.busy[runID] {
		e.dirty[runID] = true
		return
	}
	if e.queued[runID] {
		return
	}
	e.queued[runID] = true
	e.queue <- runID
}

func (e *Engine) worker() {
	defer e.wg.Done()
	for {
		select {
		case <-e.ctx.Done():
			return
		case id := <-e.queue:
			e.mu.Lock()
			delete(e.queued, id)
			e.busy[id] = true
			e.mu.Unlock()
			err := e.reconcile(e.ctx, id)
			e.mu.Lock()
			delete(e.busy, id)
			again := e.dirty[id]
			delete(e.dirty, id)
			e.mu.Unlock()
			if err != nil && e.ctx.Err() == nil {
				if e.gone(id) {
					// Deleted while it was reconciled (a write found no run): stop its
					// tasks and free their slots, as when the deletion is seen first.
					e.mu.Lock()
					rs := e.runs[id]
					e.mu.Unlock()
					if rs != nil {
						e.forget(rs)
					}
					e.releaseRunSlots(id)
					continue
				}
				e.log.Error("reconcile failed; retrying", "run", id, "err", err)
				e.mu.Lock()
				delete(e.runs, id) // reload from the store; adopt takes the slots of live tasks again
				e.mu.Unlock()
				e.releaseRunSlots(id)
				time.AfterFunc(time.Second, func() { e.enqueue(id) })
				continue
			}
			if again {
				e.enqueue(id)
			}
		}
	}
}

// gone reports whether a run no longer exists in the store.
func (e *Engine) gone(id string) bool {
	_, err := e.cfg.Meta.GetRun(e.ctx, id)
	return errors.Is(err, meta.ErrNotFound)
}

// ids hands out numeric ids reserved in blocks from the store.
type ids struct {
	store *meta.Store
	kind  string
	mu    sync.Mutex
	next  int64
	limit int64
}

const idBlock = 512

func (a *ids) new() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == 0 || a.next > a.limit {
		first, err := a.store.ReserveIDs(context.Background(), a.kind, idBlock)
		if err != nil {
			return strings.ReplaceAll(uuid.NewString(), "-", "")
		}
		a.next, a.limit = first, first+idBlock-1
	}
	id := a.next
	a.next++
	return strconv.FormatInt(id, 10)
}

// runState is the in-memory view of one run being executed. It is only touched by the
// worker reconciling the run, except events, which are guarded by Engine.mu.
type runState struct {
	id           string
	run          *meta.Run
	pipe         *spec.Pipeline
	info         runInfo
	pipelineRoot string
	execs        map[string]*meta.Execution
	handles      map[string]runtime.Task
	leases       map[string]GPULease
	// allocCancel stops the GPU waits of tasks not yet started; guarded by Engine.mu.
	allocCancel map[string]context.CancelFunc
	events      []taskEvent
	// cancelRequested is set by Terminate; guarded by Engine.mu.
	cancelRequested bool
	wake            *time.Timer
	wakeAt          time.Time
	adopted         bool
	// unsaved are records changed in memory only (lazily persisted RUNNING states).
	unsaved map[string]bool
	// pendingArts are artifacts of the step being committed, visible to its launches.
	pendingArts map[string]*meta.Artifact
	// pendingCache are the cache entries of the step being committed, by scope and
	// fingerprint.
	pendingCache map[string]*meta.CacheEntry
	flush        *time.Timer
}

func (rs *runState) list() []*meta.Execution {
	out := make([]*meta.Execution, 0, len(rs.execs))
	for _, x := range rs.execs {
		out = append(out, x)
	}
	return out
}

func (e *Engine) logPath(runID, execID string) string {
	return filepath.Join(e.cfg.DataDir, "logs", runID, execID)
}

// LogPath is where the log of a task (execution) of a run is kept.
func (e *Engine) LogPath(runID, execID string) string { return e.logPath(runID, execID) }
