package engine

// The kfp-kubernetes platform options of a task: secrets and configmaps as environment
// variables or files, the downward API (fieldPathAsEnv), emptyDir volumes, PVC mounts,
// and the CreatePVC and DeletePVC driver operations. Secrets, configmaps and claims come
// from the stores in Config (SecretStore, ConfigMapStore, Volumes); the box serves them
// from its Kubernetes subset.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// platformEnvMounts adds a task's kfp-kubernetes environment and mounts to env and mounts.
func (e *Engine) platformEnvMounts(ctx context.Context, rs *runState, x *meta.Execution, k8s *spec.KubernetesExecutorConfig, podName string, env []string, mounts []runtime.Mount) ([]string, []runtime.Mount, error) {
	for _, f := range k8s.FieldPathAsEnv {
		env = append(env, f.Name+"="+fieldPath(f.FieldPath, podName, e.namespace(), k8s))
	}
	for _, src := range k8sSources(k8s) {
		name := e.platformParam(rs, x, src.nameParam, src.name)
		data, err := e.k8sData(ctx, src.kind, name)
		if err != nil {
			if src.optional {
				continue
			}
			return nil, nil, err
		}
		for _, ke := range src.keyToEnv {
			v, ok := data[ke[0]]
			if !ok && !src.optional {
				return nil, nil, fmt.Errorf("%s %q has no key %q", src.kind, name, ke[0])
			}
			env = append(env, ke[1]+"="+string(v))
		}
		if src.mountPath == "" {
			continue
		}
		dirMode, fileMode := os.FileMode(0o755), os.FileMode(0o644)
		if src.kind == "secret" {
			dirMode, fileMode = 0o700, 0o600
		}
		dir := filepath.Join(e.workDir(x), src.kind+"s", name)
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return nil, nil, err
		}
		for k, v := range data {
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(k)), v, fileMode); err != nil {
				return nil, nil, err
			}
		}
		mounts = append(mounts, runtime.Mount{Source: dir, Target: src.mountPath, ReadOnly: true})
	}
	for _, m := range k8s.EmptyDirMounts {
		dir := filepath.Join(e.workDir(x), "emptydir", m.VolumeName)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, err
		}
		mounts = append(mounts, runtime.Mount{Source: dir, Target: m.MountPath})
	}
	for _, m := range k8s.PVCMount {
		name := e.pvcName(rs, x, m)
		if e.cfg.Volumes == nil {
			return nil, nil, fmt.Errorf("persistentvolumeclaim %q: volumes are not configured on this kfp-box", name)
		}
		dir, err := e.cfg.Volumes.ResolveVolume(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		src, err := subPath(dir, m.SubPath)
		if err != nil {
			return nil, nil, fmt.Errorf("persistentvolumeclaim %q: %w", name, err)
		}
		if err := os.MkdirAll(src, 0o755); err != nil {
			return nil, nil, err
		}
		mounts = append(mounts, runtime.Mount{Source: src, Target: m.MountPath})
	}
	return env, mounts, nil
}

// pvcName resolves the volume name of a kfp-kubernetes PVC mount.
func (e *Engine) pvcName(rs *runState, x *meta.Execution, m spec.PVCMount) string {
	name := m.Constant
	switch {
	case m.PVCNameParameter != nil:
		name = e.platformParam(rs, x, m.PVCNameParameter, name)
	case m.ComponentInputParameter != "":
		name = e.parentInput(rs, x, m.ComponentInputParameter, name)
	case m.TaskOutputParameter != nil:
		name = e.siblingOutput(rs, x, m.TaskOutputParameter, name)
	}
	return name
}

// pvcNames are the volumes a task mounts, for its cache key as KFP computes it: the PVC
// mounts' names and, for a task using the run's workspace, that run's workspace (so such
// a task is reused within its run only, as on KFP, where the workspace PVC is per run).
func (e *Engine) pvcNames(rs *runState, x *meta.Execution, ctr *spec.ContainerSpec, k8s *spec.KubernetesExecutorConfig) []string {
	var names []string
	if k8s != nil {
		for _, m := range k8s.PVCMount {
			names = append(names, e.pvcName(rs, x, m))
		}
	}
	if usesWorkspace(rs, commandText(ctr), x) {
		names = append(names, "kfp-workspace-"+x.RunID)
	}
	return names
}

// platformParam resolves a platform *Parameter field (secret, config map and volume
// names) as the driver does: constants, the parent DAG's inputs, or a sibling's output.
func (e *Engine) platformParam(rs *runState, x *meta.Execution, p *spec.InputParameterSpec, literal string) string {
	if p == nil {
		return literal
	}
	switch {
	case p.RuntimeValue != nil:
		if v := p.RuntimeValue.ConstantValue(); v != nil {
			return formatParam(v)
		}
	case p.ComponentInputParameter != "":
		return e.parentInput(rs, x, p.ComponentInputParameter, literal)
	case p.TaskOutputParameter != nil:
		return e.siblingOutput(rs, x, p.TaskOutputParameter, literal)
	}
	return literal
}

// parentInput is an input parameter of x's parent DAG (else of x itself).
func (e *Engine) parentInput(rs *runState, x *meta.Execution, name, literal string) string {
	if parent := rs.execs[x.ParentID]; parent != nil {
		if v, ok := parent.Inputs.Parameters[name]; ok && v != nil {
			return formatParam(v)
		}
	}
	if v, ok := x.Inputs.Parameters[name]; ok && v != nil {
		return formatParam(v)
	}
	return literal
}

// siblingOutput is an output parameter of a task of the same DAG as x.
func (e *Engine) siblingOutput(rs *runState, x *meta.Execution, ref *spec.TaskOutputParameterSpec, literal string) string {
	for _, y := range rs.execs {
		if y.ParentID == x.ParentID && y.TaskKey == ref.ProducerTask && y.Kind != meta.KindIteration {
			if v, ok := y.Outputs.Parameters[ref.OutputParameterKey]; ok {
				return formatParam(v)
			}
		}
	}
	return literal
}

func (e *Engine) secret(ctx context.Context, name string) (map[string][]byte, error) {
	if e.cfg.Secrets == nil {
		return nil, fmt.Errorf("secret %q: secrets are not configured on this kfp-box", name)
	}
	d, err := e.cfg.Secrets.Secret(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, err)
	}
	return d, nil
}

func (e *Engine) configMap(ctx context.Context, name string) (map[string]string, error) {
	if e.cfg.ConfigMaps == nil {
		return nil, fmt.Errorf("configmap %q: configmaps are not configured on this kfp-box", name)
	}
	d, err := e.cfg.ConfigMaps.ConfigMap(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("configmap %q: %w", name, err)
	}
	return d, nil
}

// k8sSource is one secret or configmap a task reads, as environment variables or files.
type k8sSource struct {
	kind      string // "secret" or "configmap"
	name      string
	nameParam *spec.InputParameterSpec
	optional  bool
	keyToEnv  [][2]string // key, env var
	mountPath string      // "" when not mounted as files
}

// k8sSources lists the secrets and configmaps of a kfp-kubernetes executor config.
func k8sSources(k *spec.KubernetesExecutorConfig) []k8sSource {
	var out []k8sSource
	for _, s := range k.SecretAsEnv {
		src := k8sSource{kind: "secret", name: s.SecretName, nameParam: s.SecretNameParameter, optional: s.Optional}
		for _, ke := range s.KeyToEnv {
			src.keyToEnv = append(src.keyToEnv, [2]string{ke.SecretKey, ke.EnvVar})
		}
		out = append(out, src)
	}
	for _, s := range k.SecretAsVolume {
		out = append(out, k8sSource{kind: "secret", name: s.SecretName, nameParam: s.SecretNameParameter, optional: s.Optional, mountPath: s.MountPath})
	}
	for _, c := range k.ConfigMapAsEnv {
		src := k8sSource{kind: "configmap", name: c.ConfigMapName, nameParam: c.ConfigMapNameParameter, optional: c.Optional}
		for _, ke := range c.KeyToEnv {
			src.keyToEnv = append(src.keyToEnv, [2]string{ke.ConfigMapKey, ke.EnvVar})
		}
		out = append(out, src)
	}
	for _, c := range k.ConfigMapAsVolume {
		out = append(out, k8sSource{kind: "configmap", name: c.ConfigMapName, nameParam: c.ConfigMapNameParameter, optional: c.Optional, mountPath: c.MountPath})
	}
	return out
}

// k8sData returns a secret's or a configmap's data.
func (e *Engine) k8sData(ctx context.Context, kind, name string) (map[string][]byte, error) {
	if kind == "secret" {
		return e.secret(ctx, name)
	}
	d, err := e.configMap(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(d))
	for k, v := range d {
		out[k] = []byte(v)
	}
	return out, nil
}

// fieldPath emulates the Kubernetes downward API for fieldPathAsEnv.
func fieldPath(fp, podName, namespace string, k8s *spec.KubernetesExecutorConfig) string {
	switch fp {
	case "metadata.name":
		return podName
	case "metadata.namespace":
		return namespace
	case "spec.nodeName":
		h, _ := os.Hostname()
		return h
	case "status.podIP", "status.hostIP":
		return "127.0.0.1"
	}
	get := func(prefix string, m map[string]string) (string, bool) {
		if k, ok := strings.CutPrefix(fp, prefix+"['"); ok {
			return m[strings.TrimSuffix(k, "']")], true
		}
		return "", false
	}
	if k8s.PodMetadata != nil {
		if v, ok := get("metadata.labels", k8s.PodMetadata.Labels); ok {
			return v
		}
		if v, ok := get("metadata.annotations", k8s.PodMetadata.Annotations); ok {
			return v
		}
	}
	return ""
}

// volumeOp performs kfp-kubernetes' CreatePVC and DeletePVC, which KFP's driver runs
// without a container: they create and delete claims through Volumes.
func (e *Engine) volumeOp(ctx context.Context, rs *runState, x *meta.Execution, image string, now time.Time) prepared {
	c := cloneExec(x)
	p := x.Inputs.Parameters
	fail := func(err error) prepared {
		setExecState(c, meta.ExecFailed, fmt.Sprintf("task %q: %v", x.TaskName, err), now)
		return prepared{exec: c}
	}
	if e.cfg.Volumes == nil {
		return fail(errors.New("volumes are not configured on this kfp-box"))
	}
	switch {
	case strings.HasPrefix(image, "argostub/createpvc"):
		name := formatParam(p["pvc_name"])
		if name == "" {
			name = rs.info.ResourceName + formatParam(p["pvc_name_suffix"])
		}
		claim := VolumeClaim{Name: name, Size: formatParam(p["size"]), StorageClass: formatParam(p["storage_class_name"]),
			VolumeName: formatParam(p["volume_name"]), Run: x.RunID}
		if l, ok := p["access_modes"].([]any); ok {
			for _, m := range l {
				claim.AccessModes = append(claim.AccessModes, formatParam(m))
			}
		}
		if a, ok := p["annotations"].(map[string]any); ok {
			claim.Annotations = map[string]string{}
			for k, v := range a {
				claim.Annotations[k] = formatParam(v)
			}
		}
		if err := e.cfg.Volumes.CreateVolume(ctx, claim); err != nil {
			return fail(err)
		}
		c.Outputs = meta.IO{Parameters: map[string]any{"name": name}}
	case strings.HasPrefix(image, "argostub/deletepvc"):
		if err := e.cfg.Volumes.DeleteVolume(ctx, formatParam(p["pvc_name"])); err != nil {
			return fail(err)
		}
	default:
		return fail(fmt.Errorf("unknown driver operation %q", image))
	}
	setExecState(c, meta.ExecSucceeded, "", now)
	return prepared{exec: c}
}

// subPath is a mount's subPath inside dir; like Kubernetes, it may not leave the volume.
func subPath(dir, sub string) (string, error) {
	if sub == "" {
		return dir, nil
	}
	if filepath.IsAbs(sub) {
		return "", fmt.Errorf("subPath %q must be a relative path", sub)
	}
	for _, part := range strings.Split(filepath.ToSlash(sub), "/") {
		if part == ".." {
			return "", fmt.Errorf("subPath %q must not contain '..'", sub)
		}
	}
	return filepath.Join(dir, sub), nil
}

// taskVolumes are the claims a container task mounts: held while it runs, and again when
// it is re-adopted after a restart.
func (e *Engine) taskVolumes(rs *runState, x *meta.Execution) []string {
	_, comp := e.taskOf(rs, x)
	if comp == nil {
		return nil
	}
	k8s := rs.pipe.Platform.Kubernetes(comp.ExecutorLabel)
	if k8s == nil {
		return nil
	}
	var names []string
	for _, m := range k8s.PVCMount {
		names = append(names, e.pvcName(rs, x, m))
	}
	return names
}

// namespace is the runs' namespace (Config.Namespace, default "kubeflow").
func (e *Engine) namespace() string {
	if e.cfg.Namespace == "" {
		return "kubeflow"
	}
	return e.cfg.Namespace
}
