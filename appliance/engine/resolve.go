package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// WorkspacePath is where a run's workspace appears inside tasks.
const WorkspacePath = "/kfp-workspace"

func copyParams(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyArts(m map[string][]meta.ArtifactRef) map[string][]meta.ArtifactRef {
	if m == nil {
		return nil
	}
	out := make(map[string][]meta.ArtifactRef, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// errMissing is returned (wrapped) when a value an input refers to does not exist.
type errMissing struct{ what string }

func (e errMissing) Error() string { return e.what }

// resolveInputs resolves the inputs of task key of DAG record d as KFP's driver does
// (kfp-compat §4.3): sources, selectors, component defaults, coercion, f-string
// self-references.
func (p *planner) resolveInputs(d *meta.Execution, key string, t *spec.PipelineTaskSpec, comp *spec.ComponentSpec) (meta.IO, error) {
	var declP map[string]*spec.ParameterSpec
	var declA map[string]*spec.ArtifactSpec
	if comp != nil && comp.InputDefinitions != nil {
		declP = comp.InputDefinitions.Parameters
		declA = comp.InputDefinitions.Artifacts
	}
	io := meta.IO{Parameters: map[string]any{}, Artifacts: map[string][]meta.ArtifactRef{}}
	optionalP := func(n string) bool {
		ps := declP[n]
		return ps != nil && (ps.IsOptional || ps.HasDefault())
	}
	if t.Inputs != nil {
		for _, name := range sortedKeys(t.Inputs.Parameters) {
			src := t.Inputs.Parameters[name]
			v, ok, err := p.paramSource(d, key, name, src)
			if err != nil {
				var m errMissing
				if asMissing(err, &m) && optionalP(name) {
					continue
				}
				return io, fmt.Errorf("input parameter %q: %w", name, err)
			}
			if !ok {
				continue
			}
			if src.ParameterExpressionSelector != "" {
				v, err = evalSelector(src.ParameterExpressionSelector, v)
				if err != nil {
					return io, fmt.Errorf("input parameter %q: %w", name, err)
				}
			}
			if v == nil && optionalP(name) {
				continue
			}
			io.Parameters[name] = v
		}
		for _, name := range sortedKeys(t.Inputs.Artifacts) {
			src := t.Inputs.Artifacts[name]
			refs, err := p.artifactSource(d, src)
			if err != nil {
				if as := declA[name]; as != nil && as.IsOptional {
					continue
				}
				return io, fmt.Errorf("input artifact %q: %w", name, err)
			}
			io.Artifacts[name] = refs
		}
	}
	// The loop item is bound per iteration, not on the loop itself.
	item := ""
	switch {
	case t.ParameterIterator != nil:
		item = t.ParameterIterator.ItemInput
	case t.ArtifactIterator != nil:
		item = t.ArtifactIterator.ItemInput
	}
	// Defaults of unwired inputs, then coercion against declared types.
	for _, name := range sortedKeys(declP) {
		if name == item {
			continue
		}
		ps := declP[name]
		v, ok := io.Parameters[name]
		if !ok {
			switch {
			case ps.HasDefault():
				io.Parameters[name] = ps.Default()
			case ps.IsOptional:
				if comp.DAG != nil {
					io.Parameters[name] = nil
				}
			case ps.ParameterType == spec.TypeTaskFinalStatus:
				return io, fmt.Errorf("input parameter %q: no task final status wired", name)
			default:
				return io, fmt.Errorf("required input parameter %q has no value", name)
			}
			continue
		}
		cv, err := coerce(ps.ParameterType, v)
		if err != nil {
			return io, fmt.Errorf("input parameter %q: %w", name, err)
		}
		if len(ps.Literals) > 0 && !inLiterals(cv, ps.Literals) {
			return io, fmt.Errorf("input parameter %q: value %v is not one of %v", name, cv, ps.Literals)
		}
		io.Parameters[name] = cv
	}
	for _, name := range sortedKeys(declA) {
		if _, ok := io.Artifacts[name]; !ok && !declA[name].IsOptional && name != item {
			return io, fmt.Errorf("required input artifact %q has no value", name)
		}
	}
	expandSelfRefs(io.Parameters)
	if len(io.Artifacts) == 0 {
		io.Artifacts = nil
	}
	return io, nil
}

func asMissing(err error, m *errMissing) bool {
	for err != nil {
		if x, ok := err.(errMissing); ok {
			*m = x
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// paramSource returns the value of one input parameter source; ok is false when the
// value is absent (a null component input).
func (p *planner) paramSource(d *meta.Execution, key, name string, src *spec.InputParameterSpec) (any, bool, error) {
	switch {
	case src.ComponentInputParameter != "":
		v, ok := d.Inputs.Parameters[src.ComponentInputParameter]
		if !ok {
			return nil, false, errMissing{fmt.Sprintf("parent input %q has no value", src.ComponentInputParameter)}
		}
		return v, true, nil
	case src.TaskOutputParameter != nil:
		prod := p.children[d.ID][src.TaskOutputParameter.ProducerTask]
		if prod == nil || !succeeded(prod.State) {
			st := "not run"
			if prod != nil {
				st = prod.State
			}
			return nil, false, errMissing{fmt.Sprintf("producer task %q is %s", src.TaskOutputParameter.ProducerTask, st)}
		}
		v, ok := prod.Outputs.Parameters[src.TaskOutputParameter.OutputParameterKey]
		if !ok {
			return nil, false, errMissing{fmt.Sprintf("task %q has no output parameter %q", src.TaskOutputParameter.ProducerTask, src.TaskOutputParameter.OutputParameterKey)}
		}
		return v, true, nil
	case src.RuntimeValue != nil:
		if src.RuntimeValue.RuntimeParameter != "" {
			v, ok := p.in.Run.Params[src.RuntimeValue.RuntimeParameter]
			return v, ok, nil
		}
		return p.constant(d, key, src.RuntimeValue.ConstantValue()), true, nil
	case src.TaskFinalStatus != nil:
		prod := p.children[d.ID][src.TaskFinalStatus.ProducerTask]
		return p.finalStatus(prod, src.TaskFinalStatus.ProducerTask), true, nil
	}
	return nil, false, fmt.Errorf("no value source")
}

// constant substitutes pipeline-level placeholders in a constant (kfp-compat §3.4): whole
// constants equal to a placeholder, and {{$.workspace_path}} anywhere.
func (p *planner) constant(d *meta.Execution, key string, v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	r := p.in.Run
	switch s {
	case "{{$.pipeline_job_name}}":
		return r.DisplayName
	case "{{$.pipeline_job_resource_name}}":
		return r.ResourceName
	case "{{$.pipeline_job_uuid}}":
		return r.ID
	case "{{$.pipeline_task_name}}":
		return key
	case "{{$.pipeline_task_uuid}}":
		return d.ID
	case "{{$.pipeline_job_create_time_utc}}":
		return r.CreatedAt.UTC().Format(time.RFC3339)
	case "{{$.pipeline_job_schedule_time_utc}}":
		return r.ScheduledAt.UTC().Format(time.RFC3339)
	}
	return strings.ReplaceAll(s, "{{$.workspace_path}}", WorkspacePath)
}

func (p *planner) artifactSource(d *meta.Execution, src *spec.InputArtifactSpec) ([]meta.ArtifactRef, error) {
	switch {
	case src.ComponentInputArtifact != "":
		refs, ok := d.Inputs.Artifacts[src.ComponentInputArtifact]
		if !ok {
			return nil, errMissing{fmt.Sprintf("parent input artifact %q has no value", src.ComponentInputArtifact)}
		}
		return refs, nil
	case src.TaskOutputArtifact != nil:
		prod := p.children[d.ID][src.TaskOutputArtifact.ProducerTask]
		if prod == nil || !succeeded(prod.State) {
			return nil, errMissing{fmt.Sprintf("producer task %q did not succeed", src.TaskOutputArtifact.ProducerTask)}
		}
		refs, ok := prod.Outputs.Artifacts[src.TaskOutputArtifact.OutputArtifactKey]
		if !ok {
			return nil, errMissing{fmt.Sprintf("task %q has no output artifact %q", src.TaskOutputArtifact.ProducerTask, src.TaskOutputArtifact.OutputArtifactKey)}
		}
		return refs, nil
	}
	return nil, fmt.Errorf("no artifact source")
}

// mlmdState names an execution state as MLMD does in PipelineTaskFinalStatus.
func mlmdState(s string) string {
	switch s {
	case meta.ExecSucceeded:
		return "COMPLETE"
	case meta.ExecCached:
		return "CACHED"
	case meta.ExecFailed, meta.ExecOmitted:
		return "FAILED"
	case meta.ExecCanceled:
		return "CANCELED"
	case meta.ExecRunning, meta.ExecQueued:
		return "RUNNING"
	}
	return "NEW"
}

// finalStatus builds PipelineTaskFinalStatus of producer (kfp-compat §4.6). Unlike
// upstream, error carries the failure's message.
func (p *planner) finalStatus(prod *meta.Execution, key string) map[string]any {
	st := map[string]any{
		"state":                   "NEW",
		"error":                   map[string]any{},
		"pipelineJobResourceName": p.in.Run.ResourceName,
		"pipelineTaskName":        key,
	}
	if prod != nil {
		st["state"] = mlmdState(prod.State)
		if prod.Error != "" && !succeeded(prod.State) {
			st["error"] = map[string]any{"code": 2.0, "message": prod.Error}
		}
	}
	return st
}

// loopItems returns the items a loop record walks.
func (p *planner) loopItems(l *meta.Execution, t *spec.PipelineTaskSpec) ([]any, error) {
	if it := t.ArtifactIterator; it != nil {
		refs := l.Inputs.Artifacts[it.Items.InputArtifact]
		out := make([]any, len(refs))
		for i, r := range refs {
			out[i] = r
		}
		return out, nil
	}
	it := t.ParameterIterator
	var raw any
	if it.Items.Raw != "" {
		raw = it.Items.Raw
	} else {
		v, ok := l.Inputs.Parameters[it.Items.InputParameter]
		if !ok {
			return nil, fmt.Errorf("loop input %q has no value", it.Items.InputParameter)
		}
		raw = v
	}
	if s, ok := raw.(string); ok {
		var list []any
		if err := json.Unmarshal([]byte(s), &list); err != nil {
			return nil, fmt.Errorf("loop items %q are not a JSON list: %v", s, err)
		}
		return list, nil
	}
	list, ok := raw.([]any)
	if !ok {
		if raw == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("loop items are %T, not a list", raw)
	}
	return list, nil
}

// iterationInputs are the loop's inputs with the item bound to itemInput.
func (p *planner) iterationInputs(l *meta.Execution, t *spec.PipelineTaskSpec, item any) meta.IO {
	io := meta.IO{Parameters: copyParams(l.Inputs.Parameters), Artifacts: copyArts(l.Inputs.Artifacts)}
	if it := t.ArtifactIterator; it != nil {
		if io.Artifacts == nil {
			io.Artifacts = map[string][]meta.ArtifactRef{}
		}
		delete(io.Artifacts, it.Items.InputArtifact)
		io.Artifacts[it.ItemInput] = []meta.ArtifactRef{item.(meta.ArtifactRef)}
		return io
	}
	if io.Parameters == nil {
		io.Parameters = map[string]any{}
	}
	// Unlike KFP's driver, the list input is kept: nested loops and tasks of the body may
	// still refer to it.
	io.Parameters[t.ParameterIterator.ItemInput] = item
	return io
}

// loopOutputs gathers the outputs of all iterations in order (dsl.Collected).
func (p *planner) loopOutputs(l *meta.Execution, body *spec.ComponentSpec, n int) meta.IO {
	io := meta.IO{}
	if body == nil || body.DAG == nil || body.DAG.Outputs == nil {
		return io
	}
	outs := body.DAG.Outputs
	if len(outs.Parameters) > 0 {
		io.Parameters = map[string]any{}
		for name := range outs.Parameters {
			list := make([]any, 0, n)
			for i := 0; i < n; i++ {
				if it := p.iters[l.ID][i]; it != nil {
					if v, ok := it.Outputs.Parameters[name]; ok {
						list = append(list, v)
					}
				}
			}
			io.Parameters[name] = list
		}
	}
	if len(outs.Artifacts) > 0 {
		io.Artifacts = map[string][]meta.ArtifactRef{}
		for name := range outs.Artifacts {
			var list []meta.ArtifactRef
			for i := 0; i < n; i++ {
				if it := p.iters[l.ID][i]; it != nil {
					list = append(list, it.Outputs.Artifacts[name]...)
				}
			}
			io.Artifacts[name] = list
		}
	}
	return io
}

// dagOutputs computes a finished DAG's outputs from its children (OneOf: the first
// selector whose producer succeeded).
func (p *planner) dagOutputs(d *meta.Execution, comp *spec.ComponentSpec) (meta.IO, error) {
	io := meta.IO{}
	if comp.DAG.Outputs == nil {
		return io, nil
	}
	kids := p.children[d.ID]
	pick := func(sub, key string, arts bool) (any, bool) {
		c := kids[sub]
		if c == nil || !succeeded(c.State) {
			return nil, false
		}
		if arts {
			v, ok := c.Outputs.Artifacts[key]
			return v, ok
		}
		v, ok := c.Outputs.Parameters[key]
		return v, ok
	}
	for name, o := range comp.DAG.Outputs.Parameters {
		var sels []spec.ParameterSelector
		if o.ValueFromParameter != nil {
			sels = append(sels, *o.ValueFromParameter)
		}
		if o.ValueFromOneof != nil {
			sels = append(sels, o.ValueFromOneof.ParameterSelectors...)
		}
		for _, s := range sels {
			if v, ok := pick(s.ProducerSubtask, s.OutputParameterKey, false); ok {
				if io.Parameters == nil {
					io.Parameters = map[string]any{}
				}
				io.Parameters[name] = v
				break
			}
		}
	}
	for name, o := range comp.DAG.Outputs.Artifacts {
		for _, s := range o.ArtifactSelectors {
			if v, ok := pick(s.ProducerSubtask, s.OutputArtifactKey, true); ok {
				if io.Artifacts == nil {
					io.Artifacts = map[string][]meta.ArtifactRef{}
				}
				io.Artifacts[name] = v.([]meta.ArtifactRef)
				break
			}
		}
	}
	return io, nil
}

// coerce converts v to a parameter type as the driver does, leniently: STRING inputs get
// the text or JSON form of other values; strings holding a number, bool, list or struct are
// parsed; other mismatches are errors.
func coerce(typ string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case spec.TypeString:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return formatParam(v), nil
	case spec.TypeNumberInteger, spec.TypeNumberDouble:
		switch x := v.(type) {
		case float64:
			if typ == spec.TypeNumberInteger && x != math.Trunc(x) {
				return nil, fmt.Errorf("want an integer, got %v", x)
			}
			return x, nil
		case bool:
			if x {
				return 1.0, nil
			}
			return 0.0, nil
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return nil, fmt.Errorf("want a number, got %q", x)
			}
			return f, nil
		}
		return nil, fmt.Errorf("want a number, got %T", v)
	case spec.TypeBoolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			if err != nil {
				return nil, fmt.Errorf("want a boolean, got %q", x)
			}
			return b, nil
		}
		return nil, fmt.Errorf("want a boolean, got %T", v)
	case spec.TypeList:
		if _, ok := v.([]any); ok {
			return v, nil
		}
		if s, ok := v.(string); ok {
			var l []any
			if err := json.Unmarshal([]byte(s), &l); err == nil {
				return l, nil
			}
		}
		return nil, fmt.Errorf("want a list, got %T", v)
	case spec.TypeStruct, spec.TypeTaskFinalStatus, spec.TypeTaskConfig:
		if _, ok := v.(map[string]any); ok {
			return v, nil
		}
		if s, ok := v.(string); ok {
			var m map[string]any
			if err := json.Unmarshal([]byte(s), &m); err == nil {
				return m, nil
			}
		}
		return nil, fmt.Errorf("want a struct, got %T", v)
	}
	return v, nil
}

// formatParam renders a parameter as command-line text: strings as-is, numbers in the
// shortest decimal form, bools as true/false, lists and structs as compact JSON.
func formatParam(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func inLiterals(v any, lits []any) bool {
	vb, _ := json.Marshal(v)
	for _, l := range lits {
		lb, _ := json.Marshal(l)
		if string(lb) == string(vb) {
			return true
		}
	}
	return false
}

var inputParamRef = regexp.MustCompile(`\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}`)

// expandSelfRefs expands f-string self-references: a string input holding
// {{$.inputs.parameters['x']}} gets the value of input x (one pass, like the local runner).
func expandSelfRefs(params map[string]any) {
	var changed map[string]string
	for k, v := range params {
		s, ok := v.(string)
		if !ok || !strings.Contains(s, "{{$.inputs.parameters[") {
			continue
		}
		out := inputParamRef.ReplaceAllStringFunc(s, func(m string) string {
			name := inputParamRef.FindStringSubmatch(m)[1]
			if name == k {
				return m
			}
			if x, ok := params[name]; ok {
				return formatParam(x)
			}
			return m
		})
		if out != s {
			if changed == nil {
				changed = map[string]string{}
			}
			changed[k] = out
		}
	}
	for k, v := range changed {
		params[k] = v
	}
}
