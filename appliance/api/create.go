package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/kfp-box/kfp-box/appliance/schedule"
	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// RunCreator is the one path that creates runs, for POST /runs and for the scheduler:
// resolve the pipeline source, validate the IR, check and fill the runtime parameters, store
// the run as PENDING with its frozen spec (bumping the experiment's last_run_created_at), and
// hand it to the engine.
type RunCreator struct {
	Meta   *meta.Store
	Engine Engine
	Logger *slog.Logger
	// Preflight, when set, lists the tasks of a new run that will fail and why; they are
	// stored with the run as its warnings.
	Preflight func(ctx context.Context, p *spec.Pipeline) []string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

var _ schedule.Creator = (*RunCreator)(nil)

// RunCreator returns the server's run creation path, for the scheduler.
func (s *Server) RunCreator() *RunCreator {
	return &RunCreator{Meta: s.d.Meta, Engine: s.d.Engine, Logger: s.d.Logger, Preflight: s.d.Preflight}
}

// resolvedSource is a run's pipeline after resolving its source.
type resolvedSource struct {
	pipeline   *spec.Pipeline
	pipelineID string
	versionID  string
	inline     bool
}

// resolveSource finds and parses the IR a request names.
func resolveSource(ctx context.Context, m *meta.Store, pipelineID, versionID string, inline json.RawMessage) (*resolvedSource, error) {
	rs := &resolvedSource{}
	var raw json.RawMessage
	switch {
	case len(inline) > 0 && string(inline) != "null":
		if pipelineID != "" || versionID != "" {
			return nil, fmt.Errorf("give either pipeline_spec or pipeline_version_reference, not both: %w", ErrInvalid)
		}
		raw, rs.inline = inline, true
	case versionID != "":
		var v *meta.PipelineVersion
		var err error
		if pipelineID != "" {
			v, err = m.GetPipelineVersion(ctx, pipelineID, versionID)
		} else {
			v, err = m.FindPipelineVersion(ctx, versionID)
		}
		if err != nil {
			return nil, err
		}
		raw, rs.pipelineID, rs.versionID = v.Spec, v.PipelineID, v.ID
	case pipelineID != "":
		v, err := m.LatestPipelineVersion(ctx, pipelineID)
		if err != nil {
			return nil, err
		}
		raw, rs.pipelineID, rs.versionID = v.Spec, v.PipelineID, v.ID
	default:
		return nil, fmt.Errorf("a run needs pipeline_spec or pipeline_version_reference: %w", ErrInvalid)
	}
	p, err := spec.FromJSON(raw)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(p); err != nil {
		return nil, err
	}
	rs.pipeline = p
	return rs, nil
}

// CreateRun implements schedule.Creator.
func (rc *RunCreator) CreateRun(ctx context.Context, req schedule.RunRequest) (*meta.Run, error) {
	if req.DisplayName == "" {
		return nil, fmt.Errorf("run display_name is empty: %w", ErrInvalid)
	}
	src, err := resolveSource(ctx, rc.Meta, req.PipelineID, req.PipelineVersionID, req.Spec)
	if err != nil {
		return nil, err
	}
	params := req.RuntimeConfig.Parameters
	if params == nil {
		params = map[string]any{}
	}
	// The parameters are checked and completed here, but stored as given: KFP reports only
	// those, and the engine completes them again when it loads the run.
	if _, err := spec.ResolveRuntimeParameters(src.pipeline.Spec, params); err != nil {
		return nil, err
	}
	expID := req.ExperimentID
	if expID == "" {
		if expID, err = rc.Meta.DefaultExperimentID(ctx); err != nil {
			return nil, err
		}
	}
	now := time.Now
	if rc.Now != nil {
		now = rc.Now
	}
	created := now().UTC()
	id := req.RunID
	if id == "" {
		id = uuid.NewString()
	}
	scheduled := req.ScheduledAt
	if scheduled.IsZero() {
		scheduled = created
	}
	r := &meta.Run{
		ID: id, ExperimentID: expID, DisplayName: req.DisplayName, Description: req.Description,
		StorageState: meta.StorageAvailable, PipelineID: src.pipelineID, PipelineVersionID: src.versionID,
		InlineSpec: src.inline,
		RuntimeConfig: meta.RuntimeConfig{
			Parameters: req.RuntimeConfig.Parameters, PipelineRoot: req.RuntimeConfig.PipelineRoot,
		},
		ServiceAccount: firstNonEmpty(req.ServiceAccount, DefaultServiceAccount), CreatedAt: created, ScheduledAt: scheduled.UTC(),
		State: meta.RunPending, StateHistory: []meta.StateEvent{{UpdateTime: created, State: meta.RunPending}},
		RecurringRunID: req.RecurringRunID, PipelineName: src.pipeline.Name(),
	}
	if rc.Preflight != nil {
		r.Warnings = rc.Preflight(ctx, src.pipeline)
	}
	if err := rc.Meta.CreateRun(ctx, r, src.pipeline.StoredJSON()); err != nil {
		return nil, err
	}
	if rc.Engine != nil {
		if err := rc.Engine.Submit(ctx, r.ID); err != nil {
			rc.logger().Error("engine refused a new run", "run", r.ID, "err", err)
			failed, uerr := rc.Meta.UpdateRun(context.WithoutCancel(ctx), r.ID, func(run *meta.Run) error {
				meta.SetRunState(run, meta.RunFailed, now().UTC(), &meta.Status{Code: codeUnavailable, Message: "the engine did not accept the run: " + err.Error()})
				return nil
			})
			if uerr == nil {
				r = failed
			}
		}
	}
	return r, nil
}

// DefaultServiceAccount is the service account KFP gives runs and recurring runs that name
// none (its pipeline-runner); the box records it for compatibility only.
const DefaultServiceAccount = "pipeline-runner"

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func (rc *RunCreator) logger() *slog.Logger {
	if rc.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return rc.Logger
}
