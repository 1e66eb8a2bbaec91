package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kfp-box/kfp-box/appliance/engine"
	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// Pods are not stored: each task attempt of a run is shown as a core/v1 Pod in the runs'
// namespace, made on every read from the engine's execution records (/executions/...) and
// the run's frozen pipeline spec. Pods are read-only except DELETE, which kills the running
// attempt (engine.DeletePod).

// Labels and annotations the box puts on pods. The first three are KFP's.
const (
	LabelV2Component  = "pipelines.kubeflow.org/v2_component"
	LabelRunID        = "pipeline/runid"
	LabelCacheEnabled = "pipelines.kubeflow.org/cache_enabled"
	LabelCacheReused  = "pipelines.kubeflow.org/reused_from_cache"
	LabelTask         = "pipelines.kubeflow.org/task_name"
	LabelExecution    = "pipelines.kubeflow.org/execution_id"
	LabelAttempt      = "pipelines.kubeflow.org/attempt"
	AnnotationTask    = "pipelines.kubeflow.org/task_display_name"
	containerName     = "main"
	serviceAccount    = "pipeline-runner"
)

// PodSource is what pods are made from.
type PodSource struct {
	// Meta holds the runs, their specs and their executions.
	Meta *meta.Store
	// Delete kills a running attempt (engine.DeletePod); nil refuses DELETE.
	Delete func(ctx context.Context, runID, execID string, attempt int) error
}

type pods struct {
	src  PodSource
	node string

	mu    sync.Mutex
	specs map[string]*spec.Pipeline // run id -> its frozen spec (never changes)
}

// ServePods makes the store serve pods, logs and events from src.
func (s *Store) ServePods(src PodSource) {
	node, _ := os.Hostname()
	if node == "" {
		node = "localhost"
	}
	s.pods = &pods{src: src, node: strings.ToLower(node), specs: map[string]*spec.Pipeline{}}
}

// specOf returns a run's pipeline spec, parsed once.
func (p *pods) specOf(ctx context.Context, runID string) *spec.Pipeline {
	p.mu.Lock()
	sp, ok := p.specs[runID]
	p.mu.Unlock()
	if ok {
		return sp
	}
	raw, err := p.src.Meta.GetRunSpec(ctx, runID)
	if err != nil {
		return nil
	}
	sp, err = spec.FromJSON(raw)
	if err != nil {
		sp = nil
	}
	p.mu.Lock()
	if len(p.specs) >= 256 {
		clear(p.specs)
	}
	p.specs[runID] = sp
	p.mu.Unlock()
	return sp
}

// attempt is one start of a container task, read from its state history.
type attempt struct {
	n                        int
	queued, started, ended   time.Time
	state                    string // the state it ended in ("" while it runs)
	msg                      string
	waiting                  string
	exitCode                 int
	oomKilled, exitCodeKnown bool
}

var exitCodeRE = regexp.MustCompile(`exit code (-?\d+)`)

// attempts reads the attempts of a container execution from its state history: an attempt
// starts at QUEUED and ends at a terminal state or at a PENDING with an error (a retry).
// A PENDING without an error is a restart of the box putting the attempt back in the queue.
func attempts(x *meta.Execution) []attempt {
	var out []attempt
	open := false
	for _, ev := range x.StateHistory {
		msg := ""
		if ev.Error != nil {
			msg = ev.Error.Message
		}
		switch {
		case ev.State == meta.ExecQueued:
			if !open {
				out = append(out, attempt{n: len(out), queued: ev.UpdateTime})
				open = true
			}
		case ev.State == meta.ExecRunning && open:
			if out[len(out)-1].started.IsZero() {
				out[len(out)-1].started = ev.UpdateTime
			}
		case ev.State == meta.ExecPending && open && ev.Error != nil,
			meta.IsTerminalExecState(ev.State) && open:
			a := &out[len(out)-1]
			a.ended, a.state, a.msg = ev.UpdateTime, ev.State, msg
			if ev.State == meta.ExecPending {
				a.state = meta.ExecFailed
			}
			if m := exitCodeRE.FindStringSubmatch(msg); m != nil {
				a.exitCode, _ = strconv.Atoi(m[1])
				a.exitCodeKnown = true
			}
			a.oomKilled = strings.Contains(msg, "out of memory")
			open = false
		}
	}
	if n := len(out); n > 0 {
		last := &out[n-1]
		if open || meta.IsTerminalExecState(x.State) {
			last.n = x.Attempt
		}
		if open {
			last.waiting = x.Waiting
		} else if meta.IsTerminalExecState(x.State) && last.state == x.State {
			last.exitCode, last.exitCodeKnown = x.ExitCode, true
		}
	}
	return out
}

// runPods makes the pods of the container executions of one run.
// With only set, it makes the pods of that execution alone (its parents are still read).
func (p *pods) runPods(ctx context.Context, ns, runID string, execs []*meta.Execution, only string, rev int64) []*corev1.Pod {
	sp := p.specOf(ctx, runID)
	byID := make(map[string]*meta.Execution, len(execs))
	for _, x := range execs {
		byID[x.ID] = x
	}
	var out []*corev1.Pod
	for _, x := range execs {
		if x.Kind != meta.KindContainer || only != "" && x.ID != only {
			continue
		}
		if x.State == meta.ExecCached {
			out = append(out, p.pod(ns, x, byID, sp, attempt{n: 0, queued: x.CreatedAt, started: x.FinishedAt, ended: x.FinishedAt, state: meta.ExecCached, exitCodeKnown: true}, rev))
			continue
		}
		for _, a := range attempts(x) {
			name := engine.PodName(x.RunID, x.ID, a.n)
			if a.state != "" && strings.Contains(a.msg, "its pod "+name+" was deleted") {
				continue // a deleted pod is gone, as on Kubernetes; its log stays (logs --previous)
			}
			out = append(out, p.pod(ns, x, byID, sp, a, rev))
		}
	}
	return out
}

// containerOf finds the container and the kfp-kubernetes configuration of a task.
func containerOf(sp *spec.Pipeline, x *meta.Execution, byID map[string]*meta.Execution) (*spec.PipelineTaskSpec, *spec.ContainerSpec, *spec.KubernetesExecutorConfig) {
	if sp == nil || sp.Spec == nil {
		return nil, nil, nil
	}
	var dagOf func(d *meta.Execution, depth int) *spec.ComponentSpec
	taskOf := func(e *meta.Execution, depth int) *spec.PipelineTaskSpec {
		if e == nil || depth > 64 {
			return nil
		}
		pc := dagOf(byID[e.ParentID], depth+1)
		if pc == nil || pc.DAG == nil {
			return nil
		}
		return pc.DAG.Tasks[e.TaskKey]
	}
	dagOf = func(d *meta.Execution, depth int) *spec.ComponentSpec {
		if d == nil || depth > 64 {
			return nil
		}
		var t *spec.PipelineTaskSpec
		switch d.Kind {
		case meta.KindRoot:
			return sp.Spec.Root
		case meta.KindIteration:
			t = taskOf(byID[d.ParentID], depth+1)
		default:
			t = taskOf(d, depth+1)
		}
		if t == nil {
			return nil
		}
		return sp.Spec.Components[t.ComponentRef.Name]
	}
	t := taskOf(x, 0)
	if t == nil {
		return nil, nil, nil
	}
	comp := sp.Spec.Components[t.ComponentRef.Name]
	if comp == nil || sp.Spec.DeploymentSpec == nil {
		return t, nil, nil
	}
	ex := sp.Spec.DeploymentSpec.Executors[comp.ExecutorLabel]
	if ex == nil {
		return t, nil, nil
	}
	return t, ex.Container, sp.Platform.Kubernetes(comp.ExecutorLabel)
}

var labelValueRE = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$`)

func labelValue(v string) (string, bool) { return v, labelValueRE.MatchString(v) }

// pod is one attempt of x as a Pod.
func (p *pods) pod(ns string, x *meta.Execution, byID map[string]*meta.Execution, sp *spec.Pipeline, a attempt, rev int64) *corev1.Pod {
	name := engine.PodName(x.RunID, x.ID, a.n)
	t, ctr, k8s := containerOf(sp, x, byID)
	labels := map[string]string{
		LabelV2Component: "true",
		LabelRunID:       x.RunID,
		LabelExecution:   x.ID,
		LabelAttempt:     strconv.Itoa(a.n),
		LabelCacheEnabled: strconv.FormatBool(t != nil && t.CachingOptions != nil &&
			t.CachingOptions.EnableCache),
	}
	if v, ok := labelValue(x.TaskName); ok {
		labels[LabelTask] = v
	}
	annotations := map[string]string{AnnotationTask: x.TaskName}
	if x.State == meta.ExecCached {
		labels[LabelCacheReused] = "true"
	}
	c := corev1.Container{Name: containerName, ImagePullPolicy: corev1.PullIfNotPresent}
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			UID:               uidOf(name),
			ResourceVersion:   strconv.FormatInt(rev, 10),
			CreationTimestamp: metav1.NewTime(a.queued),
			Labels:            labels, Annotations: annotations,
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, NodeName: p.node,
			ServiceAccountName: serviceAccount, HostNetwork: true,
		},
	}
	if ctr != nil {
		c.Image, c.Command, c.Args = ctr.Image, ctr.Command, ctr.Args
		for _, e := range ctr.Env {
			c.Env = append(c.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
		}
		c.Resources = resourcesOf(ctr.Resources)
	}
	if k8s != nil {
		if k8s.ImagePullPolicy != "" {
			c.ImagePullPolicy = corev1.PullPolicy(k8s.ImagePullPolicy)
		}
		if len(k8s.NodeSelector) > 0 {
			var sel struct {
				Labels map[string]string `json:"labels"`
			}
			if json.Unmarshal(k8s.NodeSelector, &sel) == nil {
				pod.Spec.NodeSelector = sel.Labels
			}
		}
		if len(k8s.Tolerations) > 0 {
			_ = json.Unmarshal(k8s.Tolerations, &pod.Spec.Tolerations)
		}
		if md := k8s.PodMetadata; md != nil {
			for k, v := range md.Labels {
				if _, mine := labels[k]; !mine {
					labels[k] = v
				}
			}
			for k, v := range md.Annotations {
				if _, mine := annotations[k]; !mine {
					annotations[k] = v
				}
			}
		}
		if k8s.ActiveDeadlineSecs > 0 {
			d := int64(k8s.ActiveDeadlineSecs)
			pod.Spec.ActiveDeadlineSeconds = &d
		}
		// Claims the task mounts, where their names can be read from the records this view
		// has (constants and DAG inputs), so `kubectl describe pvc` lists the pods using one.
		for i, m := range k8s.PVCMount {
			claim := claimName(m, x, byID)
			if claim == "" {
				continue
			}
			vol := fmt.Sprintf("pvc-%d", i)
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: vol, MountPath: m.MountPath, SubPath: m.SubPath})
		}
	}
	pod.Spec.Containers = []corev1.Container{c}
	pod.Status = p.status(x, c, a)
	return pod
}

// claimName is the claim a PVC mount names when it is a constant or an input of the task's
// DAG ("" when it is another task's output, which this view does not read).
func claimName(m spec.PVCMount, x *meta.Execution, byID map[string]*meta.Execution) string {
	input := m.ComponentInputParameter
	if p := m.PVCNameParameter; p != nil {
		if p.RuntimeValue != nil {
			if v, ok := p.RuntimeValue.ConstantValue().(string); ok {
				return v
			}
		}
		if p.ComponentInputParameter != "" {
			input = p.ComponentInputParameter
		}
	}
	if input == "" {
		return m.Constant
	}
	if parent := byID[x.ParentID]; parent != nil {
		if v, ok := parent.Inputs.Parameters[input].(string); ok {
			return v
		}
	}
	if v, ok := x.Inputs.Parameters[input].(string); ok {
		return v
	}
	return m.Constant
}

// uidOf is a stable UID for a pod name.
func uidOf(name string) types.UID {
	return types.UID(uuid.NewSHA1(uuid.NameSpaceURL, []byte("kfp-box:pod:"+name)).String())
}

func resourcesOf(r *spec.ResourceSpec) corev1.ResourceRequirements {
	var out corev1.ResourceRequirements
	if r == nil {
		return out
	}
	set := func(m *corev1.ResourceList, name corev1.ResourceName, s string, f float64, unit string) {
		if s == "" && f > 0 {
			s = strconv.FormatFloat(f, 'f', -1, 64) + unit
		}
		if s == "" {
			return
		}
		q, err := resource.ParseQuantity(s)
		if err != nil {
			return
		}
		if *m == nil {
			*m = corev1.ResourceList{}
		}
		(*m)[name] = q
	}
	set(&out.Limits, corev1.ResourceCPU, r.ResourceCPULimit, r.CPULimit, "")
	set(&out.Limits, corev1.ResourceMemory, r.ResourceMemoryLimit, r.MemoryLimit, "G")
	set(&out.Requests, corev1.ResourceCPU, r.ResourceCPURequest, r.CPURequest, "")
	set(&out.Requests, corev1.ResourceMemory, r.ResourceMemoryRequest, r.MemoryRequest, "G")
	if acc := r.Accelerator; acc != nil {
		typ, count := acc.ResourceType, acc.ResourceCount
		if typ == "" {
			typ = acc.Type
		}
		if count == "" && acc.Count > 0 {
			count = strconv.FormatInt(int64(acc.Count), 10)
		}
		if typ != "" && count != "" {
			set(&out.Limits, corev1.ResourceName(typ), count, 0, "")
		}
	}
	return out
}

// status is the status of one attempt.
func (p *pods) status(x *meta.Execution, c corev1.Container, a attempt) corev1.PodStatus {
	st := corev1.PodStatus{HostIP: "127.0.0.1", PodIP: "127.0.0.1", QOSClass: corev1.PodQOSBestEffort}
	cs := corev1.ContainerStatus{Name: containerName, Image: c.Image, ImageID: c.Image}
	cond := func(t corev1.PodConditionType, ok bool, at time.Time, reason, msg string) {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.NewTime(at), Reason: reason, Message: msg})
	}
	scheduled := a.waiting == ""
	cond(corev1.PodScheduled, scheduled, a.queued, map[bool]string{false: "Unschedulable"}[scheduled], a.waiting)
	if !a.started.IsZero() {
		t := metav1.NewTime(a.started)
		st.StartTime = &t
	}
	switch {
	case a.state == "" && a.started.IsZero():
		st.Phase = corev1.PodPending
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating", Message: a.waiting}
		cond(corev1.PodInitialized, scheduled, a.queued, "", "")
		cond(corev1.ContainersReady, false, a.queued, "ContainersNotReady", "containers with unready status: [main]")
		cond(corev1.PodReady, false, a.queued, "ContainersNotReady", "containers with unready status: [main]")
	case a.state == "":
		st.Phase = corev1.PodRunning
		cs.Ready, cs.Started = true, boolPtr(true)
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(a.started)}
		cond(corev1.PodInitialized, true, a.queued, "", "")
		cond(corev1.ContainersReady, true, a.started, "", "")
		cond(corev1.PodReady, true, a.started, "", "")
	default:
		term := &corev1.ContainerStateTerminated{ExitCode: int32(a.exitCode), StartedAt: metav1.NewTime(a.started), FinishedAt: metav1.NewTime(a.ended), Message: a.msg}
		if a.started.IsZero() {
			term.StartedAt = metav1.NewTime(a.ended)
		}
		switch {
		case a.state == meta.ExecSucceeded || a.state == meta.ExecCached:
			st.Phase, term.Reason = corev1.PodSucceeded, "Completed"
			if a.state == meta.ExecCached && x.CacheSource != nil {
				term.Message = fmt.Sprintf("reused from cache: task %q of run %s", x.CacheSource.TaskName, x.CacheSource.RunID)
			}
		case a.oomKilled:
			st.Phase, term.Reason = corev1.PodFailed, "OOMKilled"
		case !a.exitCodeKnown || a.exitCode <= 0 && a.started.IsZero():
			st.Phase, term.Reason = corev1.PodFailed, "StartError"
			if !a.exitCodeKnown {
				term.ExitCode = 128
			}
		default:
			st.Phase, term.Reason = corev1.PodFailed, "Error"
		}
		if st.Phase == corev1.PodFailed {
			st.Message = a.msg
		}
		cs.State.Terminated = term
		cs.Started = boolPtr(false)
		cond(corev1.PodInitialized, true, a.queued, "", "")
		cond(corev1.ContainersReady, false, a.ended, "PodCompleted", "")
		cond(corev1.PodReady, false, a.ended, "PodCompleted", "")
	}
	st.ContainerStatuses = []corev1.ContainerStatus{cs}
	return st
}

func boolPtr(b bool) *bool { return &b }

// parsePodName splits a pod name into the run id prefix, the execution id and the attempt.
func parsePodName(name string) (runPrefix, execID string, attempt int, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil || n < 0 {
		return "", "", 0, false
	}
	rest := name[:i]
	j := strings.LastIndexByte(rest, '-')
	if j <= 0 || j == len(rest)-1 {
		return "", "", 0, false
	}
	return rest[:j], rest[j+1:], n, true
}

// podQuery selects which pods to make: one run, or all; one pod name, or all.
type podQuery struct {
	runID string // "" = every run
	name  string // "" = every pod
}

// listPods makes the pods of the runs' namespace, with the store revision they were read at.
func (s *Store) listPods(ctx context.Context, ns string, q podQuery) ([]*corev1.Pod, int64, error) {
	p := s.pods
	var out []*corev1.Pod
	var rev int64
	type runExecs struct {
		id    string
		execs []*meta.Execution
	}
	var runs []runExecs
	prefix := "/executions/"
	var wantExec string
	if q.runID != "" {
		prefix += q.runID + "/"
	} else if q.name != "" {
		rp, execID, _, ok := parsePodName(q.name)
		if !ok {
			return nil, 0, nil
		}
		prefix += rp
		wantExec = execID
	}
	err := s.kv.View(ctx, func(tx kv.Tx) error {
		rev = tx.Revision()
		return tx.Scan([]byte(prefix), nil, false, func(k, v []byte, _ int64) error {
			key := string(k[len("/executions/"):])
			runID, execID, ok := strings.Cut(key, "/")
			if !ok {
				return nil
			}
			if len(runs) == 0 || runs[len(runs)-1].id != runID {
				runs = append(runs, runExecs{id: runID})
			}
			_ = execID // every execution of the run: a task's parents say which component it runs
			var x meta.Execution
			if err := json.Unmarshal(v, &x); err != nil {
				return nil // a record this build cannot read is not a pod
			}
			runs[len(runs)-1].execs = append(runs[len(runs)-1].execs, &x)
			return nil
		})
	})
	if err != nil {
		return nil, 0, err
	}
	for _, r := range runs {
		for _, pod := range p.runPods(ctx, ns, r.id, r.execs, wantExec, rev) {
			if q.name == "" || pod.Name == q.name {
				out = append(out, pod)
			}
		}
	}
	return out, rev, nil
}

// getPod returns one pod.
func (s *Store) getPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	if s.pods != nil && ns == s.ns {
		pods, _, err := s.listPods(ctx, ns, podQuery{name: name})
		if err != nil {
			return nil, err
		}
		if len(pods) == 1 {
			return pods[0], nil
		}
	}
	return nil, fmt.Errorf("pods %q not found: %w", name, ErrNotFound)
}
