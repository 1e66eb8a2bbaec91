// Package lint finds what a kfp-box accepts but a KFP cluster of a given version would
// reject or run differently, so that pushing a pipeline or a recurring run to a cluster is
// safe: ParallelFor over artifacts, the box's own extensions (Concat, artifact metadata
// placeholders, {{$.outputs.output_file}}, {{$.pipeline_root}}, time zones in cron), images
// a cluster cannot pull, GPU requests without an accelerator type, and features newer than
// the target. It is pure: no I/O, no network.
package lint

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/distribution/reference"

	"github.com/kfp-box/kfp-box/appliance/spec"
)

// Severity says what a cluster would do with a finding.
type Severity string

const (
	// Error: the cluster refuses it, or the task or run fails there.
	Error Severity = "error"
	// Warning: it runs, but not as it does on the box.
	Warning Severity = "warning"
)

// Finding is one problem, with where it is and what to do about it.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Where names the object: executor, task or recurring run.
	Where   string `json:"where"`
	Message string `json:"message"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s %s (%s): %s", f.Severity, f.Rule, f.Where, f.Message)
}

// Target is a KFP release line: kfp-2.x (any 2.x release, so features newer than 2.0 are
// findings) or kfp-2.N.
type Target struct {
	Minor int // -1 for "any 2.x"
}

// DefaultTarget is the release the box's compatibility reference follows.
var DefaultTarget = Target{Minor: 15}

func (t Target) String() string {
	if t.Minor < 0 {
		return "kfp-2.x"
	}
	return "kfp-2." + strconv.Itoa(t.Minor)
}

// atLeast reports whether every release of the target has minor version m or newer.
func (t Target) atLeast(m int) bool { return t.Minor >= m }

// ParseTarget reads kfp-2.x, kfp-2, kfp-2.N or kfp-2.N.P.
func ParseTarget(s string) (Target, error) {
	v, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), "kfp-")
	if !ok {
		return Target{}, fmt.Errorf("target %q: want kfp-2.x or kfp-2.N (for example kfp-2.15)", s)
	}
	parts := strings.Split(v, ".")
	if parts[0] != "2" || len(parts) > 3 {
		return Target{}, fmt.Errorf("target %q: only KFP 2 speaks the v2beta1 API and runs v2 pipelines", s)
	}
	if len(parts) == 1 || parts[1] == "x" {
		if len(parts) > 2 {
			return Target{}, fmt.Errorf("target %q: want kfp-2.x or kfp-2.N", s)
		}
		return Target{Minor: -1}, nil
	}
	for _, p := range parts[1:] {
		if _, err := strconv.Atoi(p); err != nil {
			return Target{}, fmt.Errorf("target %q: %q is not a number", s, p)
		}
	}
	m, _ := strconv.Atoi(parts[1])
	return Target{Minor: m}, nil
}

// workspaceMinor is the first KFP 2 release with pipeline workspaces
// (dsl.PipelineConfig(workspace=...), {{$.workspace_path}}).
const workspaceMinor = 14

var (
	reArtifactMetadata = regexp.MustCompile(`\{\{\$\.(inputs|outputs)\.artifacts\['[^']+'\]\.metadata`)
	reArtifactWhole    = regexp.MustCompile(`\{\{\$\.(inputs|outputs)\.artifacts\['[^']+'\]\}\}`)
)

// Pipeline lints a parsed pipeline for target t. Findings are sorted by rule and place.
func Pipeline(p *spec.Pipeline, t Target) []Finding {
	var out []Finding
	add := func(rule string, sev Severity, where, format string, args ...any) {
		out = append(out, Finding{Rule: rule, Severity: sev, Where: where, Message: fmt.Sprintf(format, args...)})
	}
	s := p.Spec
	if s.DefaultPipelineRoot != "" {
		add("default-pipeline-root", Warning, "pipeline", "KFP ignores defaultPipelineRoot (%s): runs use the run's pipeline_root or the cluster's default; set the pipeline root when you create runs", s.DefaultPipelineRoot)
	}
	// Tasks: iterators, pipeline-root constants.
	walkTasks(s, func(where string, task *spec.PipelineTaskSpec) {
		if task.ArtifactIterator != nil {
			add("artifact-iterator", Error, where, "ParallelFor over a list of artifacts is not implemented by KFP's backend; iterate over a parameter list (for example the artifacts' URIs) instead")
		}
		if task.Inputs != nil {
			for _, name := range sortedKeys(task.Inputs.Parameters) {
				in := task.Inputs.Parameters[name]
				if in.RuntimeValue == nil {
					continue
				}
				c := string(in.RuntimeValue.Constant)
				if strings.Contains(c, "{{$.pipeline_root}}") {
					add("pipeline-root-placeholder", Warning, where+" input "+name, "KFP does not resolve {{$.pipeline_root}}: the task receives the placeholder text")
				}
				if strings.Contains(c, "{{$.workspace_path}}") && !t.atLeast(workspaceMinor) {
					add("workspace", Error, where+" input "+name, "{{$.workspace_path}} needs KFP 2.%d or newer; %s lacks workspaces", workspaceMinor, t)
				}
			}
		}
	})
	// Executors: images, resources, command lines.
	if s.DeploymentSpec != nil {
		for _, label := range sortedKeys(s.DeploymentSpec.Executors) {
			ex := s.DeploymentSpec.Executors[label]
			c := ex.Container
			if c == nil {
				continue
			}
			if why := localImage(c.Image); why != "" {
				add("local-image", Error, label, "image %q %s; push it to a registry the cluster can pull from", c.Image, why)
			}
			if k := p.Platform.Kubernetes(label); k != nil && strings.EqualFold(k.ImagePullPolicy, "Never") {
				add("local-image", Error, label, "imagePullPolicy Never: the cluster's nodes must already hold image %q, which only this box has", c.Image)
			}
			if r := c.Resources; r != nil && r.Accelerator != nil {
				a := r.Accelerator
				count := a.ResourceCount
				if count == "" && a.Count != 0 {
					count = strconv.FormatInt(int64(a.Count), 10)
				}
				if count != "" && count != "0" && a.ResourceType == "" && a.Type == "" {
					add("gpu-without-type", Error, label, "%s accelerator(s) requested without an accelerator type: KFP sets a GPU limit only with a type (set_accelerator_type('nvidia.com/gpu')), so the task would run without a GPU", count)
				}
			}
			for _, arg := range append(append([]string{}, c.Command...), c.Args...) {
				switch {
				case strings.Contains(arg, `"Concat"`) && strings.HasPrefix(strings.TrimSpace(arg), "{"):
					add("concat-placeholder", Warning, label, "KFP's launcher does not expand Concat: the task receives the JSON text %s", clip(arg))
				case strings.Contains(arg, "{{$.outputs.output_file}}"):
					add("output-file-placeholder", Warning, label, "KFP's launcher does not resolve {{$.outputs.output_file}}")
				case reArtifactMetadata.MatchString(arg):
					add("metadata-placeholder", Warning, label, "KFP does not resolve artifact metadata placeholders: %s", clip(arg))
				case reArtifactWhole.MatchString(arg):
					add("artifact-list-placeholder", Warning, label, "KFP does not resolve whole-artifact placeholders: %s", clip(arg))
				case strings.Contains(arg, "{{$.pipeline_root}}"):
					add("pipeline-root-placeholder", Warning, label, "KFP does not resolve {{$.pipeline_root}}")
				case strings.Contains(arg, "{{$.workspace_path}}") && !t.atLeast(workspaceMinor):
					add("workspace", Error, label, "{{$.workspace_path}} needs KFP 2.%d or newer; %s lacks workspaces", workspaceMinor, t)
				}
			}
		}
	}
	if !t.atLeast(workspaceMinor) && p.Platform != nil {
		if k := p.Platform.Platforms["kubernetes"]; k != nil && strings.Contains(string(k.PipelineConfig), `"workspace"`) {
			add("workspace", Error, "pipeline", "a pipeline workspace needs KFP 2.%d or newer; %s lacks it", workspaceMinor, t)
		}
	}
	sortFindings(out)
	return out
}

// Schedule is the part of a recurring run lint reads.
type Schedule struct {
	// Name is the recurring run's display name.
	Name string
	// Cron is the cron expression ("" for a periodic schedule); TimeZone the box's
	// time_zone extension.
	Cron, TimeZone string
}

// RecurringRun lints a recurring run's schedule for target t.
func RecurringRun(s Schedule, t Target) []Finding {
	var out []Finding
	where := "recurring run " + s.Name
	if s.TimeZone != "" && s.TimeZone != "UTC" {
		out = append(out, Finding{Rule: "cron-time-zone", Severity: Error, Where: where,
			Message: fmt.Sprintf("time_zone %q is a kfp-box extension: KFP refuses the field and runs cron schedules in UTC; convert the schedule to UTC", s.TimeZone)})
	}
	c := strings.TrimSpace(s.Cron)
	if strings.HasPrefix(c, "CRON_TZ=") || strings.HasPrefix(c, "TZ=") {
		out = append(out, Finding{Rule: "cron-time-zone", Severity: Error, Where: where,
			Message: fmt.Sprintf("cron %q names a time zone, which KFP's cron parser refuses; convert the schedule to UTC", s.Cron)})
	}
	return out
}

// localImage says why a cluster cannot pull image ("" when it can, or cannot tell).
func localImage(image string) string {
	if image == "" || strings.Contains(image, "{{") {
		return ""
	}
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "is not a valid image reference (" + err.Error() + ")"
	}
	host := reference.Domain(ref)
	h := host
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	h = strings.Trim(h, "[]")
	switch {
	case h == "localhost", strings.HasPrefix(h, "127."), h == "::1", h == "0.0.0.0":
		return "is on this machine's own registry (" + host + ")"
	case strings.HasSuffix(h, ".localhost"), strings.HasSuffix(h, ".local"):
		return "is on a registry only this network resolves (" + host + ")"
	}
	return ""
}

// walkTasks calls fn for every task of every DAG, named by component and task key.
func walkTasks(s *spec.PipelineSpec, fn func(where string, task *spec.PipelineTaskSpec)) {
	visit := func(comp string, c *spec.ComponentSpec) {
		if c == nil || c.DAG == nil {
			return
		}
		for _, key := range sortedKeys(c.DAG.Tasks) {
			fn("task "+key+" of "+comp, c.DAG.Tasks[key])
		}
	}
	visit("root", s.Root)
	for _, name := range sortedKeys(s.Components) {
		visit(name, s.Components[name])
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Rule != fs[j].Rule {
			return fs[i].Rule < fs[j].Rule
		}
		return fs[i].Where < fs[j].Where
	})
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
