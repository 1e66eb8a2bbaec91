package api

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/appliance/schedule"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// wireVersionRef is KFP's PipelineVersionReference.
type wireVersionRef struct {
	PipelineID        string `json:"pipeline_id,omitempty"`
	PipelineVersionID string `json:"pipeline_version_id,omitempty"`
}

// wireRuntimeConfig is KFP's RuntimeConfig.
type wireRuntimeConfig struct {
	Parameters   map[string]any `json:"parameters,omitempty"`
	PipelineRoot string         `json:"pipeline_root,omitempty"`
}

// wireStateEvent is KFP's RuntimeStatus.
type wireStateEvent struct {
	UpdateTime *ts         `json:"update_time,omitempty"`
	State      string      `json:"state,omitempty"`
	Error      *wireStatus `json:"error,omitempty"`
}

// wireRun is KFP's v2beta1 Run.
type wireRun struct {
	ExperimentID             string             `json:"experiment_id,omitempty"`
	RunID                    string             `json:"run_id,omitempty"`
	DisplayName              string             `json:"display_name,omitempty"`
	StorageState             string             `json:"storage_state,omitempty"`
	Description              string             `json:"description,omitempty"`
	PipelineSpec             json.RawMessage    `json:"pipeline_spec,omitempty"`
	PipelineVersionReference *wireVersionRef    `json:"pipeline_version_reference,omitempty"`
	RuntimeConfig            *wireRuntimeConfig `json:"runtime_config,omitempty"`
	ServiceAccount           string             `json:"service_account,omitempty"`
	CreatedAt                *ts                `json:"created_at,omitempty"`
	ScheduledAt              *ts                `json:"scheduled_at,omitempty"`
	FinishedAt               *ts                `json:"finished_at,omitempty"`
	State                    string             `json:"state,omitempty"`
	Error                    *wireStatus        `json:"error,omitempty"`
	RunDetails               any                `json:"run_details,omitempty"`
	RecurringRunID           string             `json:"recurring_run_id,omitempty"`
	StateHistory             []wireStateEvent   `json:"state_history,omitempty"`
	// ImportedFrom marks a run imported from an export archive (a kfp-box extension).
	ImportedFrom *wireOrigin `json:"imported_from,omitempty"`
}

// wireConfig renders a runtime config; as KFP, none when it has no parameters and no root.
func wireConfig(rc meta.RuntimeConfig) *wireRuntimeConfig {
	if len(rc.Parameters) == 0 && rc.PipelineRoot == "" {
		return nil
	}
	return &wireRuntimeConfig{Parameters: rc.Parameters, PipelineRoot: rc.PipelineRoot}
}

// runtimeConfigIn is the request form of RuntimeConfig.
type runtimeConfigIn struct {
	Parameters   json.RawMessage `json:"parameters"`
	PipelineRoot string          `json:"pipeline_root"`
}

// params decodes the parameters as plain JSON values (numbers as float64, as protobuf's Value).
func (rc *runtimeConfigIn) params() (map[string]any, error) {
	if rc == nil || len(rc.Parameters) == 0 || string(rc.Parameters) == "null" {
		return map[string]any{}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(rc.Parameters, &m); err != nil {
		return nil, fmt.Errorf("runtime_config.parameters must be an object: %w", ErrInvalid)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// runIn is the request form of Run; output-only fields are accepted and ignored.
type runIn struct {
	ExperimentID             string           `json:"experiment_id"`
	RunID                    string           `json:"run_id"`
	DisplayName              string           `json:"display_name"`
	StorageState             json.RawMessage  `json:"storage_state"`
	Description              string           `json:"description"`
	PipelineVersionID        string           `json:"pipeline_version_id"`
	PipelineSpec             json.RawMessage  `json:"pipeline_spec"`
	PipelineVersionReference *wireVersionRef  `json:"pipeline_version_reference"`
	RuntimeConfig            *runtimeConfigIn `json:"runtime_config"`
	ServiceAccount           string           `json:"service_account"`
	CreatedAt                json.RawMessage  `json:"created_at"`
	ScheduledAt              json.RawMessage  `json:"scheduled_at"`
	FinishedAt               json.RawMessage  `json:"finished_at"`
	State                    json.RawMessage  `json:"state"`
	Error                    json.RawMessage  `json:"error"`
	RunDetails               json.RawMessage  `json:"run_details"`
	RecurringRunID           string           `json:"recurring_run_id"`
	StateHistory             json.RawMessage  `json:"state_history"`
	PluginsInput             json.RawMessage  `json:"plugins_input"`
	PluginsOutput            json.RawMessage  `json:"plugins_output"`
}

// source returns the pipeline source fields of a run or recurring run request.
func source(ref *wireVersionRef, deprecatedVersionID string) (pid, vid string) {
	if ref != nil {
		pid, vid = ref.PipelineID, ref.PipelineVersionID
	}
	if vid == "" {
		vid = deprecatedVersionID
	}
	return pid, vid
}

func (s *Server) toWireRun(c *gin.Context, r *meta.Run, withSpec bool) wireRun {
	w := wireRun{
		ExperimentID: r.ExperimentID, RunID: r.ID, DisplayName: r.DisplayName,
		StorageState: r.StorageState, Description: r.Description,
		RuntimeConfig:  wireConfig(r.RuntimeConfig),
		ServiceAccount: firstNonEmpty(r.ServiceAccount, DefaultServiceAccount), CreatedAt: tsp(r.CreatedAt), ScheduledAt: tsp(r.ScheduledAt),
		FinishedAt: tsp(r.FinishedAt), State: r.State, Error: statusOf(r.Error),
		RecurringRunID: r.RecurringRunID, ImportedFrom: toWireOrigin(r.ImportedFrom),
	}
	if r.PipelineVersionID != "" {
		w.PipelineVersionReference = &wireVersionRef{PipelineID: r.PipelineID, PipelineVersionID: r.PipelineVersionID}
	}
	if withSpec && r.InlineSpec {
		if sp, err := s.d.Meta.GetRunSpec(c, r.ID); err == nil {
			w.PipelineSpec = sp
		}
	}
	for _, ev := range r.StateHistory {
		w.StateHistory = append(w.StateHistory, wireStateEvent{UpdateTime: tsp(ev.UpdateTime), State: ev.State, Error: statusOf(ev.Error)})
	}
	if d, err := s.runDetails(c, r); err != nil {
		s.d.Logger.Warn("run details", "run", r.ID, "err", err)
	} else if d != nil {
		w.RunDetails = d
	}
	return w
}

func (s *Server) createRun(c *gin.Context) {
	var in runIn
	if err := decodeBody(c, shapeRun, &in); err != nil {
		abort(c, err)
		return
	}
	params, err := in.RuntimeConfig.params()
	if err != nil {
		abort(c, err)
		return
	}
	pid, vid := source(in.PipelineVersionReference, in.PipelineVersionID)
	req := schedule.RunRequest{
		DisplayName: in.DisplayName, Description: in.Description, ExperimentID: in.ExperimentID,
		PipelineID: pid, PipelineVersionID: vid, Spec: in.PipelineSpec,
		RuntimeConfig: meta.RuntimeConfig{Parameters: params}, ServiceAccount: in.ServiceAccount,
	}
	if in.RuntimeConfig != nil {
		req.RuntimeConfig.PipelineRoot = in.RuntimeConfig.PipelineRoot
	}
	r, err := s.RunCreator().CreateRun(c, req)
	if err != nil {
		abort(c, err)
		return
	}
	w := s.toWireRun(c, r, true)
	// The run was just stored: as on KFP, it has no task details yet, even when the engine
	// already started on it.
	w.RunDetails = nil
	writeJSON(c, w)
}

func (s *Server) getRun(c *gin.Context) {
	r, err := s.d.Meta.GetRun(c, c.Param("id"))
	if err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, s.toWireRun(c, r, true))
}

func (s *Server) listRuns(c *gin.Context) {
	opts, err := listOptions(c)
	if err != nil {
		abort(c, err)
		return
	}
	p, err := s.d.Meta.ListRuns(c, c.Query("experiment_id"), opts)
	if err != nil {
		abort(c, err)
		return
	}
	out := struct {
		Runs          []wireRun `json:"runs,omitempty"`
		TotalSize     int       `json:"total_size,omitempty"`
		NextPageToken string    `json:"next_page_token,omitempty"`
	}{TotalSize: p.TotalSize, NextPageToken: p.NextPageToken}
	for _, r := range p.Items {
		out.Runs = append(out.Runs, s.toWireRun(c, r, false))
	}
	writeJSON(c, out)
}

func (s *Server) deleteRun(c *gin.Context) {
	id := c.Param("id")
	r, err := s.d.Meta.GetRun(c, id)
	if err != nil {
		abort(c, err)
		return
	}
	if !meta.IsTerminalRunState(r.State) && s.d.Engine != nil {
		if err := s.d.Engine.Terminate(c, id); err != nil {
			s.d.Logger.Warn("terminate before delete", "run", id, "err", err)
		}
	}
	if err := s.d.Meta.DeleteRun(c, id); err != nil {
		abort(c, err)
		return
	}
	if n, ok := s.d.Engine.(RunDeletedNotifier); ok && !meta.IsTerminalRunState(r.State) {
		n.RunDeleted(id)
	}
	if s.d.OnRunDeleted != nil {
		s.d.OnRunDeleted(id)
	}
	writeJSON(c, empty)
}

// splitAction splits "id:verb" (KFP's custom methods) into its parts.
func splitAction(p string) (id, action string) {
	if i := strings.LastIndexByte(p, ':'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return p, ""
}

// runAction serves POST /runs/{id}:archive, :unarchive, :terminate and :retry.
func (s *Server) runAction(c *gin.Context) {
	id, action := splitAction(c.Param("id"))
	r, err := s.d.Meta.GetRun(c, id)
	if err != nil {
		abort(c, err)
		return
	}
	switch action {
	case "archive":
		_, err = s.d.Meta.ArchiveRun(c, id)
	case "unarchive":
		_, err = s.d.Meta.UnarchiveRun(c, id)
	case "terminate":
		switch {
		case meta.IsTerminalRunState(r.State):
			err = fmt.Errorf("run %q is %s and cannot be terminated: %w", id, r.State, ErrFailedPrecondition)
		case s.d.Engine == nil:
			err = fmt.Errorf("no engine to terminate run %q: %w", id, ErrUnavailable)
		default:
			err = s.d.Engine.Terminate(c, id)
		}
	case "retry":
		switch {
		case r.ImportedFrom != nil:
			err = fmt.Errorf("run %q was imported and keeps its results; submit it again to re-run it: %w", id, ErrFailedPrecondition)
		case r.State != meta.RunFailed && r.State != meta.RunCanceled:
			err = fmt.Errorf("run %q is %s; only failed runs can be retried: %w", id, r.State, ErrFailedPrecondition)
		case s.d.Engine == nil:
			err = fmt.Errorf("no engine to retry run %q: %w", id, ErrUnavailable)
		default:
			err = s.d.Engine.Retry(c, id)
		}
	default:
		err = fmt.Errorf("unknown run method %q: %w", action, ErrNotFound)
	}
	if err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, empty)
}
