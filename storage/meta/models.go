package meta

import (
	"encoding/json"
	"time"
)

// Storage states.
const (
	StorageAvailable = "AVAILABLE"
	StorageArchived  = "ARCHIVED"
)

// Run states, as KFP's RuntimeState names.
const (
	RunPending   = "PENDING"
	RunRunning   = "RUNNING"
	RunSucceeded = "SUCCEEDED"
	RunSkipped   = "SKIPPED"
	RunFailed    = "FAILED"
	RunCanceling = "CANCELING"
	RunCanceled  = "CANCELED"
	RunPaused    = "PAUSED"
)

// Status is an error attached to a resource (google.rpc.Status without details).
type Status struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// StateEvent is one entry of a state history.
type StateEvent struct {
	UpdateTime time.Time `json:"update_time"`
	State      string    `json:"state"`
	Error      *Status   `json:"error,omitempty"`
}

// Pipeline is an uploaded pipeline; its content lives in versions.
type Pipeline struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	DisplayName string            `json:"display_name"`
	Description string            `json:"description,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
}

// PipelineVersion is one version of a pipeline with its IR.
type PipelineVersion struct {
	ID            string            `json:"id"`
	PipelineID    string            `json:"pipeline_id"`
	Name          string            `json:"name"`
	DisplayName   string            `json:"display_name"`
	Description   string            `json:"description,omitempty"`
	CodeSourceURL string            `json:"code_source_url,omitempty"`
	PackageURL    string            `json:"package_url,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	// Spec is the IR as a JSON object: the PipelineSpec itself, or
	// {"pipeline_spec": ..., "platform_spec": ...} when a platform document exists.
	Spec json.RawMessage `json:"spec"`
}

// Experiment groups runs.
type Experiment struct {
	ID               string    `json:"id"`
	DisplayName      string    `json:"display_name"`
	Description      string    `json:"description,omitempty"`
	Namespace        string    `json:"namespace,omitempty"`
	StorageState     string    `json:"storage_state"`
	CreatedAt        time.Time `json:"created_at"`
	LastRunCreatedAt time.Time `json:"last_run_created_at,omitempty"`
}

// RuntimeConfig is a run's parameters and pipeline root.
type RuntimeConfig struct {
	Parameters   map[string]any `json:"parameters,omitempty"`
	PipelineRoot string         `json:"pipeline_root,omitempty"`
}

// Run is one execution of a pipeline. Its IR is stored apart (RunSpec) and its tasks are
// Executions.
type Run struct {
	ID           string `json:"id"`
	ExperimentID string `json:"experiment_id"`
	DisplayName  string `json:"display_name"`
	Description  string `json:"description,omitempty"`
	Namespace    string `json:"namespace,omitempty"`
	StorageState string `json:"storage_state"`
	// PipelineID and PipelineVersionID are set when the run was created from a stored
	// version; otherwise the spec was given inline (InlineSpec).
	PipelineID        string        `json:"pipeline_id,omitempty"`
	PipelineVersionID string        `json:"pipeline_version_id,omitempty"`
	InlineSpec        bool          `json:"inline_spec,omitempty"`
	RuntimeConfig     RuntimeConfig `json:"runtime_config"`
	ServiceAccount    string        `json:"service_account,omitempty"`
	CreatedAt         time.Time     `json:"created_at"`
	ScheduledAt       time.Time     `json:"scheduled_at"`
	FinishedAt        time.Time     `json:"finished_at,omitempty"`
	State             string        `json:"state"`
	Error             *Status       `json:"error,omitempty"`
	StateHistory      []StateEvent  `json:"state_history,omitempty"`
	RecurringRunID    string        `json:"recurring_run_id,omitempty"`
	// PipelineName is pipelineInfo.name of the run's IR (the cache scope).
	PipelineName string `json:"pipeline_name,omitempty"`
	// Warnings are what the box found at creation that will make tasks fail (a pip
	// requirement it cannot satisfy), one sentence each.
	Warnings []string `json:"warnings,omitempty"`
	// ImportedFrom marks a run recreated from an export archive (RunOrigin, imports.go).
	ImportedFrom *RunOrigin `json:"imported_from,omitempty"`
}

// RunSpec is the IR a run executes, frozen when the run is created.
type RunSpec struct {
	RunID string `json:"run_id"`
	// Spec is the IR JSON object, like PipelineVersion.Spec.
	Spec json.RawMessage `json:"spec"`
}

// Trigger is a recurring run's schedule: exactly one of Cron and IntervalSeconds is set.
type Trigger struct {
	Cron            string    `json:"cron,omitempty"`
	IntervalSeconds int64     `json:"interval_second,omitempty"`
	StartTime       time.Time `json:"start_time,omitempty"`
	EndTime         time.Time `json:"end_time,omitempty"`
	// TimeZone is an IANA zone for cron schedules ("" = UTC, like KFP).
	TimeZone string `json:"time_zone,omitempty"`
}

// RecurringRun creates runs on a schedule.
type RecurringRun struct {
	ID                string          `json:"id"`
	DisplayName       string          `json:"display_name"`
	Description       string          `json:"description,omitempty"`
	Namespace         string          `json:"namespace,omitempty"`
	ExperimentID      string          `json:"experiment_id"`
	PipelineID        string          `json:"pipeline_id,omitempty"`
	PipelineVersionID string          `json:"pipeline_version_id,omitempty"`
	InlineSpec        json.RawMessage `json:"inline_spec,omitempty"`
	RuntimeConfig     RuntimeConfig   `json:"runtime_config"`
	ServiceAccount    string          `json:"service_account,omitempty"`
	MaxConcurrency    int64           `json:"max_concurrency"`
	Trigger           Trigger         `json:"trigger"`
	Enabled           bool            `json:"enabled"`
	NoCatchup         bool            `json:"no_catchup,omitempty"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
	// LastScheduledAt is the schedule slot of the last run created (zero: none yet).
	LastScheduledAt time.Time `json:"last_scheduled_at,omitempty"`
	// RunCount is the number of runs created so far ([[Index]]).
	RunCount int64   `json:"run_count,omitempty"`
	Error    *Status `json:"error,omitempty"`
}

// Execution states.
const (
	ExecPending   = "PENDING"
	ExecQueued    = "QUEUED"
	ExecRunning   = "RUNNING"
	ExecSucceeded = "SUCCEEDED"
	ExecFailed    = "FAILED"
	ExecSkipped   = "SKIPPED"
	ExecCached    = "CACHED"
	ExecCanceled  = "CANCELED"
)

// Execution kinds.
const (
	KindRoot      = "ROOT"
	KindDAG       = "DAG"
	KindLoop      = "LOOP"
	KindIteration = "ITERATION"
	KindContainer = "CONTAINER"
	KindImporter  = "IMPORTER"
)

// ArtifactRef points at an artifact record from an execution's inputs or outputs.
type ArtifactRef struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	URI  string `json:"uri"`
}

// IO is an execution's resolved inputs or recorded outputs.
type IO struct {
	Parameters map[string]any           `json:"parameters,omitempty"`
	Artifacts  map[string][]ArtifactRef `json:"artifacts,omitempty"`
}

// CacheSource names the execution whose outputs a cache hit reused.
type CacheSource struct {
	RunID       string `json:"run_id"`
	ExecutionID string `json:"execution_id"`
	TaskName    string `json:"task_name,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Execution is one DAG, loop, iteration or task attempt of a run. The engine owns its
// fields' meaning; the API renders task details from it.
type Execution struct {
	ID       string `json:"id"`
	RunID    string `json:"run_id"`
	ParentID string `json:"parent_id,omitempty"`
	// TaskKey is the key in the parent DAG's tasks; TaskName is taskInfo.name.
	TaskKey  string `json:"task_key"`
	TaskName string `json:"task_name"`
	Kind     string `json:"kind"`
	// IterationIndex is the loop iteration (-1 when not an iteration).
	IterationIndex int          `json:"iteration_index"`
	Attempt        int          `json:"attempt,omitempty"`
	State          string       `json:"state"`
	StateHistory   []StateEvent `json:"state_history,omitempty"`
	Inputs         IO           `json:"inputs,omitempty"`
	Outputs        IO           `json:"outputs,omitempty"`
	Fingerprint    string       `json:"fingerprint,omitempty"`
	CacheSource    *CacheSource `json:"cache_source,omitempty"`
	RuntimeTaskID  string       `json:"runtime_task_id,omitempty"`
	GPUs           []string     `json:"gpus,omitempty"`
	// Waiting says why a pending task has not started (for example no free GPU).
	Waiting    string    `json:"waiting,omitempty"`
	LogPath    string    `json:"log_path,omitempty"`
	Error      string    `json:"error,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitempty"`
	FinishedAt time.Time `json:"finished_at,omitempty"`
	// RetryAt is when a PENDING task whose previous attempt failed may start again.
	RetryAt time.Time `json:"retry_at,omitempty"`
	// IterationCount is the number of iterations of a LOOP execution.
	IterationCount int `json:"iteration_count,omitempty"`
	// TaskRoot is the artifact root URI of a container task, kept across retries.
	TaskRoot string `json:"task_root,omitempty"`
	// ExitCode is the last attempt's exit code (container tasks).
	ExitCode int `json:"exit_code,omitempty"`
}

// Artifact is one recorded artifact (an output of an execution or an imported URI).
type Artifact struct {
	ID            string         `json:"id"`
	RunID         string         `json:"run_id"`
	ExecutionID   string         `json:"execution_id"`
	TaskName      string         `json:"task_name,omitempty"`
	Name          string         `json:"name"`
	SchemaTitle   string         `json:"schema_title"`
	SchemaVersion string         `json:"schema_version,omitempty"`
	URI           string         `json:"uri"`
	Metadata      map[string]any `json:"metadata,omitempty"`
	CreatedAt     time.Time      `json:"created_at"`
	// Scope is the pipeline name the artifact belongs to (importer reuse looks it up by URI).
	Scope string `json:"scope,omitempty"`
}

// CacheEntry records a successful execution whose outputs later tasks may reuse.
type CacheEntry struct {
	Scope       string    `json:"scope"`
	Fingerprint string    `json:"fingerprint"`
	RunID       string    `json:"run_id"`
	ExecutionID string    `json:"execution_id"`
	TaskName    string    `json:"task_name,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}
