package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/kfp-box/kfp-box/appliance/pyenv"
	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/runtime/resources"
	"github.com/kfp-box/kfp-box/storage/meta"
	"github.com/kfp-box/kfp-box/storage/objects"
)

// OutputParamsDir is where a task writes output parameter files.
const OutputParamsDir = "/tmp/kfp/outputs"

// prepared is the outcome of preparing a launch: the record to persist (QUEUED, or
// already final for cache hits, importers and tasks that cannot start), artifacts to
// record, and the runtime start request when a task must run.
type prepared struct {
	exec      *meta.Execution
	artifacts []*meta.Artifact
	start     *startReq
}

type startReq struct {
	x     *meta.Execution
	spec  runtime.TaskSpec
	gpus  int
	accel string
	// deadline is kfp-kubernetes' activeDeadlineSeconds (0: none).
	deadline time.Duration
	// pythonDir is where the task's own Python environment goes ("" when it gets none).
	pythonDir string
	// volumes are the claims the task mounts: held from its start until it exits.
	volumes []string
}

// objectPath is the host file behind an object URI: DataDir/objects/<bucket>/<key>.
func (e *Engine) objectPath(uri string) (string, error) {
	u, err := objects.ParseURI(uri)
	if err != nil {
		return "", err
	}
	return filepath.Join(e.cfg.DataDir, "objects", u.Bucket, filepath.FromSlash(strings.TrimSuffix(u.Key, "/"))), nil
}

func (e *Engine) workDir(x *meta.Execution) string {
	return filepath.Join(e.cfg.DataDir, "work", x.RunID, x.ID, strconv.Itoa(x.Attempt))
}

// PodName is the name of the pod of a task attempt, as the Kubernetes subset shows it and
// the task sees it (KFP_POD_NAME): the attempt's runtime task id.
func PodName(runID, execID string, attempt int) string { return runtimeID(runID, execID, attempt) }

// runtimeID is the runtime task id of an attempt: safe as a container id.
func runtimeID(runID, execID string, attempt int) string {
	r := strings.ReplaceAll(runID, "-", "")
	if len(r) > 8 {
		r = r[:8]
	}
	return fmt.Sprintf("%s-%s-%d", r, execID, attempt)
}

// prepare turns a PENDING container or importer record into what to persist and start.
func (e *Engine) prepare(ctx context.Context, rs *runState, x *meta.Execution) prepared {
	now := e.cfg.Now()
	fail := func(err error) prepared {
		c := cloneExec(x)
		setExecState(c, meta.ExecFailed, fmt.Sprintf("task %q: %v", x.TaskName, err), now)
		return prepared{exec: c}
	}
	t, comp := e.taskOf(rs, x)
	if t == nil || comp == nil {
		return fail(errors.New("task not found in the pipeline spec"))
	}
	var ex *spec.ExecutorSpec
	if d := rs.pipe.Spec.DeploymentSpec; d != nil {
		ex = d.Executors[comp.ExecutorLabel]
	}
	if ex == nil {
		return fail(fmt.Errorf("executor %q not found", comp.ExecutorLabel))
	}
	if ex.Importer != nil {
		return e.runImporter(ctx, rs, x, ex.Importer, now)
	}
	if ex.Container == nil {
		return fail(fmt.Errorf("executor %q is not a container or importer (resolver and custom jobs are not supported)", comp.ExecutorLabel))
	}
	if strings.HasPrefix(ex.Container.Image, "argostub/") {
		return e.volumeOp(ctx, rs, x, ex.Container.Image, now)
	}
	tio, err := e.taskIO(ctx, rs, x, comp)
	if err != nil {
		return fail(err)
	}
	c := cloneExec(x)
	c.TaskRoot = tio.root
	// Cache.
	k8s := rs.pipe.Platform.Kubernetes(comp.ExecutorLabel)
	if e.cfg.CacheEnabled && t.CachingOptions != nil && t.CachingOptions.EnableCache {
		fp := fingerprint(t, comp, ex.Container, x.Inputs, e.pvcNames(rs, x, ex.Container, k8s))
		c.Fingerprint = fp
		if hit, ok := e.cacheHit(ctx, rs, c, fp, k8s, now); ok {
			return prepared{exec: hit}
		}
	}
	execInput, _ := json.Marshal(tio.executorInput())
	argv := tio.commandLine(append(append([]string(nil), ex.Container.Command...), ex.Container.Args...), string(execInput))
	if len(argv) == 0 {
		return fail(errors.New("container has no command"))
	}
	ts := runtime.TaskSpec{
		ID:      runtimeID(x.RunID, x.ID, x.Attempt),
		Image:   tio.resolve(ex.Container.Image, string(execInput)),
		Args:    argv,
		LogPath: e.logPath(x.RunID, x.ID),
		Labels:  map[string]string{"kfp-box/run": x.RunID, "kfp-box/execution": x.ID, "kfp-box/task": x.TaskKey, "kfp-box/component": t.ComponentRef.Name},
	}
	env, mounts, err := e.taskEnvMounts(ctx, rs, x, ex.Container, k8s, tio, string(execInput))
	if err != nil {
		return fail(err)
	}
	ts.Env, ts.Mounts = e.pipEnv(env, x.RunID, argv, ex.Container), mounts
	if k8s != nil {
		if k8s.ImagePullPolicy != "" {
			ts.PullPolicy = runtime.PullPolicy(k8s.ImagePullPolicy)
		}
		if sc := k8s.SecurityContext; sc != nil {
			ts.User, ts.Group = sc.RunAsUser, sc.RunAsGroup
		}
	}
	gpus, accel, err := applyResources(&ts, ex.Container.Resources, tio, string(execInput))
	if err != nil {
		return fail(err)
	}
	if gpus > 0 && e.cfg.GPUs == nil {
		return fail(fmt.Errorf("asks for %d GPU(s) but this machine has no GPUs configured", gpus))
	}
	if err := os.MkdirAll(tio.hostOutParams, 0o755); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(tio.hostRoot, 0o755); err != nil {
		return fail(err)
	}
	if err := e.giveRunToken(&ts, x); err != nil {
		return fail(err)
	}
	if err := e.confine(&ts, tio, e.workDir(x)); err != nil {
		return fail(err)
	}
	c.RuntimeTaskID = ts.ID
	c.LogPath = ts.LogPath
	c.RetryAt = time.Time{}
	setExecState(c, meta.ExecQueued, "", now)
	req := &startReq{x: c, spec: ts, gpus: gpus, accel: accel, volumes: e.taskVolumes(rs, x)}
	if e.cfg.Python != nil && pyenv.ParseCommand(argv).UsesPython {
		req.pythonDir = filepath.Join(e.workDir(c), "pyenv")
	}
	if k8s != nil && k8s.ActiveDeadlineSecs > 0 {
		req.deadline = time.Duration(k8s.ActiveDeadlineSecs) * time.Second
	}
	return prepared{exec: c, start: req}
}

// preparedIO is taskIO plus the host paths behind it.
type preparedIO struct {
	*taskIO
	root          string // task root URI
	hostRoot      string
	hostOutParams string
	outputFile    string // host path of the executor output file
	outDecl       *spec.OutputsSpec
	buckets       map[[2]string]bool // (scheme, bucket) pairs the task reaches
}

// taskIO resolves what a container task's placeholders see.
func (e *Engine) taskIO(ctx context.Context, rs *runState, x *meta.Execution, comp *spec.ComponentSpec) (*preparedIO, error) {
	root := x.TaskRoot
	if root == "" {
		base := strings.TrimSuffix(rs.pipelineRoot, "/")
		if q := strings.Index(base, "?"); q >= 0 {
			base = base[:q]
		}
		root = fmt.Sprintf("%s/%s/%s/%s/%s", base, rs.info.PipelineName, x.RunID, x.TaskKey, uuid.NewString())
	}
	hostRoot, err := e.objectPath(root)
	if err != nil {
		return nil, fmt.Errorf("pipeline root %q: %w", rs.pipelineRoot, err)
	}
	p := &preparedIO{
		root: root, hostRoot: hostRoot,
		hostOutParams: filepath.Join(e.workDir(x), "outputs"),
		outputFile:    filepath.Join(hostRoot, "output_metadata.json"),
		outDecl:       comp.OutputDefinitions,
		buckets:       map[[2]string]bool{},
	}
	if u, err := objects.ParseURI(root); err == nil {
		p.buckets[[2]string{u.Scheme, u.Bucket}] = true
	}
	var ids []string
	for _, refs := range x.Inputs.Artifacts {
		for _, r := range refs {
			ids = append(ids, r.ID)
			if u, err := objects.ParseURI(r.URI); err == nil {
				p.buckets[[2]string{u.Scheme, u.Bucket}] = true
			}
		}
	}
	recs := map[string]*meta.Artifact{}
	for _, id := range ids {
		if a := rs.pendingArts[id]; a != nil {
			recs[id] = a
		} else if a, err := e.cfg.Meta.GetArtifact(ctx, id); err == nil {
			recs[id] = a
		}
	}
	var inDecl map[string]*spec.ArtifactSpec
	if comp.InputDefinitions != nil {
		inDecl = comp.InputDefinitions.Artifacts
	}
	io := &taskIO{
		Params:        x.Inputs.Parameters,
		InArts:        inputViews(x.Inputs.Artifacts, recs, inDecl),
		OutArts:       map[string][]artifactView{},
		OutParamFiles: map[string]string{},
		OutputFile:    containerPath(root + "/output_metadata.json"),
		Pipeline:      e.pipelinePlaceholders(rs, x),
	}
	if d := comp.OutputDefinitions; d != nil {
		for name, a := range d.Artifacts {
			io.OutArts[name] = []artifactView{{
				Name: name, Title: a.ArtifactType.Title(), Version: a.ArtifactType.SchemaVersion,
				URI: root + "/" + name, Metadata: copyParams(a.Metadata),
			}}
		}
		for name := range d.Parameters {
			io.OutParamFiles[name] = OutputParamsDir + "/" + name
		}
	}
	p.taskIO = io
	return p, nil
}

func (e *Engine) pipelinePlaceholders(rs *runState, x *meta.Execution) map[string]string {
	r := rs.info
	return map[string]string{
		"{{$.pipeline_job_name}}":              r.DisplayName,
		"{{$.pipeline_job_resource_name}}":     r.ResourceName,
		"{{$.pipeline_job_uuid}}":              r.ID,
		"{{$.pipeline_task_name}}":             x.TaskKey,
		"{{$.pipeline_task_uuid}}":             x.ParentID,
		"{{$.pipeline_job_create_time_utc}}":   r.CreatedAt.UTC().Format(time.RFC3339),
		"{{$.pipeline_job_schedule_time_utc}}": r.ScheduledAt.UTC().Format(time.RFC3339),
		"{{$.workspace_path}}":                 WorkspacePath,
		"{{$.pipeline_root}}":                  rs.pipelineRoot,
	}
}

// taskEnvMounts builds a task's environment and bind mounts.
func (e *Engine) taskEnvMounts(ctx context.Context, rs *runState, x *meta.Execution, ctr *spec.ContainerSpec, k8s *spec.KubernetesExecutorConfig, tio *preparedIO, execInput string) ([]string, []runtime.Mount, error) {
	podName := runtimeID(x.RunID, x.ID, x.Attempt)
	env := []string{
		"KFP_POD_NAME=" + podName,
		"KFP_POD_UID=" + x.RunID + "-" + x.ID,
		"KFP_RUN_ID=" + x.RunID,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
	}
	for _, v := range ctr.Env {
		env = append(env, v.Name+"="+tio.resolve(v.Value, execInput))
	}
	var mounts []runtime.Mount
	// Mount only what the task can reach: object buckets when it has artifacts or sees the
	// executor input or output file, the output parameter directory when it has output
	// parameters. A task without either needs no mount namespace work at all.
	cmdText := commandText(ctr)
	needObjects := len(tio.InArts) > 0 || len(tio.OutArts) > 0 ||
		strings.Contains(cmdText, "{{$}}") || strings.Contains(cmdText, "{{$.outputs.output_file}}")
	if needObjects {
		pairs := make([][2]string, 0, len(tio.buckets))
		for p := range tio.buckets {
			pairs = append(pairs, p)
		}
		sort.Slice(pairs, func(i, j int) bool { return pairs[i][0]+pairs[i][1] < pairs[j][0]+pairs[j][1] })
		for _, p := range pairs {
			src := filepath.Join(e.cfg.DataDir, "objects", p[1])
			if err := os.MkdirAll(src, 0o755); err != nil {
				return nil, nil, err
			}
			target := containerPath(p[0] + "://" + p[1])
			mounts = append(mounts, runtime.Mount{Source: src, Target: target})
		}
	}
	if len(tio.OutParamFiles) > 0 {
		mounts = append(mounts, runtime.Mount{Source: tio.hostOutParams, Target: OutputParamsDir})
	}
	if usesWorkspace(rs, cmdText, x) {
		dir := filepath.Join(e.cfg.DataDir, "workspaces", x.RunID)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, err
		}
		mounts = append(mounts, runtime.Mount{Source: dir, Target: WorkspacePath})
	}
	if k8s == nil {
		return env, mounts, nil
	}
	return e.platformEnvMounts(ctx, rs, x, k8s, podName, env, mounts)
}

// commandText is the container's command and args, unresolved, NUL-separated: what the
// checks for placeholders and paths look at.
func commandText(ctr *spec.ContainerSpec) string {
	return strings.Join(append(append([]string{}, ctr.Command...), ctr.Args...), "\x00")
}

// usesWorkspace reports whether a task gets the run's workspace at /kfp-workspace: the
// pipeline configures one (pipelineConfig.workspace), or the task refers to it.
func usesWorkspace(rs *runState, cmdText string, x *meta.Execution) bool {
	if p := rs.pipe.Platform; p != nil {
		if k := p.Platforms["kubernetes"]; k != nil && strings.Contains(string(k.PipelineConfig), `"workspace"`) {
			return true
		}
	}
	if strings.Contains(cmdText, WorkspacePath) || strings.Contains(cmdText, "{{$.workspace_path}}") {
		return true
	}
	for _, v := range x.Inputs.Parameters {
		if s, ok := v.(string); ok && strings.Contains(s, WorkspacePath) {
			return true
		}
	}
	return false
}

// applyResources maps a container's resources to runtime limits and returns the GPU count
// and accelerator type asked for.
func applyResources(ts *runtime.TaskSpec, r *spec.ResourceSpec, tio *preparedIO, execInput string) (int, string, error) {
	if r == nil {
		return 0, "", nil
	}
	var err error
	q := func(s string) string { return tio.resolve(s, execInput) }
	if s := q(r.ResourceCPULimit); s != "" {
		if ts.Resources.CPULimit, err = resources.CPU(s); err != nil {
			return 0, "", fmt.Errorf("cpu limit: %w", err)
		}
	} else if r.CPULimit > 0 {
		ts.Resources.CPULimit = r.CPULimit
	}
	if s := q(r.ResourceCPURequest); s != "" {
		if ts.Resources.CPURequest, err = resources.CPU(s); err != nil {
			return 0, "", fmt.Errorf("cpu request: %w", err)
		}
	}
	if s := q(r.ResourceMemoryLimit); s != "" {
		if ts.Resources.MemoryLimit, err = resources.MemoryBytes(s); err != nil {
			return 0, "", fmt.Errorf("memory limit: %w", err)
		}
	} else if r.MemoryLimit > 0 {
		if ts.Resources.MemoryLimit, err = resources.DeprecatedMemoryGB(r.MemoryLimit); err != nil {
			return 0, "", fmt.Errorf("memory limit: %w", err)
		}
	}
	if s := q(r.ResourceMemoryRequest); s != "" {
		if ts.Resources.MemoryRequest, err = resources.MemoryBytes(s); err != nil {
			return 0, "", fmt.Errorf("memory request: %w", err)
		}
	}
	a := r.Accelerator
	if a == nil {
		return 0, "", nil
	}
	n := int(a.Count)
	if s := q(a.ResourceCount); s != "" {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return 0, "", fmt.Errorf("accelerator count %q: %w", s, err)
		}
		n = v
	}
	typ := firstNonEmpty(q(a.ResourceType), a.Type)
	if n > 0 && !strings.Contains(typ, "nvidia") && typ != "" && !strings.HasPrefix(typ, "NVIDIA") {
		return 0, "", fmt.Errorf("accelerator %q is not supported (only NVIDIA GPUs)", typ)
	}
	if typ == "nvidia.com/gpu" {
		typ = ""
	}
	return n, typ, nil
}

// unsatisfiableRetry is how often a task whose GPU request cannot be met asks again.
var unsatisfiableRetry = 30 * time.Second

// allocateGPUs waits for the task's GPUs. A request the box cannot meet keeps the task
// waiting with the reason in its details; Terminate ends the wait.
func (e *Engine) allocateGPUs(rs *runState, s *startReq) (GPULease, error) {
	runID, execID, attempt := rs.id, s.x.ID, s.x.Attempt
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	e.mu.Lock()
	if rs.cancelRequested {
		cancel()
	}
	rs.allocCancel[execID] = cancel
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(rs.allocCancel, execID)
		e.mu.Unlock()
	}()
	wait := func(why string) {
		e.log.Info("task waits for GPUs", "run", runID, "task", s.x.TaskName, "reason", why)
		e.post(runID, taskEvent{execID: execID, attempt: attempt, kind: evWaiting, waiting: why})
	}
	for {
		lease, err := e.cfg.GPUs.Allocate(ctx, s.spec.ID, s.gpus, s.accel, wait)
		if err == nil || !errors.Is(err, ErrUnsatisfiable) {
			if err != nil && ctx.Err() != nil && e.ctx.Err() == nil {
				return nil, fmt.Errorf("task %q was terminated while it waited for GPUs", s.x.TaskName)
			}
			return lease, err
		}
		wait(err.Error())
		select {
		case <-ctx.Done():
			if e.ctx.Err() == nil {
				return nil, fmt.Errorf("task %q was terminated while it waited for GPUs", s.x.TaskName)
			}
			return nil, ctx.Err()
		case <-time.After(unsatisfiableRetry):
		}
	}
}

// startTask starts a prepared task in its own goroutine and waits for it there.
func (e *Engine) startTask(rs *runState, s *startReq) {
	e.holdSlot(rs.id, s.spec.ID, true) // with a cap, the slot was reserved when the step was planned
	runID, execID, attempt := rs.id, s.x.ID, s.x.Attempt
	e.tasks.Add(1)
	go func() {
		defer e.tasks.Done()
		ctx := e.ctx
		if s.gpus > 0 {
			lease, err := e.allocateGPUs(rs, s)
			if err != nil {
				if ctx.Err() == nil {
					e.post(runID, taskEvent{execID: execID, attempt: attempt, kind: evStartFailed, err: fmt.Errorf("gpus: %w", err)})
				}
				return
			}
			e.mu.Lock()
			if r := e.runs[runID]; r != nil {
				r.leases[execID] = lease
			}
			e.mu.Unlock()
			g := &runtime.GPUs{UUIDs: lease.UUIDs(), Env: lease.Env()}
			if rg, ok := lease.(interface{ RuntimeGPUs() *runtime.GPUs }); ok {
				g = rg.RuntimeGPUs()
			}
			s.spec.GPUs = g
			for k, v := range g.Env {
				s.spec.Env = append(s.spec.Env, k+"="+v)
			}
		}
		if s.pythonDir != "" {
			if err := e.preparePython(ctx, rs, s); err != nil {
				if ctx.Err() == nil {
					e.post(runID, taskEvent{execID: execID, attempt: attempt, kind: evStartFailed, err: err})
				}
				return
			}
		}
		if err := e.stageIn(ctx, s.x); err != nil {
			if ctx.Err() == nil {
				e.post(runID, taskEvent{execID: execID, attempt: attempt, kind: evStartFailed, err: err})
			}
			return
		}
		if len(s.volumes) > 0 {
			// The task holds its claims from its start until it exits: a claim deleted
			// meanwhile stays, Terminating, until then.
			if err := e.cfg.Volumes.AcquireVolumes(ctx, s.spec.ID, s.volumes); err != nil {
				if ctx.Err() == nil {
					e.post(runID, taskEvent{execID: execID, attempt: attempt, kind: evStartFailed, err: err})
				}
				return
			}
			defer e.cfg.Volumes.ReleaseVolumes(s.spec.ID)
		}
		t, err := e.cfg.Runtime.Start(ctx, s.spec)
		if err != nil {
			if errors.Is(err, runtime.ErrAlreadyExists) {
				t, err = e.cfg.Runtime.Lookup(ctx, s.spec.ID)
			}
			if err != nil {
				if ctx.Err() == nil {
					e.post(runID, taskEvent{execID: execID, attempt: attempt, kind: evStartFailed, err: err})
				}
				return
			}
		}
		var uuids []string
		if s.spec.GPUs != nil {
			uuids = s.spec.GPUs.UUIDs
		}
		e.post(runID, taskEvent{execID: execID, attempt: attempt, kind: evStarted, task: t, gpus: uuids})
		var expired atomic.Bool
		if s.deadline > 0 {
			timer := time.AfterFunc(s.deadline, func() {
				e.log.Info("task exceeded its active deadline", "run", runID, "task", s.x.TaskName, "deadline", s.deadline)
				expired.Store(true)
				_ = t.Kill(context.Background(), e.cfg.KillGrace)
			})
			defer timer.Stop()
		}
		st, err := t.Wait(e.ctx)
		if e.ctx.Err() != nil {
			return // engine stopping: the task is re-adopted by the next Start
		}
		if expired.Load() && st.Code != 0 {
			st.Message = strings.TrimPrefix(st.Message+"; ", "; ") + fmt.Sprintf("killed after exceeding activeDeadlineSeconds (%v)", s.deadline)
		}
		if err == nil && st.Code == 0 {
			err = e.stageOut(e.ctx, s.x)
		}
		e.post(runID, taskEvent{execID: execID, attempt: attempt, kind: evExited, task: t, status: st, err: err})
	}()
}

// wait blocks until t exits and posts the exit.
func (e *Engine) wait(runID, execID string, attempt int, t runtime.Task, x *meta.Execution) {
	st, err := t.Wait(e.ctx)
	if e.ctx.Err() != nil {
		return // engine stopping: the task is re-adopted by the next Start
	}
	if err == nil && st.Code == 0 {
		err = e.stageOut(e.ctx, x)
	}
	e.post(runID, taskEvent{execID: execID, attempt: attempt, kind: evExited, task: t, status: st, err: err})
}

// stageIn downloads a task's input artifacts from the remote store into their local paths,
// which the task sees through its bucket mounts.
func (e *Engine) stageIn(ctx context.Context, x *meta.Execution) error {
	if e.cfg.Remote == nil {
		return nil
	}
	var ts []objects.Transfer
	for _, refs := range x.Inputs.Artifacts {
		for _, r := range refs {
			u, err := objects.ParseURI(r.URI)
			if err != nil {
				return fmt.Errorf("stage in input artifact %q: %w", r.URI, err)
			}
			p, err := e.objectPath(r.URI)
			if err != nil {
				return err
			}
			ts = append(ts, objects.Transfer{URI: u, Path: p})
		}
	}
	if len(ts) == 0 {
		return nil
	}
	st, err := objects.StageIn(ctx, e.cfg.Remote, ts, objects.StageOptions{Logger: e.log})
	if err != nil {
		return fmt.Errorf("task %q: stage in inputs: %w", x.TaskName, err)
	}
	e.log.Debug("staged in", "task", x.TaskName, "files", st.Files, "bytes", st.Bytes)
	return nil
}

// stageOut uploads a succeeded task's root (output artifacts and executor output file) to
// the remote store.
func (e *Engine) stageOut(ctx context.Context, x *meta.Execution) error {
	if e.cfg.Remote == nil || x.TaskRoot == "" {
		return nil
	}
	u, err := objects.ParseURI(x.TaskRoot)
	if err != nil {
		return fmt.Errorf("stage out %q: %w", x.TaskRoot, err)
	}
	p, err := e.objectPath(x.TaskRoot)
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil // the task wrote no artifacts
	}
	st, err := objects.StageOut(ctx, e.cfg.Remote, []objects.Transfer{{URI: u, Path: p}}, objects.StageOptions{Logger: e.log})
	if err != nil {
		return fmt.Errorf("task %q: stage out outputs: %w", x.TaskName, err)
	}
	e.log.Debug("staged out", "task", x.TaskName, "files", st.Files, "bytes", st.Bytes)
	return nil
}

// executorOutput is the file a task may write at outputs.outputFile (kfp-compat §3.2).
type executorOutput struct {
	ParameterValues map[string]any `json:"parameterValues"`
	Artifacts       map[string]struct {
		Artifacts []struct {
			Name       string         `json:"name"`
			URI        string         `json:"uri"`
			Metadata   map[string]any `json:"metadata"`
			CustomPath string         `json:"custom_path"`
		} `json:"artifacts"`
	} `json:"artifacts"`
}

// collectOutputs reads a successful task's outputs (executor output file first, then the
// output parameter files) and records its artifacts and cache entry.
func (e *Engine) collectOutputs(ctx context.Context, rs *runState, x *meta.Execution, now time.Time) (*meta.Execution, []*meta.Artifact, *meta.CacheEntry, error) {
	_, comp := e.taskOf(rs, x)
	if comp == nil {
		return nil, nil, nil, errors.New("task not found in the pipeline spec")
	}
	hostRoot, err := e.objectPath(x.TaskRoot)
	if err != nil {
		return nil, nil, nil, err
	}
	var eo executorOutput
	if b, err := readTaskFile(filepath.Join(hostRoot, "output_metadata.json")); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		if err := json.Unmarshal(b, &eo); err != nil {
			return nil, nil, nil, fmt.Errorf("executor output file: %w", err)
		}
	}
	c := cloneExec(x)
	c.Outputs = meta.IO{}
	var arts []*meta.Artifact
	if d := comp.OutputDefinitions; d != nil {
		outDir := filepath.Join(e.workDir(x), "outputs")
		for _, name := range sortedKeys(d.Parameters) {
			ps := d.Parameters[name]
			v, ok := eo.ParameterValues[name]
			if !ok {
				b, err := readTaskFile(filepath.Join(outDir, name))
				if errors.Is(err, errNotTaskFile) {
					return nil, nil, nil, fmt.Errorf("output parameter %q: %w", name, err)
				}
				if err != nil {
					return nil, nil, nil, fmt.Errorf("output parameter %q was not produced (no executor output value and no file %s/%s)", name, OutputParamsDir, name)
				}
				v, err = parseOutputParam(ps.ParameterType, string(b))
				if err != nil {
					return nil, nil, nil, fmt.Errorf("output parameter %q: %w", name, err)
				}
			}
			if c.Outputs.Parameters == nil {
				c.Outputs.Parameters = map[string]any{}
			}
			c.Outputs.Parameters[name] = v
		}
		for _, name := range sortedKeys(d.Artifacts) {
			as := d.Artifacts[name]
			type entry struct {
				uri, customPath string
				md              map[string]any
			}
			entries := []entry{{uri: x.TaskRoot + "/" + name}}
			if o, ok := eo.Artifacts[name]; ok && len(o.Artifacts) > 0 {
				entries = entries[:0]
				for i, a := range o.Artifacts {
					en := entry{uri: a.URI, customPath: a.CustomPath, md: a.Metadata}
					if en.uri == "" {
						en.uri = x.TaskRoot + "/" + name
						if i > 0 {
							en.uri += "/" + strconv.Itoa(i)
						}
					}
					entries = append(entries, en)
				}
			}
			for _, en := range entries {
				md := copyParams(as.Metadata)
				if md == nil {
					md = map[string]any{}
				}
				for k, v := range en.md {
					md[k] = v
				}
				if en.customPath != "" {
					if err := e.copyCustomPath(ctx, rs, x, en.customPath, en.uri); err != nil {
						return nil, nil, nil, fmt.Errorf("output artifact %q: custom path: %w", name, err)
					}
				}
				if _, ok := md["display_name"]; !ok {
					md["display_name"] = name
				}
				id := e.artIDs.new()
				arts = append(arts, &meta.Artifact{
					ID: id, RunID: x.RunID, ExecutionID: x.ID, TaskName: x.TaskName, Name: name,
					SchemaTitle: as.ArtifactType.Title(), SchemaVersion: as.ArtifactType.SchemaVersion,
					URI: en.uri, Metadata: md, CreatedAt: now, Scope: rs.info.PipelineName,
				})
				if c.Outputs.Artifacts == nil {
					c.Outputs.Artifacts = map[string][]meta.ArtifactRef{}
				}
				c.Outputs.Artifacts[name] = append(c.Outputs.Artifacts[name], meta.ArtifactRef{ID: id, Name: name, URI: en.uri})
			}
		}
	}
	setExecState(c, meta.ExecSucceeded, "", now)
	var ce *meta.CacheEntry
	if x.Fingerprint != "" {
		ce = &meta.CacheEntry{Scope: rs.info.PipelineName, Fingerprint: x.Fingerprint, RunID: x.RunID,
			ExecutionID: x.ID, TaskName: x.TaskName, CreatedAt: now}
	}
	return c, arts, ce, nil
}

// copyCustomPath puts an output artifact that its task wrote at a custom path (the
// executor output's custom_path, the SDK's Artifact.set_path) into the artifact's object, as
// KFP's launcher uploads it from there. A host task's file is on the host: it is copied only
// if the task could have handed it over (copyHostCustomPath). Other runtimes copy it out of
// the exited task's own file system. With an external object store the object is uploaded.
func (e *Engine) copyCustomPath(ctx context.Context, rs *runState, x *meta.Execution, src, uri string) error {
	dst, err := e.objectPath(uri)
	if err != nil {
		return err
	}
	if e.cfg.Runtime.Name() == "host" {
		if err := e.copyHostCustomPath(rs, x, src, uri); err != nil {
			return err
		}
	} else {
		fc, ok := e.cfg.Runtime.(runtime.FileCopier)
		if !ok {
			return fmt.Errorf("the %s runtime cannot copy files out of a task", e.cfg.Runtime.Name())
		}
		if err := fc.CopyOut(ctx, x.RuntimeTaskID, src, dst); err != nil {
			if errors.Is(err, runtime.ErrNotFound) {
				return fmt.Errorf("the task wrote nothing at %s", src)
			}
			return err
		}
	}
	if e.cfg.Remote == nil {
		return nil
	}
	u, err := objects.ParseURI(uri)
	if err != nil {
		return err
	}
	_, err = objects.StageOut(ctx, e.cfg.Remote, []objects.Transfer{{URI: u, Path: dst}}, objects.StageOptions{Logger: e.log})
	return err
}

// parseOutputParam parses an output parameter file by type, as the launcher does.
func parseOutputParam(typ, s string) (any, error) {
	switch typ {
	case spec.TypeString, "":
		return s, nil
	case spec.TypeNumberInteger:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return float64(n), nil
	case spec.TypeNumberDouble:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	case spec.TypeBoolean:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a boolean", s)
		}
		return b, nil
	case spec.TypeList:
		var l []any
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			return nil, fmt.Errorf("not a JSON list: %v", err)
		}
		return l, nil
	case spec.TypeStruct:
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, fmt.Errorf("not a JSON object: %v", err)
		}
		return m, nil
	}
	return s, nil
}

// runImporter imports an artifact by URI: an existing record with that URI in the
// pipeline's scope is reused unless reimport is set.
func (e *Engine) runImporter(ctx context.Context, rs *runState, x *meta.Execution, imp *spec.ImporterSpec, now time.Time) prepared {
	c := cloneExec(x)
	uri := ""
	if imp.ArtifactURI != nil {
		if n := imp.ArtifactURI.RuntimeParameter; n != "" {
			uri = formatParam(x.Inputs.Parameters[n])
		} else {
			uri = formatParam(imp.ArtifactURI.ConstantValue())
		}
	}
	if uri == "" {
		setExecState(c, meta.ExecFailed, fmt.Sprintf("task %q: importer has no artifact URI", x.TaskName), now)
		return prepared{exec: c}
	}
	md := map[string]any{}
	for k, v := range imp.Metadata {
		md[k] = v
		if s, ok := v.(string); ok && strings.Contains(s, "{{$.inputs.parameters[") {
			p := map[string]any{"__v": s}
			for pk, pv := range x.Inputs.Parameters {
				p[pk] = pv
			}
			expandSelfRefs(p)
			md[k] = p["__v"]
		}
	}
	scope := rs.info.PipelineName
	var arts []*meta.Artifact
	ref := meta.ArtifactRef{Name: "artifact", URI: uri}
	if a, err := e.cfg.Meta.FindArtifactByURI(ctx, scope, uri); err == nil && !imp.Reimport {
		ref.ID = a.ID
	} else {
		ref.ID = e.artIDs.new()
		arts = append(arts, &meta.Artifact{ID: ref.ID, RunID: x.RunID, ExecutionID: x.ID, TaskName: x.TaskName,
			Name: "artifact", SchemaTitle: imp.TypeSchema.Title(), SchemaVersion: imp.TypeSchema.SchemaVersion,
			URI: uri, Metadata: md, CreatedAt: now, Scope: scope})
	}
	c.Outputs = meta.IO{Artifacts: map[string][]meta.ArtifactRef{"artifact": {ref}}}
	setExecState(c, meta.ExecSucceeded, "", now)
	return prepared{exec: c, artifacts: arts}
}

// logTail returns the last n lines of a task log, without timestamps, joined by " | ".
func logTail(path string, n int) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 64<<10 {
		_, _ = f.Seek(fi.Size()-64<<10, io.SeekStart)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, runtime.LogText(sc.Text()))
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, " | ")
}
