// Package transfer copies pipelines, their versions, experiments and recurring runs from one
// KFP v2beta1 endpoint to another (a kfp-box or a KFP cluster), through the shared client:
// `kfp-box push` copies from the box, `kfp-box pull` into it.
//
// A copy is planned from both sides before anything is written, so that a dry run shows
// exactly what a real one does and lint findings can refuse it whole. It is idempotent: a
// version whose spec digest the target pipeline already has is left alone, a changed spec
// becomes one new version, and a version name the target already uses for another spec gets
// the digest appended, said in the report (names never collide silently). Recurring runs are
// created paused unless asked otherwise; one that exists under the same name with another
// definition is a failure, never a second schedule.
package transfer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/kfp-box/kfp-box/appliance/client"
	"github.com/kfp-box/kfp-box/appliance/lint"
	"github.com/kfp-box/kfp-box/appliance/spec"
)

// Options select what to copy and how.
type Options struct {
	// Names are pipeline names or glob patterns (path.Match); none selects every pipeline.
	Names []string
	// Filter is a KFP filter (JSON) applied to the source's pipeline list.
	Filter string
	// Experiments copies every experiment of the source (by display name).
	Experiments bool
	// RecurringRuns copies the recurring runs of the selected pipelines (and their
	// experiments); they are created paused unless EnableRecurringRuns.
	RecurringRuns       bool
	EnableRecurringRuns bool
	// DryRun plans and reports without writing anything.
	DryRun bool
	// Lint checks what is about to be created against Target; findings refuse the copy
	// unless Force.
	Lint   bool
	Force  bool
	Target lint.Target
	// Progress receives one line per object (nil: none).
	Progress io.Writer
}

// Kinds of objects.
const (
	KindPipeline     = "pipeline"
	KindVersion      = "version"
	KindExperiment   = "experiment"
	KindRecurringRun = "recurring run"
)

// Actions.
const (
	Created     = "created"
	Unchanged   = "unchanged"
	Failed      = "failed"
	WouldCreate = "would create"
)

// Item is what happened to one object.
type Item struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"`
	// Detail is the digest, a new name, or the reason of a failure.
	Detail string `json:"detail,omitempty"`
	// TargetID is the object's id on the target (when known).
	TargetID string `json:"target_id,omitempty"`
}

// Report is the outcome of a copy.
type Report struct {
	Items []Item `json:"items"`
	// Findings are the lint findings for what was to be created.
	Findings []lint.Finding `json:"findings,omitempty"`
	// Refused says the copy stopped, writing nothing, because of Findings.
	Refused bool `json:"refused,omitempty"`
}

// Failed counts failed objects.
func (r *Report) Failed() int {
	n := 0
	for _, it := range r.Items {
		if it.Action == Failed {
			n++
		}
	}
	return n
}

// Count counts objects of a kind with an action.
func (r *Report) Count(kind, action string) int {
	n := 0
	for _, it := range r.Items {
		if it.Kind == kind && it.Action == action {
			n++
		}
	}
	return n
}

// WriteSummary prints one row per kind: how many were created (or would be), unchanged
// and failed.
func (r *Report) WriteSummary(w io.Writer, dryRun bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	created := "CREATED"
	if dryRun {
		created = "TO CREATE"
	}
	fmt.Fprintf(tw, "KIND\t%s\tUNCHANGED\tFAILED\n", created)
	for _, k := range []string{KindExperiment, KindPipeline, KindVersion, KindRecurringRun} {
		c := r.Count(k, Created) + r.Count(k, WouldCreate)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", k, c, r.Count(k, Unchanged), r.Count(k, Failed))
	}
	return tw.Flush()
}

// copier holds one copy's state.
type copier struct {
	src, dst *client.Client
	o        Options
	rep      *Report
	// versionMap maps source version ids to target version ids (planned ones: "").
	versionMap map[string]string
	// pipelineMap maps source pipeline ids to target pipeline ids.
	pipelineMap map[string]string
	// expMap maps experiment names to target experiment ids ("" while planned).
	expMap map[string]string
	// srcExps are the source's experiments by name.
	srcExps map[string]client.Experiment
}

// versionPlan is one source version and what to do with it.
type versionPlan struct {
	src    client.PipelineVersion
	digest string
	// create with name (else unchanged as targetID).
	create   bool
	name     string
	targetID string
	// same is the version of this copy that creates the same spec, for a duplicate.
	same *versionPlan
	err  error
}

type pipelinePlan struct {
	src      client.Pipeline
	targetID string // "" when the pipeline is to be created
	versions []*versionPlan
	err      error
}

type experimentPlan struct {
	src      client.Experiment
	targetID string
}

type recurringPlan struct {
	src      client.RecurringRun
	body     *client.RecurringRun // what to create; nil when unchanged or failed
	targetID string
	expName  string
	err      error
}

// Copy copies from src to dst as o says. The error is for failures that stop the whole
// copy (the source cannot be listed); failures of single objects are in the report.
func Copy(ctx context.Context, src, dst *client.Client, o Options) (*Report, error) {
	c := &copier{src: src, dst: dst, o: o, rep: &Report{},
		versionMap: map[string]string{}, pipelineMap: map[string]string{}, expMap: map[string]string{},
		srcExps: map[string]client.Experiment{}}
	pipelines, err := c.planPipelines(ctx)
	if err != nil {
		return nil, err
	}
	var recurring []*recurringPlan
	if o.RecurringRuns {
		if recurring, err = c.planRecurring(ctx, pipelines); err != nil {
			return nil, err
		}
	}
	experiments, err := c.planExperiments(ctx, recurring)
	if err != nil {
		return nil, err
	}
	if o.Lint {
		c.lint(pipelines, recurring)
		if len(c.rep.Findings) > 0 && !o.Force {
			c.rep.Refused = true
			return c.rep, nil
		}
	}
	c.runExperiments(ctx, experiments)
	c.runPipelines(ctx, pipelines)
	c.runRecurring(ctx, recurring)
	return c.rep, nil
}

func (c *copier) report(it Item) {
	c.rep.Items = append(c.rep.Items, it)
	if c.o.Progress == nil {
		return
	}
	line := fmt.Sprintf("%-13s %-40s %s", it.Kind, it.Name, it.Action)
	if it.Detail != "" {
		line += " (" + it.Detail + ")"
	}
	fmt.Fprintln(c.o.Progress, line)
}

// selected reports whether a pipeline name matches the selection.
func (c *copier) selected(name string) bool {
	if len(c.o.Names) == 0 {
		return true
	}
	for _, pat := range c.o.Names {
		if ok, _ := path.Match(pat, name); ok || pat == name {
			return true
		}
	}
	return false
}

// withSpecs fills in the specs of versions listed without them.
func withSpecs(ctx context.Context, cl *client.Client, pipelineID string, vs []client.PipelineVersion) error {
	for i := range vs {
		if len(vs[i].PipelineSpec) > 0 && string(vs[i].PipelineSpec) != "null" {
			continue
		}
		full, err := cl.GetPipelineVersion(ctx, pipelineID, vs[i].PipelineVersionID)
		if err != nil {
			return err
		}
		vs[i].PipelineSpec = full.PipelineSpec
	}
	return nil
}

func (c *copier) planPipelines(ctx context.Context) ([]*pipelinePlan, error) {
	srcPipes, err := c.src.ListPipelines(ctx, c.o.Filter)
	if err != nil {
		return nil, fmt.Errorf("listing the source's pipelines: %w", err)
	}
	dstPipes, err := c.dst.ListPipelines(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("listing the target's pipelines: %w", err)
	}
	byKey := map[string]client.Pipeline{}
	for _, p := range dstPipes {
		byKey[p.Key()] = p
	}
	sort.SliceStable(srcPipes, func(i, j int) bool { return srcPipes[i].Key() < srcPipes[j].Key() })
	var plans []*pipelinePlan
	for _, sp := range srcPipes {
		if !c.selected(sp.Key()) {
			continue
		}
		pp := &pipelinePlan{src: sp}
		plans = append(plans, pp)
		vs, err := c.src.ListPipelineVersions(ctx, sp.PipelineID)
		if err == nil {
			err = withSpecs(ctx, c.src, sp.PipelineID, vs)
		}
		if err != nil {
			pp.err = fmt.Errorf("reading its versions on the source: %w", err)
			continue
		}
		digests := map[string]string{} // digest -> target version id
		planned := map[string]*versionPlan{}
		names := map[string]bool{}
		if tp, ok := byKey[sp.Key()]; ok {
			pp.targetID = tp.PipelineID
			c.pipelineMap[sp.PipelineID] = tp.PipelineID
			tvs, err := c.dst.ListPipelineVersions(ctx, tp.PipelineID)
			if err == nil {
				err = withSpecs(ctx, c.dst, tp.PipelineID, tvs)
			}
			if err != nil {
				pp.err = fmt.Errorf("reading its versions on the target: %w", err)
				continue
			}
			for _, tv := range tvs {
				names[tv.Key()] = true
				if d, err := client.SpecDigest(tv.PipelineSpec); err == nil {
					if _, seen := digests[d]; !seen {
						digests[d] = tv.PipelineVersionID
					}
				}
			}
		}
		first := pp.targetID == ""
		for _, sv := range vs {
			vp := &versionPlan{src: sv}
			pp.versions = append(pp.versions, vp)
			d, err := client.SpecDigest(sv.PipelineSpec)
			if err != nil {
				vp.err = err
				continue
			}
			vp.digest = d
			if id, ok := digests[d]; ok {
				vp.targetID = id
				c.versionMap[sv.PipelineVersionID] = id
				continue
			}
			if other, ok := planned[d]; ok {
				vp.same = other
				c.versionMap[sv.PipelineVersionID] = ""
				continue
			}
			vp.create = true
			vp.name = sv.Key()
			if first {
				// An upload creates the pipeline with one version named as the pipeline.
				vp.name, first = sp.Key(), false
			}
			if names[vp.name] {
				vp.name = sv.Key() + "-" + shortDigest(d)
				if names[vp.name] {
					vp.err = fmt.Errorf("the target has versions named %q and %q with other specs", sv.Key(), vp.name)
					vp.create = false
					continue
				}
			}
			names[vp.name] = true
			planned[d] = vp
			c.versionMap[sv.PipelineVersionID] = "" // known once created
		}
	}
	return plans, nil
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

func (c *copier) planRecurring(ctx context.Context, pipelines []*pipelinePlan) ([]*recurringPlan, error) {
	srcRuns, err := c.src.ListRecurringRuns(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("listing the source's recurring runs: %w", err)
	}
	selectedPipe := map[string]bool{}
	selectedVersion := map[string]bool{}
	for _, pp := range pipelines {
		selectedPipe[pp.src.PipelineID] = true
		for _, vp := range pp.versions {
			selectedVersion[vp.src.PipelineVersionID] = true
		}
	}
	srcExps, err := c.src.ListExperiments(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("listing the source's experiments: %w", err)
	}
	expName := map[string]string{}
	for _, e := range srcExps {
		expName[e.ExperimentID] = e.DisplayName
		c.srcExps[e.DisplayName] = e
	}
	var plans []*recurringPlan
	for _, rr := range srcRuns {
		ref := rr.PipelineVersionReference
		switch {
		case ref != nil && (selectedPipe[ref.PipelineID] || selectedVersion[ref.PipelineVersionID]):
		case ref == nil && len(rr.PipelineSpec) > 0 && len(c.o.Names) == 0 && c.o.Filter == "":
		default:
			continue
		}
		rp := &recurringPlan{src: rr, expName: expName[rr.ExperimentID]}
		if rp.expName == "" && rr.ExperimentID != "" {
			e, err := c.src.GetExperiment(ctx, rr.ExperimentID)
			if err != nil {
				rp.err = fmt.Errorf("its experiment %s: %w", rr.ExperimentID, err)
			} else {
				rp.expName = e.DisplayName
			}
		}
		plans = append(plans, rp)
	}
	sort.SliceStable(plans, func(i, j int) bool { return plans[i].src.DisplayName < plans[j].src.DisplayName })
	return plans, nil
}

func (c *copier) planExperiments(ctx context.Context, recurring []*recurringPlan) ([]*experimentPlan, error) {
	want := map[string]client.Experiment{}
	if c.o.Experiments {
		srcExps, err := c.src.ListExperiments(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("listing the source's experiments: %w", err)
		}
		for _, e := range srcExps {
			want[e.DisplayName] = e
		}
	}
	for _, rp := range recurring {
		if rp.expName != "" {
			if _, ok := want[rp.expName]; !ok {
				e, known := c.srcExps[rp.expName]
				if !known {
					e = client.Experiment{DisplayName: rp.expName}
				}
				want[rp.expName] = e
			}
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	dstExps, err := c.dst.ListExperiments(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("listing the target's experiments: %w", err)
	}
	have := map[string]string{}
	for _, e := range dstExps {
		have[e.DisplayName] = e.ExperimentID
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	var plans []*experimentPlan
	for _, n := range names {
		plans = append(plans, &experimentPlan{src: want[n], targetID: have[n]})
	}
	return plans, nil
}

// lint collects findings for every version and recurring run that is to be created.
func (c *copier) lint(pipelines []*pipelinePlan, recurring []*recurringPlan) {
	for _, pp := range pipelines {
		for _, vp := range pp.versions {
			if !vp.create {
				continue
			}
			p, err := spec.FromJSON(vp.src.PipelineSpec)
			if err != nil {
				vp.err, vp.create = fmt.Errorf("its spec does not parse: %w", err), false
				continue
			}
			for _, f := range lint.Pipeline(p, c.o.Target) {
				f.Where = pp.src.Key() + "/" + vp.src.Key() + ": " + f.Where
				c.rep.Findings = append(c.rep.Findings, f)
			}
		}
	}
	for _, rp := range recurring {
		s := lint.Schedule{Name: rp.src.DisplayName}
		if t := rp.src.Trigger; t != nil && t.CronSchedule != nil {
			s.Cron, s.TimeZone = t.CronSchedule.Cron, t.CronSchedule.TimeZone
		}
		c.rep.Findings = append(c.rep.Findings, lint.RecurringRun(s, c.o.Target)...)
		if len(rp.src.PipelineSpec) > 0 {
			if p, err := spec.FromJSON(rp.src.PipelineSpec); err == nil {
				for _, f := range lint.Pipeline(p, c.o.Target) {
					f.Where = "recurring run " + rp.src.DisplayName + ": " + f.Where
					c.rep.Findings = append(c.rep.Findings, f)
				}
			}
		}
	}
}

func (c *copier) runExperiments(ctx context.Context, plans []*experimentPlan) {
	for _, ep := range plans {
		it := Item{Kind: KindExperiment, Name: ep.src.DisplayName}
		switch {
		case ep.targetID != "":
			it.Action, it.TargetID = Unchanged, ep.targetID
		case c.o.DryRun:
			it.Action = WouldCreate
		default:
			e, err := c.dst.CreateExperiment(ctx, ep.src.DisplayName, ep.src.Description)
			if err != nil {
				it.Action, it.Detail = Failed, err.Error()
			} else {
				it.Action, it.TargetID, ep.targetID = Created, e.ExperimentID, e.ExperimentID
			}
		}
		c.expMap[ep.src.DisplayName] = ep.targetID
		c.report(it)
	}
}

func (c *copier) runPipelines(ctx context.Context, plans []*pipelinePlan) {
	for _, pp := range plans {
		name := pp.src.Key()
		if pp.err != nil {
			c.report(Item{Kind: KindPipeline, Name: name, Action: Failed, Detail: pp.err.Error()})
			continue
		}
		if pp.targetID != "" {
			c.report(Item{Kind: KindPipeline, Name: name, Action: Unchanged, TargetID: pp.targetID})
		}
		for _, vp := range pp.versions {
			vname := name + "/" + vp.src.Key()
			it := Item{Kind: KindVersion, Name: vname, Detail: shortDigest(vp.digest)}
			switch {
			case vp.err != nil:
				it.Action, it.Detail = Failed, vp.err.Error()
			case vp.same != nil:
				vp.targetID = vp.same.targetID
				it.Action, it.TargetID = Unchanged, vp.targetID
				it.Detail += ", the same spec as " + vp.same.src.Key()
			case !vp.create:
				it.Action, it.TargetID = Unchanged, vp.targetID
			case c.o.DryRun:
				it.Action = WouldCreate
				if pp.targetID == "" && vp == firstCreate(pp) {
					c.report(Item{Kind: KindPipeline, Name: name, Action: WouldCreate})
				}
				if vp.name != vp.src.Key() {
					it.Detail += ", as " + vp.name
				}
			default:
				c.createVersion(ctx, pp, vp, &it)
			}
			if vp.targetID != "" {
				c.versionMap[vp.src.PipelineVersionID] = vp.targetID
			}
			c.report(it)
		}
	}
}

func firstCreate(pp *pipelinePlan) *versionPlan {
	for _, vp := range pp.versions {
		if vp.create {
			return vp
		}
	}
	return nil
}

// createVersion uploads one version (and its pipeline, for the first one).
func (c *copier) createVersion(ctx context.Context, pp *pipelinePlan, vp *versionPlan, it *Item) {
	pkg, err := client.SpecPackage(vp.src.PipelineSpec)
	if err != nil {
		it.Action, it.Detail = Failed, err.Error()
		return
	}
	if pp.targetID == "" {
		p, err := c.dst.UploadPipeline(ctx, pp.src.Key(), pp.src.DisplayName, pp.src.Description, pkg)
		if err != nil {
			c.report(Item{Kind: KindPipeline, Name: pp.src.Key(), Action: Failed, Detail: err.Error()})
			it.Action, it.Detail = Failed, "its pipeline could not be created"
			pp.err = err
			return
		}
		pp.targetID = p.PipelineID
		c.pipelineMap[pp.src.PipelineID] = p.PipelineID
		c.report(Item{Kind: KindPipeline, Name: pp.src.Key(), Action: Created, TargetID: p.PipelineID})
		// The upload made the pipeline's first version: find it.
		vs, err := c.dst.ListPipelineVersions(ctx, p.PipelineID)
		if err != nil || len(vs) == 0 {
			it.Action, it.Detail = Failed, fmt.Sprintf("the new pipeline's first version cannot be listed: %v", err)
			return
		}
		vp.targetID = vs[0].PipelineVersionID
	} else if pp.err != nil {
		it.Action, it.Detail = Failed, "its pipeline could not be created"
		return
	} else {
		v, err := c.dst.UploadPipelineVersion(ctx, pp.targetID, vp.name, vp.src.DisplayName, vp.src.Description, pkg)
		if err != nil {
			it.Action, it.Detail = Failed, err.Error()
			return
		}
		vp.targetID = v.PipelineVersionID
	}
	it.Action, it.TargetID = Created, vp.targetID
	if vp.name != vp.src.Key() {
		it.Detail += ", as " + vp.name
	}
}

func (c *copier) runRecurring(ctx context.Context, plans []*recurringPlan) {
	existing := map[string][]client.RecurringRun{} // target experiment id -> runs
	for _, rp := range plans {
		it := Item{Kind: KindRecurringRun, Name: rp.src.DisplayName}
		if rp.err != nil {
			it.Action, it.Detail = Failed, rp.err.Error()
			c.report(it)
			continue
		}
		body, err := c.recurringBody(rp)
		if err != nil {
			it.Action, it.Detail = Failed, err.Error()
			c.report(it)
			continue
		}
		expID := body.ExperimentID
		if expID != "" {
			if _, ok := existing[expID]; !ok {
				runs, err := c.dst.ListRecurringRuns(ctx, expID)
				if err != nil {
					it.Action, it.Detail = Failed, "listing the target's recurring runs: "+err.Error()
					c.report(it)
					continue
				}
				existing[expID] = runs
			}
		}
		if same, differs := matchRecurring(existing[expID], body); same != "" {
			it.Action, it.TargetID = Unchanged, same
			c.report(it)
			continue
		} else if differs {
			it.Action, it.Detail = Failed, "the target has a recurring run of this name in the experiment with another schedule, pipeline or parameters; rename or delete one"
			c.report(it)
			continue
		}
		if c.o.DryRun {
			it.Action = WouldCreate
			if body.Mode == "DISABLE" {
				it.Detail = "paused"
			}
			c.report(it)
			continue
		}
		got, err := c.dst.CreateRecurringRun(ctx, body)
		if err != nil {
			it.Action, it.Detail = Failed, err.Error()
		} else {
			it.Action, it.TargetID = Created, got.RecurringRunID
			if body.Mode == "DISABLE" {
				it.Detail = "paused"
			}
		}
		c.report(it)
	}
}

// defaultServiceAccount is what KFP (and the box) report when a run names no account.
const defaultServiceAccount = "pipeline-runner"

// recurringBody is the create request for the target: ids mapped, paused unless enabled.
func (c *copier) recurringBody(rp *recurringPlan) (*client.RecurringRun, error) {
	s := rp.src
	body := &client.RecurringRun{
		DisplayName: s.DisplayName, Description: s.Description, RuntimeConfig: s.RuntimeConfig,
		ServiceAccount: s.ServiceAccount, MaxConcurrency: s.MaxConcurrency, Trigger: s.Trigger,
		NoCatchup: s.NoCatchup, Mode: "DISABLE",
	}
	if body.ServiceAccount == defaultServiceAccount {
		// The source's default, not a choice: the target applies its own (a multi-user
		// cluster's namespaces have no pipeline-runner account).
		body.ServiceAccount = ""
	}
	if body.RuntimeConfig != nil && body.RuntimeConfig.Parameters == nil {
		rc := *body.RuntimeConfig
		rc.Parameters = map[string]any{}
		body.RuntimeConfig = &rc
	}
	if c.o.EnableRecurringRuns {
		body.Mode = "ENABLE"
	}
	if rp.expName != "" {
		id, ok := c.expMap[rp.expName]
		if !ok || (id == "" && !c.o.DryRun) {
			return nil, fmt.Errorf("its experiment %q is not on the target", rp.expName)
		}
		body.ExperimentID = id
	}
	if ref := s.PipelineVersionReference; ref != nil {
		tref := &client.VersionRef{}
		if ref.PipelineVersionID != "" {
			id, ok := c.versionMap[ref.PipelineVersionID]
			if !ok || (id == "" && !c.o.DryRun) {
				return nil, fmt.Errorf("its pipeline version %s was not copied", ref.PipelineVersionID)
			}
			tref.PipelineVersionID = id
		}
		if ref.PipelineID != "" {
			id, ok := c.pipelineMap[ref.PipelineID]
			if !ok && !c.o.DryRun {
				return nil, fmt.Errorf("its pipeline %s was not copied", ref.PipelineID)
			}
			tref.PipelineID = id
		}
		body.PipelineVersionReference = tref
	} else {
		body.PipelineSpec = s.PipelineSpec
	}
	return body, nil
}

// matchRecurring finds a target recurring run named like body: its id when it has the same
// definition, or differs when it has another.
func matchRecurring(runs []client.RecurringRun, body *client.RecurringRun) (same string, differs bool) {
	for _, r := range runs {
		if r.DisplayName != body.DisplayName {
			continue
		}
		if sameDefinition(&r, body) {
			return r.RecurringRunID, false
		}
		differs = true
	}
	return "", differs
}

func sameDefinition(a, b *client.RecurringRun) bool {
	if !reflect.DeepEqual(canonicalTrigger(a.Trigger), canonicalTrigger(b.Trigger)) || a.NoCatchup != b.NoCatchup {
		return false
	}
	if a.MaxConcurrency != b.MaxConcurrency && a.MaxConcurrency != 0 && b.MaxConcurrency != 0 {
		return false
	}
	if !sameJSON(params(a.RuntimeConfig), params(b.RuntimeConfig)) {
		return false
	}
	ra, rb := a.PipelineVersionReference, b.PipelineVersionReference
	switch {
	case ra != nil && rb != nil:
		return rb.PipelineVersionID == "" || ra.PipelineVersionID == rb.PipelineVersionID
	case ra == nil && rb == nil:
		return sameJSON(a.PipelineSpec, b.PipelineSpec)
	}
	return false
}

func params(rc *client.RuntimeConfig) any {
	if rc == nil || len(rc.Parameters) == 0 {
		return map[string]any{}
	}
	return rc.Parameters
}

func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		return false
	}
	ca, errA := client.CanonicalJSON(ja)
	cb, errB := client.CanonicalJSON(jb)
	return errA == nil && errB == nil && string(ca) == string(cb)
}

// canonicalTrigger keeps what defines a schedule (times are compared as given).
func canonicalTrigger(t *client.Trigger) client.Trigger {
	if t == nil {
		return client.Trigger{}
	}
	out := client.Trigger{}
	if t.CronSchedule != nil {
		cs := *t.CronSchedule
		if cs.TimeZone == "UTC" {
			cs.TimeZone = ""
		}
		out.CronSchedule = &cs
	}
	if t.PeriodicSchedule != nil {
		ps := *t.PeriodicSchedule
		out.PeriodicSchedule = &ps
	}
	return out
}
