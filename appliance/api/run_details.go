package api

import (
	"context"
	"fmt"
	"strconv"

	"github.com/kfp-box/kfp-box/storage/meta"
)

// wireTaskDetail is KFP's PipelineTaskDetail, plus kfp-box extras (cache_source, gpus,
// waiting, attempt, input_parameters, output_parameters) that KFP clients ignore.
type wireTaskDetail struct {
	RunID        string                      `json:"run_id,omitempty"`
	TaskID       string                      `json:"task_id,omitempty"`
	DisplayName  string                      `json:"display_name,omitempty"`
	CreateTime   *ts                         `json:"create_time,omitempty"`
	StartTime    *ts                         `json:"start_time,omitempty"`
	EndTime      *ts                         `json:"end_time,omitempty"`
	State        string                      `json:"state,omitempty"`
	ExecutionID  string                      `json:"execution_id,omitempty"`
	Error        *wireStatus                 `json:"error,omitempty"`
	Inputs       map[string]wireArtifactList `json:"inputs,omitempty"`
	Outputs      map[string]wireArtifactList `json:"outputs,omitempty"`
	ParentTaskID string                      `json:"parent_task_id,omitempty"`
	StateHistory []wireStateEvent            `json:"state_history,omitempty"`
	PodName      string                      `json:"pod_name,omitempty"`
	ChildTasks   []wireChildTask             `json:"child_tasks,omitempty"`

	CacheSource      *wireCacheSource `json:"cache_source,omitempty"`
	GPUs             []string         `json:"gpus,omitempty"`
	Waiting          string           `json:"waiting,omitempty"`
	Attempt          int              `json:"attempt,omitempty"`
	Kind             string           `json:"kind,omitempty"`
	InputParameters  map[string]any   `json:"input_parameters,omitempty"`
	OutputParameters map[string]any   `json:"output_parameters,omitempty"`
}

type wireArtifactList struct {
	ArtifactIDs []string `json:"artifact_ids,omitempty"`
}

type wireChildTask struct {
	TaskID  string `json:"task_id,omitempty"`
	PodName string `json:"pod_name,omitempty"`
}

type wireCacheSource struct {
	RunID       string `json:"run_id,omitempty"`
	TaskID      string `json:"task_id,omitempty"`
	ExecutionID string `json:"execution_id,omitempty"`
	TaskName    string `json:"task_name,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

type wireRunDetails struct {
	PipelineContextID    string           `json:"pipeline_context_id,omitempty"`
	PipelineRunContextID string           `json:"pipeline_run_context_id,omitempty"`
	TaskDetails          []wireTaskDetail `json:"task_details,omitempty"`
	// Warnings is a kfp-box extra: what will make tasks fail, found when the run was
	// created (KFP clients ignore it).
	Warnings []string `json:"warnings,omitempty"`
}

// taskState maps an execution state to KFP's RuntimeState: CACHED is SUCCEEDED, as KFP
// reports it; omitted tasks are RUNTIME_STATE_UNSPECIFIED, as Argo's Omitted nodes are.
func taskState(s string) string {
	switch s {
	case meta.ExecPending, meta.ExecQueued:
		return meta.RunPending
	case meta.ExecRunning:
		return meta.RunRunning
	case meta.ExecSucceeded, meta.ExecCached:
		return meta.RunSucceeded
	case meta.ExecFailed:
		return meta.RunFailed
	case meta.ExecSkipped:
		return meta.RunSkipped
	case meta.ExecCanceled:
		return meta.RunCanceled
	}
	return "RUNTIME_STATE_UNSPECIFIED"
}

func artifactLists(m map[string][]meta.ArtifactRef) map[string]wireArtifactList {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]wireArtifactList, len(m))
	for k, refs := range m {
		l := wireArtifactList{ArtifactIDs: []string{}}
		for _, r := range refs {
			l.ArtifactIDs = append(l.ArtifactIDs, r.ID)
		}
		out[k] = l
	}
	return out
}

// taskDisplayName is the task's name; loop iterations are named like Argo's, "for-loop-1(0)".
func taskDisplayName(x *meta.Execution) string {
	if x.Kind == meta.KindIteration {
		return fmt.Sprintf("%s(%d)", x.TaskName, x.IterationIndex)
	}
	return x.TaskName
}

// runDetails renders a run's run_details (task_details built from its executions). It returns
// nil when the run has no executions yet; the run handlers then omit the field.
func (s *Server) runDetails(ctx context.Context, r *meta.Run) (any, error) {
	execs, err := s.d.Meta.ListExecutions(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if len(execs) == 0 && len(r.Warnings) == 0 {
		return nil, nil
	}
	d := &wireRunDetails{Warnings: r.Warnings}
	if len(execs) > 0 {
		d.TaskDetails = taskDetails(r.ID, execs)
	}
	return d, nil
}

// taskDetails renders one entry per execution (root, sub-DAGs, loops, iterations, tasks),
// in creation order.
func taskDetails(runID string, execs []*meta.Execution) []wireTaskDetail {
	kids := map[string][]wireChildTask{}
	for _, x := range execs {
		if x.ParentID != "" {
			kids[x.ParentID] = append(kids[x.ParentID], wireChildTask{TaskID: x.ID, PodName: x.RuntimeTaskID})
		}
	}
	out := make([]wireTaskDetail, 0, len(execs))
	for _, x := range execs {
		d := wireTaskDetail{
			RunID: runID, TaskID: x.ID, DisplayName: taskDisplayName(x),
			CreateTime: tsOpt(x.CreatedAt), StartTime: tsOpt(x.StartedAt), EndTime: tsOpt(x.FinishedAt),
			State: taskState(x.State), Inputs: artifactLists(x.Inputs.Artifacts), Outputs: artifactLists(x.Outputs.Artifacts),
			ParentTaskID: x.ParentID, PodName: x.RuntimeTaskID, ChildTasks: kids[x.ID],
			GPUs: x.GPUs, Waiting: x.Waiting, Attempt: x.Attempt, Kind: x.Kind,
			InputParameters: x.Inputs.Parameters, OutputParameters: x.Outputs.Parameters,
		}
		if _, err := strconv.ParseInt(x.ID, 10, 64); err == nil {
			d.ExecutionID = x.ID
		}
		if x.Error != "" && (x.State == meta.ExecFailed || x.State == meta.ExecCanceled || x.State == meta.ExecPending) {
			d.Error = &wireStatus{Code: 2, Message: x.Error}
		}
		if cs := x.CacheSource; cs != nil {
			d.CacheSource = &wireCacheSource{RunID: cs.RunID, TaskID: cs.ExecutionID, ExecutionID: cs.ExecutionID, TaskName: cs.TaskName, Fingerprint: cs.Fingerprint}
		}
		for _, ev := range x.StateHistory {
			d.StateHistory = append(d.StateHistory, wireStateEvent{UpdateTime: tsOpt(ev.UpdateTime), State: taskState(ev.State), Error: statusOf(ev.Error)})
		}
		out = append(out, d)
	}
	return out
}
