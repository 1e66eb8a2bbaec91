package api

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/kfp-box/kfp-box/appliance/schedule"
	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// wireCron is KFP's CronSchedule plus kfp-box's time_zone (an IANA zone; KFP is UTC-only).
type wireCron struct {
	StartTime *ts    `json:"start_time,omitempty"`
	EndTime   *ts    `json:"end_time,omitempty"`
	Cron      string `json:"cron,omitempty"`
	TimeZone  string `json:"time_zone,omitempty"`
}

// wirePeriodic is KFP's PeriodicSchedule.
type wirePeriodic struct {
	StartTime      *ts `json:"start_time,omitempty"`
	EndTime        *ts `json:"end_time,omitempty"`
	IntervalSecond i64 `json:"interval_second,omitempty"`
}

// wireTrigger is KFP's Trigger.
type wireTrigger struct {
	CronSchedule     *wireCron     `json:"cron_schedule,omitempty"`
	PeriodicSchedule *wirePeriodic `json:"periodic_schedule,omitempty"`
}

// wireRecurringRun is KFP's v2beta1 RecurringRun. Responses carry status and, as KFP's do,
// the mode that corresponds to it.
type wireRecurringRun struct {
	RecurringRunID           string             `json:"recurring_run_id,omitempty"`
	DisplayName              string             `json:"display_name,omitempty"`
	Description              string             `json:"description,omitempty"`
	PipelineSpec             json.RawMessage    `json:"pipeline_spec,omitempty"`
	PipelineVersionReference *wireVersionRef    `json:"pipeline_version_reference,omitempty"`
	RuntimeConfig            *wireRuntimeConfig `json:"runtime_config,omitempty"`
	ServiceAccount           string             `json:"service_account,omitempty"`
	MaxConcurrency           i64                `json:"max_concurrency,omitempty"`
	Trigger                  *wireTrigger       `json:"trigger,omitempty"`
	Mode                     string             `json:"mode,omitempty"`
	CreatedAt                *ts                `json:"created_at,omitempty"`
	UpdatedAt                *ts                `json:"updated_at,omitempty"`
	Status                   string             `json:"status,omitempty"`
	Error                    *wireStatus        `json:"error,omitempty"`
	NoCatchup                bool               `json:"no_catchup,omitempty"`
	Namespace                string             `json:"namespace,omitempty"`
	ExperimentID             string             `json:"experiment_id,omitempty"`
}

// recurringRunIn is the request form of RecurringRun.
type recurringRunIn struct {
	RecurringRunID           string           `json:"recurring_run_id"`
	DisplayName              string           `json:"display_name"`
	Description              string           `json:"description"`
	PipelineVersionID        string           `json:"pipeline_version_id"`
	PipelineSpec             json.RawMessage  `json:"pipeline_spec"`
	PipelineVersionReference *wireVersionRef  `json:"pipeline_version_reference"`
	RuntimeConfig            *runtimeConfigIn `json:"runtime_config"`
	ServiceAccount           string           `json:"service_account"`
	MaxConcurrency           i64              `json:"max_concurrency"`
	Trigger                  *wireTrigger     `json:"trigger"`
	Mode                     json.RawMessage  `json:"mode"`
	CreatedAt                json.RawMessage  `json:"created_at"`
	UpdatedAt                json.RawMessage  `json:"updated_at"`
	Status                   json.RawMessage  `json:"status"`
	Error                    json.RawMessage  `json:"error"`
	NoCatchup                bool             `json:"no_catchup"`
	Namespace                string           `json:"namespace"`
	ExperimentID             string           `json:"experiment_id"`
	PluginsInput             json.RawMessage  `json:"plugins_input"`
}

var modeNames = []string{"MODE_UNSPECIFIED", "ENABLE", "DISABLE"}

func toWireRecurringRun(r *meta.RecurringRun) wireRecurringRun {
	w := wireRecurringRun{
		RecurringRunID: r.ID, DisplayName: r.DisplayName, Description: r.Description,
		PipelineSpec:   r.InlineSpec,
		RuntimeConfig:  wireConfig(r.RuntimeConfig),
		ServiceAccount: firstNonEmpty(r.ServiceAccount, DefaultServiceAccount), MaxConcurrency: i64(r.MaxConcurrency),
		CreatedAt: tsp(r.CreatedAt), UpdatedAt: tsp(r.UpdatedAt), Status: "DISABLED", Mode: "DISABLE",
		Error: statusOf(r.Error), NoCatchup: r.NoCatchup, Namespace: r.Namespace, ExperimentID: r.ExperimentID,
	}
	if r.Enabled {
		w.Status, w.Mode = "ENABLED", "ENABLE"
	}
	if r.PipelineID != "" || r.PipelineVersionID != "" {
		// No version id: each run uses the pipeline's latest version when it is created.
		w.PipelineVersionReference = &wireVersionRef{PipelineID: r.PipelineID, PipelineVersionID: r.PipelineVersionID}
	}
	t := r.Trigger
	switch {
	case t.Cron != "":
		w.Trigger = &wireTrigger{CronSchedule: &wireCron{StartTime: tsOpt(t.StartTime), EndTime: tsOpt(t.EndTime), Cron: t.Cron, TimeZone: t.TimeZone}}
	case t.IntervalSeconds == 0:
		w.Trigger = &wireTrigger{} // a single run, as KFP renders an empty trigger
	default:
		w.Trigger = &wireTrigger{PeriodicSchedule: &wirePeriodic{StartTime: tsOpt(t.StartTime), EndTime: tsOpt(t.EndTime), IntervalSecond: i64(t.IntervalSeconds)}}
	}
	return w
}

// trigger converts a request trigger.
func (t *wireTrigger) toMeta() (meta.Trigger, error) {
	var m meta.Trigger
	switch {
	case t == nil || (t.CronSchedule == nil && t.PeriodicSchedule == nil):
		// No schedule: KFP runs such a recurring run once, when it is created.
		return m, nil
	case t.CronSchedule != nil && t.PeriodicSchedule != nil:
		return m, fmt.Errorf("trigger has both cron_schedule and periodic_schedule: %w", ErrInvalid)
	case t.CronSchedule != nil:
		c := t.CronSchedule
		m.Cron, m.TimeZone = c.Cron, c.TimeZone
		if c.StartTime != nil {
			m.StartTime = time.Time(*c.StartTime)
		}
		if c.EndTime != nil {
			m.EndTime = time.Time(*c.EndTime)
		}
		if m.Cron == "" {
			return m, fmt.Errorf("trigger.cron_schedule.cron is empty: %w", ErrInvalid)
		}
	default:
		p := t.PeriodicSchedule
		m.IntervalSeconds = int64(p.IntervalSecond)
		if p.StartTime != nil {
			m.StartTime = time.Time(*p.StartTime)
		}
		if p.EndTime != nil {
			m.EndTime = time.Time(*p.EndTime)
		}
		if m.IntervalSeconds <= 0 {
			return m, fmt.Errorf("trigger.periodic_schedule.interval_second must be positive: %w", ErrInvalid)
		}
	}
	return m, nil
}

func (s *Server) createRecurringRun(c *gin.Context) {
	var in recurringRunIn
	if err := decodeBody(c, shapeRecurringRun, &in); err != nil {
		abort(c, err)
		return
	}
	rr, err := s.newRecurringRun(c, &in)
	if err != nil {
		abort(c, err)
		return
	}
	if err := s.d.Meta.CreateRecurringRun(c, rr); err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, toWireRecurringRun(rr))
}

// newRecurringRun validates a request as KFP does and builds the record.
func (s *Server) newRecurringRun(c *gin.Context, in *recurringRunIn) (*meta.RecurringRun, error) {
	if in.DisplayName == "" {
		return nil, fmt.Errorf("recurring run display_name is empty: %w", ErrInvalid)
	}
	mode, err := decodeEnum(in.Mode, modeNames, "mode")
	if err != nil {
		return nil, err
	}
	maxConc := int64(in.MaxConcurrency)
	if maxConc == 0 {
		maxConc = 1
	}
	if maxConc < 1 || maxConc > 10 {
		return nil, fmt.Errorf("max_concurrency %d is out of range [1, 10]: %w", maxConc, ErrInvalid)
	}
	trig, err := in.Trigger.toMeta()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	if _, err := schedule.ParseTrigger(trig, now); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	params, err := in.RuntimeConfig.params()
	if err != nil {
		return nil, err
	}
	pid, vid := source(in.PipelineVersionReference, in.PipelineVersionID)
	src, err := resolveSource(c, s.d.Meta, pid, vid, in.PipelineSpec)
	if err != nil {
		return nil, err
	}
	probe := schedule.Macros{RunUUID: uuid.NewString(), Index: 1, CurrentTime: now, ScheduledTime: now}
	if _, err := spec.ResolveRuntimeParameters(src.pipeline.Spec, probe.ExpandParams(params)); err != nil {
		return nil, err
	}
	expID := in.ExperimentID
	if expID == "" {
		if expID, err = s.d.Meta.DefaultExperimentID(c); err != nil {
			return nil, err
		}
	}
	rr := &meta.RecurringRun{
		ID: uuid.NewString(), DisplayName: in.DisplayName, Description: in.Description,
		Namespace: in.Namespace, ExperimentID: expID, PipelineID: src.pipelineID, PipelineVersionID: vid,
		RuntimeConfig:  meta.RuntimeConfig{Parameters: params},
		ServiceAccount: firstNonEmpty(in.ServiceAccount, DefaultServiceAccount), MaxConcurrency: maxConc, Trigger: trig,
		Enabled: mode != "DISABLE", NoCatchup: in.NoCatchup, CreatedAt: now, UpdatedAt: now,
	}
	if in.RuntimeConfig != nil {
		rr.RuntimeConfig.PipelineRoot = in.RuntimeConfig.PipelineRoot
	}
	if src.inline {
		rr.InlineSpec = src.pipeline.StoredJSON()
	}
	return rr, nil
}

func (s *Server) getRecurringRun(c *gin.Context) {
	r, err := s.d.Meta.GetRecurringRun(c, c.Param("id"))
	if err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, toWireRecurringRun(r))
}

func (s *Server) listRecurringRuns(c *gin.Context) {
	opts, err := listOptions(c)
	if err != nil {
		abort(c, err)
		return
	}
	p, err := s.d.Meta.ListRecurringRuns(c, c.Query("experiment_id"), opts)
	if err != nil {
		abort(c, err)
		return
	}
	// The proto field is camelCase itself, so the JSON key is "recurringRuns".
	out := struct {
		RecurringRuns []wireRecurringRun `json:"recurringRuns,omitempty"`
		TotalSize     int                `json:"total_size,omitempty"`
		NextPageToken string             `json:"next_page_token,omitempty"`
	}{TotalSize: p.TotalSize, NextPageToken: p.NextPageToken}
	for _, r := range p.Items {
		out.RecurringRuns = append(out.RecurringRuns, toWireRecurringRun(r))
	}
	writeJSON(c, out)
}

func (s *Server) deleteRecurringRun(c *gin.Context) {
	if pp := c.Query("propagation_policy"); pp != "" {
		ok := false
		for _, n := range []string{"DELETE_PROPAGATION_POLICY_UNSPECIFIED", "FOREGROUND", "BACKGROUND", "ORPHAN", "0", "1", "2", "3"} {
			ok = ok || pp == n
		}
		if !ok {
			abort(c, fmt.Errorf("propagation_policy %q is unknown: %w", pp, ErrInvalid))
			return
		}
	}
	if err := s.d.Meta.DeleteRecurringRun(c, c.Param("id")); err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, empty)
}

// recurringRunAction serves POST /recurringruns/{id}:enable and :disable.
func (s *Server) recurringRunAction(c *gin.Context) {
	id, action := splitAction(c.Param("id"))
	var err error
	switch action {
	case "enable":
		_, err = s.d.Meta.SetRecurringRunEnabled(c, id, true)
	case "disable":
		_, err = s.d.Meta.SetRecurringRunEnabled(c, id, false)
	default:
		err = fmt.Errorf("unknown recurring run method %q: %w", action, ErrNotFound)
	}
	if err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, empty)
}
