package spec

import "encoding/json"

// PlatformSpec is the optional second document: platform-specific configuration.
type PlatformSpec struct {
	Platforms map[string]*SinglePlatformSpec `json:"platforms"`
}

// SinglePlatformSpec is one platform's configuration (only "kubernetes" is known).
type SinglePlatformSpec struct {
	DeploymentSpec *PlatformDeploymentSpec `json:"deploymentSpec,omitempty"`
	PipelineConfig json.RawMessage         `json:"pipelineConfig,omitempty"`
	Platform       string                  `json:"platform,omitempty"`
	Config         json.RawMessage         `json:"config,omitempty"`
}

// PlatformDeploymentSpec maps executor labels to their platform configuration.
type PlatformDeploymentSpec struct {
	Executors map[string]*KubernetesExecutorConfig `json:"executors,omitempty"`
}

// Kubernetes returns the Kubernetes executor config of an executor, or nil.
func (p *PlatformSpec) Kubernetes(executor string) *KubernetesExecutorConfig {
	if p == nil {
		return nil
	}
	k := p.Platforms["kubernetes"]
	if k == nil || k.DeploymentSpec == nil {
		return nil
	}
	return k.DeploymentSpec.Executors[executor]
}

// KubernetesExecutorConfig is kfp-kubernetes' per-executor configuration. Fields the box
// honours are typed; the rest are kept raw so nothing is lost when the spec is stored.
type KubernetesExecutorConfig struct {
	SecretAsVolume      []SecretAsVolume    `json:"secretAsVolume,omitempty"`
	SecretAsEnv         []SecretAsEnv       `json:"secretAsEnv,omitempty"`
	PVCMount            []PVCMount          `json:"pvcMount,omitempty"`
	NodeSelector        json.RawMessage     `json:"nodeSelector,omitempty"`
	PodMetadata         *PodMetadata        `json:"podMetadata,omitempty"`
	ImagePullSecret     json.RawMessage     `json:"imagePullSecret,omitempty"`
	ImagePullPolicy     string              `json:"imagePullPolicy,omitempty"`
	ConfigMapAsVolume   []ConfigMapAsVolume `json:"configMapAsVolume,omitempty"`
	ConfigMapAsEnv      []ConfigMapAsEnv    `json:"configMapAsEnv,omitempty"`
	ActiveDeadlineSecs  Int64               `json:"activeDeadlineSeconds,omitempty"`
	FieldPathAsEnv      []FieldPathAsEnv    `json:"fieldPathAsEnv,omitempty"`
	Tolerations         json.RawMessage     `json:"tolerations,omitempty"`
	GenericEphemeralVol json.RawMessage     `json:"genericEphemeralVolume,omitempty"`
	NodeAffinity        json.RawMessage     `json:"nodeAffinity,omitempty"`
	PodAffinity         json.RawMessage     `json:"podAffinity,omitempty"`
	EnabledSharedMemory *SharedMemory       `json:"enabledSharedMemory,omitempty"`
	EmptyDirMounts      []EmptyDirMount     `json:"emptyDirMounts,omitempty"`
	SecurityContext     *SecurityContext    `json:"securityContext,omitempty"`
	InitContainers      json.RawMessage     `json:"initContainers,omitempty"`
}

// SecretAsVolume mounts a secret as files.
type SecretAsVolume struct {
	SecretName          string              `json:"secretName,omitempty"`
	SecretNameParameter *InputParameterSpec `json:"secretNameParameter,omitempty"`
	MountPath           string              `json:"mountPath"`
	Optional            bool                `json:"optional,omitempty"`
}

// SecretAsEnv exposes secret keys as environment variables.
type SecretAsEnv struct {
	SecretName          string              `json:"secretName,omitempty"`
	SecretNameParameter *InputParameterSpec `json:"secretNameParameter,omitempty"`
	KeyToEnv            []SecretKeyToEnv    `json:"keyToEnv,omitempty"`
	Optional            bool                `json:"optional,omitempty"`
}

// SecretKeyToEnv maps one secret key to an env var.
type SecretKeyToEnv struct {
	SecretKey string `json:"secretKey"`
	EnvVar    string `json:"envVar"`
}

// PVCMount mounts a persistent volume claim (a named volume on the box).
type PVCMount struct {
	TaskOutputParameter     *TaskOutputParameterSpec `json:"taskOutputParameter,omitempty"`
	Constant                string                   `json:"constant,omitempty"`
	ComponentInputParameter string                   `json:"componentInputParameter,omitempty"`
	PVCNameParameter        *InputParameterSpec      `json:"pvcNameParameter,omitempty"`
	MountPath               string                   `json:"mountPath"`
	SubPath                 string                   `json:"subPath,omitempty"`
}

// PodMetadata adds labels and annotations to the task.
type PodMetadata struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ConfigMapAsVolume mounts a configmap as files.
type ConfigMapAsVolume struct {
	ConfigMapName          string              `json:"configMapName,omitempty"`
	ConfigMapNameParameter *InputParameterSpec `json:"configMapNameParameter,omitempty"`
	MountPath              string              `json:"mountPath"`
	Optional               bool                `json:"optional,omitempty"`
}

// ConfigMapAsEnv exposes configmap keys as environment variables.
type ConfigMapAsEnv struct {
	ConfigMapName          string              `json:"configMapName,omitempty"`
	ConfigMapNameParameter *InputParameterSpec `json:"configMapNameParameter,omitempty"`
	KeyToEnv               []ConfigMapKeyToEnv `json:"keyToEnv,omitempty"`
	Optional               bool                `json:"optional,omitempty"`
}

// ConfigMapKeyToEnv maps one configmap key to an env var.
type ConfigMapKeyToEnv struct {
	ConfigMapKey string `json:"configMapKey"`
	EnvVar       string `json:"envVar"`
}

// FieldPathAsEnv exposes a pod field (metadata.name, metadata.labels['x']...) as an env var.
type FieldPathAsEnv struct {
	Name      string `json:"name"`
	FieldPath string `json:"fieldPath"`
}

// SharedMemory sizes /dev/shm.
type SharedMemory struct {
	VolumeName string `json:"volumeName,omitempty"`
	Size       string `json:"size,omitempty"`
}

// EmptyDirMount mounts a scratch directory.
type EmptyDirMount struct {
	VolumeName string `json:"volumeName"`
	MountPath  string `json:"mountPath"`
	Medium     string `json:"medium,omitempty"`
	SizeLimit  string `json:"sizeLimit,omitempty"`
}

// SecurityContext sets the task's user and group.
type SecurityContext struct {
	RunAsUser    *int64 `json:"runAsUser,omitempty"`
	RunAsGroup   *int64 `json:"runAsGroup,omitempty"`
	RunAsNonRoot bool   `json:"runAsNonRoot,omitempty"`
}
