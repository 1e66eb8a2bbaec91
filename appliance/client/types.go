package client

import (
	"encoding/json"
	"strconv"
	"strings"
)

// The wire types below are KFP v2beta1 messages as grpc-gateway writes them (snake_case,
// enums as names, int64 as strings). Fields a client only reads are plain; unknown fields
// are ignored when decoding, so newer servers decode too. Request bodies are built from
// the same types, whose empty fields are left out, as the SDK's generated models leave out
// their None attributes.

// Pipeline is KFP's Pipeline.
type Pipeline struct {
	PipelineID  string `json:"pipeline_id,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	CreatedAt   string `json:"created_at,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
}

// Key is the pipeline's unique name: name, or display_name on servers without names.
func (p *Pipeline) Key() string {
	if p.Name != "" {
		return p.Name
	}
	return p.DisplayName
}

// PipelineVersion is KFP's PipelineVersion.
type PipelineVersion struct {
	PipelineID        string          `json:"pipeline_id,omitempty"`
	PipelineVersionID string          `json:"pipeline_version_id,omitempty"`
	DisplayName       string          `json:"display_name,omitempty"`
	Name              string          `json:"name,omitempty"`
	Description       string          `json:"description,omitempty"`
	CreatedAt         string          `json:"created_at,omitempty"`
	CodeSourceURL     string          `json:"code_source_url,omitempty"`
	PipelineSpec      json.RawMessage `json:"pipeline_spec,omitempty"`
}

// Key is the version's name within its pipeline.
func (v *PipelineVersion) Key() string {
	if v.Name != "" {
		return v.Name
	}
	return v.DisplayName
}

// Experiment is KFP's Experiment.
type Experiment struct {
	ExperimentID     string `json:"experiment_id,omitempty"`
	DisplayName      string `json:"display_name,omitempty"`
	Description      string `json:"description,omitempty"`
	CreatedAt        string `json:"created_at,omitempty"`
	Namespace        string `json:"namespace,omitempty"`
	StorageState     string `json:"storage_state,omitempty"`
	LastRunCreatedAt string `json:"last_run_created_at,omitempty"`
}

// VersionRef is KFP's PipelineVersionReference.
type VersionRef struct {
	PipelineID        string `json:"pipeline_id,omitempty"`
	PipelineVersionID string `json:"pipeline_version_id,omitempty"`
}

// RuntimeConfig is KFP's RuntimeConfig.
type RuntimeConfig struct {
	Parameters   map[string]any `json:"parameters"`
	PipelineRoot string         `json:"pipeline_root,omitempty"`
}

// Status is a google.rpc.Status inside a resource.
type Status struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Run is KFP's Run; RunDetails is kept raw (task details are box- and version-specific).
type Run struct {
	ExperimentID             string          `json:"experiment_id,omitempty"`
	RunID                    string          `json:"run_id,omitempty"`
	DisplayName              string          `json:"display_name,omitempty"`
	StorageState             string          `json:"storage_state,omitempty"`
	Description              string          `json:"description,omitempty"`
	PipelineSpec             json.RawMessage `json:"pipeline_spec,omitempty"`
	PipelineVersionReference *VersionRef     `json:"pipeline_version_reference,omitempty"`
	RuntimeConfig            *RuntimeConfig  `json:"runtime_config,omitempty"`
	ServiceAccount           string          `json:"service_account,omitempty"`
	CreatedAt                string          `json:"created_at,omitempty"`
	ScheduledAt              string          `json:"scheduled_at,omitempty"`
	FinishedAt               string          `json:"finished_at,omitempty"`
	State                    string          `json:"state,omitempty"`
	Error                    *Status         `json:"error,omitempty"`
	RunDetails               json.RawMessage `json:"run_details,omitempty"`
	RecurringRunID           string          `json:"recurring_run_id,omitempty"`
	StateHistory             json.RawMessage `json:"state_history,omitempty"`
	// ImportedFrom is kfp-box's mark on an imported run (absent elsewhere).
	ImportedFrom *Origin `json:"imported_from,omitempty"`
}

// Origin says where an imported run came from.
type Origin struct {
	Server     string `json:"server,omitempty"`
	RunID      string `json:"run_id,omitempty"`
	ExportedAt string `json:"exported_at,omitempty"`
	ImportedAt string `json:"imported_at,omitempty"`
	Version    string `json:"version,omitempty"`
}

// CronSchedule is KFP's CronSchedule; TimeZone is kfp-box's extension (KFP is UTC only).
type CronSchedule struct {
	StartTime string `json:"start_time,omitempty"`
	EndTime   string `json:"end_time,omitempty"`
	Cron      string `json:"cron,omitempty"`
	TimeZone  string `json:"time_zone,omitempty"`
}

// PeriodicSchedule is KFP's PeriodicSchedule.
type PeriodicSchedule struct {
	StartTime      string `json:"start_time,omitempty"`
	EndTime        string `json:"end_time,omitempty"`
	IntervalSecond Int64  `json:"interval_second,omitempty"`
}

// Trigger is KFP's Trigger.
type Trigger struct {
	CronSchedule     *CronSchedule     `json:"cron_schedule,omitempty"`
	PeriodicSchedule *PeriodicSchedule `json:"periodic_schedule,omitempty"`
}

// RecurringRun is KFP's RecurringRun. Requests carry Mode, answers Status.
type RecurringRun struct {
	RecurringRunID           string          `json:"recurring_run_id,omitempty"`
	DisplayName              string          `json:"display_name,omitempty"`
	Description              string          `json:"description,omitempty"`
	PipelineSpec             json.RawMessage `json:"pipeline_spec,omitempty"`
	PipelineVersionReference *VersionRef     `json:"pipeline_version_reference,omitempty"`
	RuntimeConfig            *RuntimeConfig  `json:"runtime_config,omitempty"`
	ServiceAccount           string          `json:"service_account,omitempty"`
	MaxConcurrency           Int64           `json:"max_concurrency,omitempty"`
	Trigger                  *Trigger        `json:"trigger,omitempty"`
	Mode                     string          `json:"mode,omitempty"`
	CreatedAt                string          `json:"created_at,omitempty"`
	UpdatedAt                string          `json:"updated_at,omitempty"`
	Status                   string          `json:"status,omitempty"`
	Error                    *Status         `json:"error,omitempty"`
	NoCatchup                bool            `json:"no_catchup,omitempty"`
	Namespace                string          `json:"namespace,omitempty"`
	ExperimentID             string          `json:"experiment_id,omitempty"`
}

// Int64 is a protobuf int64: read from a number or a string, written as a string.
type Int64 int64

// UnmarshalJSON reads a number or a decimal string.
func (n *Int64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return err
		}
		v = int64(f)
	}
	*n = Int64(v)
	return nil
}

// MarshalJSON writes the decimal string, as protojson does.
func (n Int64) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(n), 10) + `"`), nil
}

// Artifact is one artifact of a run as kfp-box's artifact routes list it.
type Artifact struct {
	ArtifactID  string         `json:"artifact_id"`
	RunID       string         `json:"run_id,omitempty"`
	Name        string         `json:"name"`
	Type        string         `json:"type,omitempty"`
	SchemaTitle string         `json:"schema_title,omitempty"`
	URI         string         `json:"uri"`
	SizeBytes   *int64         `json:"size_bytes,omitempty"`
	IsFolder    bool           `json:"is_folder,omitempty"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	TaskName    string         `json:"task_name,omitempty"`
	CreatedAt   string         `json:"created_at,omitempty"`
}

// TaskDetail is the part of a PipelineTaskDetail (with kfp-box's extras) that export and
// the CLI read.
type TaskDetail struct {
	TaskID      string `json:"task_id"`
	DisplayName string `json:"display_name"`
	State       string `json:"state"`
	Kind        string `json:"kind,omitempty"`
	PodName     string `json:"pod_name,omitempty"`
}

// RunDetailsOf decodes a run's task details.
func RunDetailsOf(r *Run) []TaskDetail {
	var d struct {
		TaskDetails []TaskDetail `json:"task_details"`
	}
	if len(r.RunDetails) > 0 {
		_ = json.Unmarshal(r.RunDetails, &d)
	}
	return d.TaskDetails
}
