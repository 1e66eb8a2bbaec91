package pyenv

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/wheelhouse"
)

// Wheels is what Preflight needs from the wheelhouse.
type Wheels interface {
	// Satisfies returns a wheel satisfying r, if the wheelhouse has one.
	Satisfies(r wheelhouse.Requirement) (wheelhouse.File, bool)
}

// PreflightOptions describe the box a run will execute on.
type PreflightOptions struct {
	Wheels Wheels
	// Upstream is the --pypi-upstream URL: with one, every requirement may be fetchable
	// and nothing is reported.
	Upstream string
	// ContainerRuntime is true when tasks run in images, which may already hold a package.
	ContainerRuntime bool
}

// Preflight lists, for a pipeline about to run, the tasks whose pip installs the box
// cannot satisfy (not in the wheelhouse, no upstream), one sentence each. Components that
// name their own index are not checked; environment markers are not evaluated, so a
// requirement guarded by one (python_version<"3.9") is skipped.
func Preflight(p *spec.Pipeline, o PreflightOptions) []string {
	if p == nil || p.Spec == nil || p.Spec.DeploymentSpec == nil || o.Wheels == nil || o.Upstream != "" {
		return nil
	}
	tasks := map[string][]string{} // executor label -> task names
	var walk func(c *spec.ComponentSpec, prefix string, depth int)
	walk = func(c *spec.ComponentSpec, prefix string, depth int) {
		if c == nil || c.DAG == nil || depth > 50 {
			return
		}
		for name, t := range c.DAG.Tasks {
			child := p.Spec.Components[t.ComponentRef.Name]
			if child == nil {
				continue
			}
			if child.ExecutorLabel != "" {
				tasks[child.ExecutorLabel] = append(tasks[child.ExecutorLabel], prefix+name)
			}
			walk(child, prefix+name+"/", depth+1)
		}
	}
	walk(p.Spec.Root, "", 0)
	var out []string
	for label, ex := range p.Spec.DeploymentSpec.Executors {
		if ex == nil || ex.Container == nil || len(tasks[label]) == 0 {
			continue
		}
		cmd := ParseCommand(append(append([]string(nil), ex.Container.Command...), ex.Container.Args...))
		if cmd.OwnIndex() {
			continue
		}
		var missing []string
		for _, r := range cmd.Requirements() {
			if r.Marker != "" {
				continue
			}
			if _, ok := o.Wheels.Satisfies(r); !ok {
				missing = append(missing, r.String())
			}
		}
		if len(missing) == 0 {
			continue
		}
		names := tasks[label]
		sort.Strings(names)
		unless := ""
		if o.ContainerRuntime {
			unless = fmt.Sprintf(" unless its image %s already has it", ex.Container.Image)
		}
		out = append(out, fmt.Sprintf("task %s will fail%s: %s", strings.Join(quoteAll(names), ", "), unless, Missing(missing[0], "")+moreMissing(missing)))
	}
	sort.Strings(out)
	return out
}

func moreMissing(m []string) string {
	if len(m) < 2 {
		return ""
	}
	return fmt.Sprintf(" (also missing: %s)", strings.Join(m[1:], ", "))
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}
