package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
)

// SchemaVersion is the only IR schema version KFP accepts.
const SchemaVersion = "2.1.0"

var pipelineNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,127}$`)

// ValidatePipelineName checks an uploaded pipeline's name as KFP does.
func ValidatePipelineName(name string) error {
	if !pipelineNameRE.MatchString(name) {
		return invalidf("pipeline name %q must consist of lower case alphanumeric characters or '-', start with an alphanumeric character, and be at most 128 characters", name)
	}
	return nil
}

// Validate checks the IR's structure: the schema version, the pipeline name, a root DAG, and
// that every reference (components, executors, sibling tasks, inputs, DAG outputs) resolves.
// All problems are reported together.
func Validate(p *Pipeline) error {
	s := p.Spec
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if s.SchemaVersion != SchemaVersion {
		add("schemaVersion is %q, want %q", s.SchemaVersion, SchemaVersion)
	}
	if strings.TrimSpace(s.PipelineInfo.Name) == "" {
		add("pipelineInfo.name is empty")
	}
	if s.Root == nil {
		add("root is missing")
	} else if s.Root.DAG == nil {
		add("root has no dag")
	}
	if len(errs) == 0 {
		v := validator{s: s, add: add, seen: map[string]bool{}}
		v.component("root", s.Root)
		for name, c := range s.Components {
			if !v.seen[name] {
				v.component(name, c)
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.Strings(errs)
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Sprintf("and %d more", len(errs)-10))
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
}

type validator struct {
	s    *PipelineSpec
	add  func(string, ...any)
	seen map[string]bool
}

func (v *validator) component(name string, c *ComponentSpec) {
	v.seen[name] = true
	if c == nil {
		v.add("component %q is empty", name)
		return
	}
	if c.DAG == nil && c.ExecutorLabel == "" {
		v.add("component %q has neither a dag nor an executorLabel", name)
		return
	}
	if c.ExecutorLabel != "" {
		if v.s.DeploymentSpec == nil || v.s.DeploymentSpec.Executors[c.ExecutorLabel] == nil {
			v.add("component %q: executor %q is not in deploymentSpec.executors", name, c.ExecutorLabel)
		} else if e := v.s.DeploymentSpec.Executors[c.ExecutorLabel]; e.Container != nil && e.Container.Image == "" {
			v.add("executor %q: container image is empty", c.ExecutorLabel)
		}
	}
	if c.DAG == nil {
		return
	}
	inputs := c.InputDefinitions
	for key, t := range c.DAG.Tasks {
		where := fmt.Sprintf("component %q task %q", name, key)
		if t == nil {
			v.add("%s is empty", where)
			continue
		}
		ref := t.ComponentRef.Name
		if ref == "" {
			v.add("%s: componentRef.name is empty", where)
		} else if _, ok := v.s.Components[ref]; !ok {
			v.add("%s: component %q is not defined", where, ref)
		}
		for _, d := range t.DependentTasks {
			if _, ok := c.DAG.Tasks[d]; !ok {
				v.add("%s: dependent task %q is not in the same dag", where, d)
			}
		}
		if t.Inputs != nil {
			for in, ps := range t.Inputs.Parameters {
				v.paramSource(where, in, ps, c, inputs)
			}
			for in, as := range t.Inputs.Artifacts {
				if as == nil {
					continue
				}
				if as.TaskOutputArtifact != nil {
					if _, ok := c.DAG.Tasks[as.TaskOutputArtifact.ProducerTask]; !ok {
						v.add("%s: input artifact %q: producer task %q is not in the same dag", where, in, as.TaskOutputArtifact.ProducerTask)
					}
				}
				if n := as.ComponentInputArtifact; n != "" && (inputs == nil || inputs.Artifacts[n] == nil) {
					v.add("%s: input artifact %q: component input artifact %q is not declared", where, in, n)
				}
			}
		}
		if it := t.ParameterIterator; it != nil {
			if it.Items.Raw == "" && it.Items.InputParameter == "" {
				v.add("%s: parameterIterator has no items", where)
			}
			if it.Items.Raw != "" {
				var list []any
				if err := json.Unmarshal([]byte(it.Items.Raw), &list); err != nil {
					v.add("%s: parameterIterator items.raw is not a JSON list: %v", where, err)
				}
			}
		}
		if t.TriggerPolicy != nil {
			switch t.TriggerPolicy.Strategy {
			case "", StrategyUnspecified, StrategyAllSucceeded, StrategyAllCompleted:
			default:
				v.add("%s: unknown trigger strategy %q", where, t.TriggerPolicy.Strategy)
			}
		}
	}
	if o := c.DAG.Outputs; o != nil {
		for out, p := range o.Parameters {
			if p == nil {
				continue
			}
			var sels []ParameterSelector
			if p.ValueFromParameter != nil {
				sels = append(sels, *p.ValueFromParameter)
			}
			if p.ValueFromOneof != nil {
				sels = append(sels, p.ValueFromOneof.ParameterSelectors...)
			}
			for _, sel := range sels {
				if _, ok := c.DAG.Tasks[sel.ProducerSubtask]; !ok {
					v.add("component %q output parameter %q: producer subtask %q is not in the dag", name, out, sel.ProducerSubtask)
				}
			}
		}
		for out, a := range o.Artifacts {
			if a == nil {
				continue
			}
			for _, sel := range a.ArtifactSelectors {
				if _, ok := c.DAG.Tasks[sel.ProducerSubtask]; !ok {
					v.add("component %q output artifact %q: producer subtask %q is not in the dag", name, out, sel.ProducerSubtask)
				}
			}
		}
	}
}

func (v *validator) paramSource(where, in string, ps *InputParameterSpec, c *ComponentSpec, inputs *InputsSpec) {
	if ps == nil {
		return
	}
	if n := ps.ComponentInputParameter; n != "" && (inputs == nil || inputs.Parameters[n] == nil) {
		v.add("%s: input %q: component input parameter %q is not declared", where, in, n)
	}
	if o := ps.TaskOutputParameter; o != nil {
		if _, ok := c.DAG.Tasks[o.ProducerTask]; !ok {
			v.add("%s: input %q: producer task %q is not in the same dag", where, in, o.ProducerTask)
		}
	}
	if f := ps.TaskFinalStatus; f != nil {
		if _, ok := c.DAG.Tasks[f.ProducerTask]; !ok {
			v.add("%s: input %q: final status producer %q is not in the same dag", where, in, f.ProducerTask)
		}
	}
}

// ErrUnknownParameter is wrapped when a run supplies a parameter the pipeline does not declare.
var ErrUnknownParameter = errors.New("unknown parameter")

// ResolveRuntimeParameters checks a run's parameters against the root inputs, as KFP does,
// and returns them with defaults filled in: unknown parameters, missing required ones, wrong
// kinds and values outside literals are errors; optional inputs without a default are null.
func ResolveRuntimeParameters(s *PipelineSpec, params map[string]any) (map[string]any, error) {
	var decl map[string]*ParameterSpec
	if s.Root != nil && s.Root.InputDefinitions != nil {
		decl = s.Root.InputDefinitions.Parameters
	}
	out := make(map[string]any, len(decl))
	var errs []string
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d, ok := decl[n]
		if !ok {
			errs = append(errs, fmt.Sprintf("parameter %q is not an input of the pipeline", n))
			continue
		}
		val := params[n]
		if val == nil && (d.IsOptional || d.HasDefault()) {
			continue
		}
		if err := CheckKind(d.ParameterType, val); err != nil {
			errs = append(errs, fmt.Sprintf("parameter %q: %v", n, err))
			continue
		}
		if len(d.Literals) > 0 && !inLiterals(val, d.Literals) {
			errs = append(errs, fmt.Sprintf("parameter %q: value %v is not one of %v", n, val, d.Literals))
			continue
		}
		out[n] = normalise(d.ParameterType, val)
	}
	declNames := make([]string, 0, len(decl))
	for n := range decl {
		declNames = append(declNames, n)
	}
	sort.Strings(declNames)
	for _, n := range declNames {
		if _, ok := out[n]; ok {
			continue
		}
		d := decl[n]
		switch {
		case d.HasDefault():
			out[n] = d.Default()
		case d.IsOptional:
			out[n] = nil
		case d.ParameterType == TypeTaskFinalStatus:
		default:
			if _, given := params[n]; !given {
				errs = append(errs, fmt.Sprintf("parameter %q is required and has no default", n))
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return out, nil
}

// CheckKind reports whether a JSON value fits a parameter type.
func CheckKind(typ string, v any) error {
	switch typ {
	case TypeString:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("want a string, got %s", kindOf(v))
		}
	case TypeNumberInteger:
		f, ok := v.(float64)
		if !ok {
			return fmt.Errorf("want an integer, got %s", kindOf(v))
		}
		if f != math.Trunc(f) {
			return fmt.Errorf("want an integer, got %v", f)
		}
	case TypeNumberDouble:
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("want a number, got %s", kindOf(v))
		}
	case TypeBoolean:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("want a boolean, got %s", kindOf(v))
		}
	case TypeList:
		if _, ok := v.([]any); !ok {
			return fmt.Errorf("want a list, got %s", kindOf(v))
		}
	case TypeStruct:
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("want a struct, got %s", kindOf(v))
		}
	case TypeTaskFinalStatus:
		return errors.New("a task final status cannot be given as a run parameter")
	}
	return nil
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a struct"
	}
	return fmt.Sprintf("%T", v)
}

func normalise(_ string, v any) any { return v }

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
