package spec

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Parameter types (parameterType).
const (
	TypeUnspecified     = "PARAMETER_TYPE_ENUM_UNSPECIFIED"
	TypeNumberDouble    = "NUMBER_DOUBLE"
	TypeNumberInteger   = "NUMBER_INTEGER"
	TypeString          = "STRING"
	TypeBoolean         = "BOOLEAN"
	TypeList            = "LIST"
	TypeStruct          = "STRUCT"
	TypeTaskFinalStatus = "TASK_FINAL_STATUS"
	TypeTaskConfig      = "TASK_CONFIG"
)

// Trigger strategies.
const (
	StrategyUnspecified  = "TRIGGER_STRATEGY_UNSPECIFIED"
	StrategyAllSucceeded = "ALL_UPSTREAM_TASKS_SUCCEEDED"
	StrategyAllCompleted = "ALL_UPSTREAM_TASKS_COMPLETED"
)

// PipelineSpec is the IR's top-level document.
type PipelineSpec struct {
	PipelineInfo        PipelineInfo              `json:"pipelineInfo"`
	Root                *ComponentSpec            `json:"root"`
	Components          map[string]*ComponentSpec `json:"components,omitempty"`
	DeploymentSpec      *DeploymentSpec           `json:"deploymentSpec,omitempty"`
	SchemaVersion       string                    `json:"schemaVersion"`
	SDKVersion          string                    `json:"sdkVersion,omitempty"`
	DefaultPipelineRoot string                    `json:"defaultPipelineRoot,omitempty"`
}

// PipelineInfo names the pipeline.
type PipelineInfo struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName,omitempty"`
	Description string `json:"description,omitempty"`
}

// ComponentSpec is a component: a DAG or an executor.
type ComponentSpec struct {
	InputDefinitions       *InputsSpec             `json:"inputDefinitions,omitempty"`
	OutputDefinitions      *OutputsSpec            `json:"outputDefinitions,omitempty"`
	DAG                    *DAGSpec                `json:"dag,omitempty"`
	ExecutorLabel          string                  `json:"executorLabel,omitempty"`
	TaskConfigPassthroughs []TaskConfigPassthrough `json:"taskConfigPassthroughs,omitempty"`
}

// TaskConfigPassthrough is one dsl.TaskConfig field passed to the task.
type TaskConfigPassthrough struct {
	Field       string `json:"field"`
	ApplyToTask bool   `json:"applyToTask,omitempty"`
}

// InputsSpec declares a component's inputs.
type InputsSpec struct {
	Parameters map[string]*ParameterSpec `json:"parameters,omitempty"`
	Artifacts  map[string]*ArtifactSpec  `json:"artifacts,omitempty"`
}

// OutputsSpec declares a component's outputs.
type OutputsSpec struct {
	Parameters map[string]*ParameterSpec `json:"parameters,omitempty"`
	Artifacts  map[string]*ArtifactSpec  `json:"artifacts,omitempty"`
}

// ParameterSpec declares one parameter.
type ParameterSpec struct {
	ParameterType string `json:"parameterType,omitempty"`
	// DefaultValue is the JSON default; empty when none is declared.
	DefaultValue json.RawMessage `json:"defaultValue,omitempty"`
	IsOptional   bool            `json:"isOptional,omitempty"`
	Description  string          `json:"description,omitempty"`
	Literals     []any           `json:"literals,omitempty"`
}

// HasDefault reports whether a default value is declared.
func (p *ParameterSpec) HasDefault() bool { return len(p.DefaultValue) > 0 }

// Default decodes the default value (nil when none).
func (p *ParameterSpec) Default() any {
	if !p.HasDefault() {
		return nil
	}
	var v any
	_ = json.Unmarshal(p.DefaultValue, &v)
	return v
}

// ArtifactSpec declares one artifact.
type ArtifactSpec struct {
	ArtifactType   ArtifactTypeSchema `json:"artifactType"`
	IsArtifactList bool               `json:"isArtifactList,omitempty"`
	IsOptional     bool               `json:"isOptional,omitempty"`
	Description    string             `json:"description,omitempty"`
	Metadata       map[string]any     `json:"metadata,omitempty"`
}

// ArtifactTypeSchema names an artifact type.
type ArtifactTypeSchema struct {
	SchemaTitle    string `json:"schemaTitle,omitempty"`
	SchemaVersion  string `json:"schemaVersion,omitempty"`
	InstanceSchema string `json:"instanceSchema,omitempty"`
	SchemaURI      string `json:"schemaUri,omitempty"`
}

// Title returns the schema title, reading it from the instance schema when needed.
func (a ArtifactTypeSchema) Title() string {
	if a.SchemaTitle != "" {
		return a.SchemaTitle
	}
	for _, line := range strings.Split(a.InstanceSchema, "\n") {
		if t, ok := strings.CutPrefix(strings.TrimSpace(line), "title:"); ok {
			return strings.TrimSpace(t)
		}
	}
	return "system.Artifact"
}

// DAGSpec is a component's DAG.
type DAGSpec struct {
	Tasks   map[string]*PipelineTaskSpec `json:"tasks,omitempty"`
	Outputs *DAGOutputsSpec              `json:"outputs,omitempty"`
}

// PipelineTaskSpec is one task of a DAG.
type PipelineTaskSpec struct {
	TaskInfo          TaskInfo               `json:"taskInfo"`
	Inputs            *TaskInputsSpec        `json:"inputs,omitempty"`
	DependentTasks    []string               `json:"dependentTasks,omitempty"`
	CachingOptions    *CachingOptions        `json:"cachingOptions,omitempty"`
	ComponentRef      ComponentRef           `json:"componentRef"`
	TriggerPolicy     *TriggerPolicy         `json:"triggerPolicy,omitempty"`
	ParameterIterator *ParameterIteratorSpec `json:"parameterIterator,omitempty"`
	ArtifactIterator  *ArtifactIteratorSpec  `json:"artifactIterator,omitempty"`
	IteratorPolicy    *IteratorPolicy        `json:"iteratorPolicy,omitempty"`
	RetryPolicy       *RetryPolicy           `json:"retryPolicy,omitempty"`
}

// TaskInfo holds the task's display name.
type TaskInfo struct {
	Name string `json:"name"`
}

// ComponentRef names the task's component.
type ComponentRef struct {
	Name string `json:"name"`
}

// CachingOptions control caching of a task.
type CachingOptions struct {
	EnableCache bool   `json:"enableCache,omitempty"`
	CacheKey    string `json:"cacheKey,omitempty"`
}

// TriggerPolicy is a task's condition and strategy.
type TriggerPolicy struct {
	Condition string `json:"condition,omitempty"`
	Strategy  string `json:"strategy,omitempty"`
}

// ParameterIteratorSpec is a ParallelFor over parameters.
type ParameterIteratorSpec struct {
	Items     ParameterItems `json:"items"`
	ItemInput string         `json:"itemInput"`
}

// ParameterItems is the list a parameter iterator walks.
type ParameterItems struct {
	Raw            string `json:"raw,omitempty"`
	InputParameter string `json:"inputParameter,omitempty"`
}

// ArtifactIteratorSpec is a ParallelFor over artifacts.
type ArtifactIteratorSpec struct {
	Items     ArtifactItems `json:"items"`
	ItemInput string        `json:"itemInput"`
}

// ArtifactItems is the list an artifact iterator walks.
type ArtifactItems struct {
	InputArtifact string `json:"inputArtifact,omitempty"`
}

// IteratorPolicy limits a loop's parallelism (0 = unlimited).
type IteratorPolicy struct {
	ParallelismLimit int `json:"parallelismLimit,omitempty"`
}

// RetryPolicy is a task's retry policy.
type RetryPolicy struct {
	MaxRetryCount      int     `json:"maxRetryCount,omitempty"`
	BackoffDuration    string  `json:"backoffDuration,omitempty"`
	BackoffFactor      float64 `json:"backoffFactor,omitempty"`
	BackoffMaxDuration string  `json:"backoffMaxDuration,omitempty"`
}

// TaskInputsSpec wires a task's inputs.
type TaskInputsSpec struct {
	Parameters map[string]*InputParameterSpec `json:"parameters,omitempty"`
	Artifacts  map[string]*InputArtifactSpec  `json:"artifacts,omitempty"`
}

// InputParameterSpec says where one input parameter's value comes from.
type InputParameterSpec struct {
	ComponentInputParameter     string                   `json:"componentInputParameter,omitempty"`
	TaskOutputParameter         *TaskOutputParameterSpec `json:"taskOutputParameter,omitempty"`
	RuntimeValue                *ValueOrRuntimeParameter `json:"runtimeValue,omitempty"`
	TaskFinalStatus             *TaskFinalStatusSpec     `json:"taskFinalStatus,omitempty"`
	ParameterExpressionSelector string                   `json:"parameterExpressionSelector,omitempty"`
}

// TaskOutputParameterSpec references a sibling's output parameter.
type TaskOutputParameterSpec struct {
	ProducerTask       string `json:"producerTask"`
	OutputParameterKey string `json:"outputParameterKey"`
}

// TaskFinalStatusSpec references the task whose final status is the input.
type TaskFinalStatusSpec struct {
	ProducerTask string `json:"producerTask"`
}

// ValueOrRuntimeParameter is a constant or a runtime parameter's name.
type ValueOrRuntimeParameter struct {
	// Constant is the JSON value; empty when absent.
	Constant         json.RawMessage `json:"constant,omitempty"`
	RuntimeParameter string          `json:"runtimeParameter,omitempty"`
}

// ConstantValue decodes the constant (nil when absent).
func (v *ValueOrRuntimeParameter) ConstantValue() any {
	if v == nil || len(v.Constant) == 0 {
		return nil
	}
	var out any
	_ = json.Unmarshal(v.Constant, &out)
	return out
}

// InputArtifactSpec says where one input artifact comes from.
type InputArtifactSpec struct {
	ComponentInputArtifact string                  `json:"componentInputArtifact,omitempty"`
	TaskOutputArtifact     *TaskOutputArtifactSpec `json:"taskOutputArtifact,omitempty"`
}

// TaskOutputArtifactSpec references a sibling's output artifact.
type TaskOutputArtifactSpec struct {
	ProducerTask      string `json:"producerTask"`
	OutputArtifactKey string `json:"outputArtifactKey"`
}

// DAGOutputsSpec declares a DAG's outputs.
type DAGOutputsSpec struct {
	Parameters map[string]*DAGOutputParameterSpec `json:"parameters,omitempty"`
	Artifacts  map[string]*DAGOutputArtifactSpec  `json:"artifacts,omitempty"`
}

// DAGOutputParameterSpec selects a DAG output parameter.
type DAGOutputParameterSpec struct {
	ValueFromParameter *ParameterSelector  `json:"valueFromParameter,omitempty"`
	ValueFromOneof     *ParameterSelectors `json:"valueFromOneof,omitempty"`
}

// ParameterSelector picks a subtask's output parameter.
type ParameterSelector struct {
	ProducerSubtask    string `json:"producerSubtask"`
	OutputParameterKey string `json:"outputParameterKey"`
}

// ParameterSelectors is a OneOf over parameter selectors.
type ParameterSelectors struct {
	ParameterSelectors []ParameterSelector `json:"parameterSelectors"`
}

// DAGOutputArtifactSpec selects a DAG output artifact (several selectors = OneOf).
type DAGOutputArtifactSpec struct {
	ArtifactSelectors []ArtifactSelector `json:"artifactSelectors"`
}

// ArtifactSelector picks a subtask's output artifact.
type ArtifactSelector struct {
	ProducerSubtask   string `json:"producerSubtask"`
	OutputArtifactKey string `json:"outputArtifactKey"`
}

// DeploymentSpec holds the executors.
type DeploymentSpec struct {
	Executors map[string]*ExecutorSpec `json:"executors,omitempty"`
}

// ExecutorSpec is one executor: a container, an importer, or an unsupported kind.
type ExecutorSpec struct {
	Container *ContainerSpec  `json:"container,omitempty"`
	Importer  *ImporterSpec   `json:"importer,omitempty"`
	Resolver  json.RawMessage `json:"resolver,omitempty"`
	CustomJob json.RawMessage `json:"customJob,omitempty"`
}

// ContainerSpec is a container executor.
type ContainerSpec struct {
	Image     string          `json:"image"`
	Command   []string        `json:"command,omitempty"`
	Args      []string        `json:"args,omitempty"`
	Env       []EnvVar        `json:"env,omitempty"`
	Resources *ResourceSpec   `json:"resources,omitempty"`
	Lifecycle json.RawMessage `json:"lifecycle,omitempty"`
}

// EnvVar is one environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// ResourceSpec is a container's resources.
type ResourceSpec struct {
	CPULimit              float64            `json:"cpuLimit,omitempty"`
	MemoryLimit           float64            `json:"memoryLimit,omitempty"`
	CPURequest            float64            `json:"cpuRequest,omitempty"`
	MemoryRequest         float64            `json:"memoryRequest,omitempty"`
	ResourceCPULimit      string             `json:"resourceCpuLimit,omitempty"`
	ResourceMemoryLimit   string             `json:"resourceMemoryLimit,omitempty"`
	ResourceCPURequest    string             `json:"resourceCpuRequest,omitempty"`
	ResourceMemoryRequest string             `json:"resourceMemoryRequest,omitempty"`
	Accelerator           *AcceleratorConfig `json:"accelerator,omitempty"`
}

// AcceleratorConfig asks for accelerators.
type AcceleratorConfig struct {
	Type          string `json:"type,omitempty"`
	Count         Int64  `json:"count,omitempty"`
	ResourceType  string `json:"resourceType,omitempty"`
	ResourceCount string `json:"resourceCount,omitempty"`
}

// ImporterSpec imports an existing artifact by URI.
type ImporterSpec struct {
	ArtifactURI         *ValueOrRuntimeParameter `json:"artifactUri,omitempty"`
	TypeSchema          ArtifactTypeSchema       `json:"typeSchema"`
	Metadata            map[string]any           `json:"metadata,omitempty"`
	Reimport            bool                     `json:"reimport,omitempty"`
	DownloadToWorkspace bool                     `json:"downloadToWorkspace,omitempty"`
}

// Int64 decodes a proto int64 written as a JSON number or string.
type Int64 int64

// UnmarshalJSON accepts 3 and "3".
func (i *Int64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*i = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("int64 %s: %w", b, err)
	}
	*i = Int64(n)
	return nil
}
