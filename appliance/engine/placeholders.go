package engine

import (
	"encoding/json"
	"regexp"
	"strings"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/meta"
	"github.com/kfp-box/kfp-box/storage/objects"
)

// artifactView is one artifact as a task sees it.
type artifactView struct {
	// Name is the MLMD-style id for inputs and the output name for outputs.
	Name     string
	Title    string
	Version  string
	URI      string
	Metadata map[string]any
}

func (a artifactView) json() map[string]any {
	md := a.Metadata
	if md == nil {
		md = map[string]any{}
	}
	v := a.Version
	if v == "" {
		v = "0.0.1"
	}
	return map[string]any{
		"name":     a.Name,
		"type":     map[string]any{"schemaTitle": a.Title, "schemaVersion": v},
		"uri":      a.URI,
		"metadata": md,
	}
}

// path is the artifact's local path inside the task (kfp-compat §4.2).
func (a artifactView) path() string { return containerPath(a.URI) }

// containerPath maps a URI to the path the SDK expects inside the task; URIs without a
// mapping are returned as they are, as the Python SDK does.
func containerPath(uri string) string {
	u, err := objects.ParseURI(uri)
	if err != nil {
		return uri
	}
	u.Query = ""
	p, err := objects.ContainerPath(u)
	if err != nil {
		return uri
	}
	return p
}

// taskIO is everything placeholders of one task attempt resolve against.
type taskIO struct {
	Params        map[string]any
	InArts        map[string][]artifactView
	OutArts       map[string][]artifactView
	OutParamFiles map[string]string
	// OutputFile is the executor output file's path inside the task.
	OutputFile string
	// Pipeline holds the pipeline-level placeholders ({{$.pipeline_job_name}}...).
	Pipeline map[string]string
}

// executorInput builds the ExecutorInput JSON object (kfp-compat §3.1).
func (io *taskIO) executorInput() map[string]any {
	in := map[string]any{}
	if len(io.Params) > 0 {
		pv := map[string]any{}
		for k, v := range io.Params {
			if v != nil {
				pv[k] = v
			}
		}
		in["parameterValues"] = pv
	}
	if len(io.InArts) > 0 {
		arts := map[string]any{}
		for k, list := range io.InArts {
			l := make([]any, len(list))
			for i, a := range list {
				l[i] = a.json()
			}
			arts[k] = map[string]any{"artifacts": l}
		}
		in["artifacts"] = arts
	}
	out := map[string]any{"outputFile": io.OutputFile}
	if len(io.OutParamFiles) > 0 {
		ps := map[string]any{}
		for k, f := range io.OutParamFiles {
			ps[k] = map[string]any{"outputFile": f}
		}
		out["parameters"] = ps
	}
	if len(io.OutArts) > 0 {
		arts := map[string]any{}
		for k, list := range io.OutArts {
			l := make([]any, len(list))
			for i, a := range list {
				l[i] = a.json()
			}
			arts[k] = map[string]any{"artifacts": l}
		}
		out["artifacts"] = arts
	}
	return map[string]any{"inputs": in, "outputs": out}
}

var placeholderRE = regexp.MustCompile(`\{\{\$[^{}]*\}\}`)

var (
	reInParam   = regexp.MustCompile(`^\{\{\$\.inputs\.parameters\['(.+)'\]\}\}$`)
	reArt       = regexp.MustCompile(`^\{\{\$\.(inputs|outputs)\.artifacts\['([^']+)'\](?:\.(uri|path|metadata)(?:\['([^']+)'\])?)?\}\}$`)
	reOutParam  = regexp.MustCompile(`^\{\{\$\.outputs\.parameters\['(.+)'\]\.output_file\}\}$`)
	reOutFile   = "{{$.outputs.output_file}}"
	reWholeExec = "{{$}}"
)

// resolve replaces every placeholder of s in one pass; unknown placeholders stay as they
// are.
func (io *taskIO) resolve(s string, execInput string) string {
	if !strings.Contains(s, "{{$") {
		return s
	}
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := io.placeholder(m, execInput); ok {
			return v
		}
		return m
	})
}

func (io *taskIO) placeholder(m, execInput string) (string, bool) {
	if m == reWholeExec {
		return execInput, true
	}
	if m == reOutFile {
		return io.OutputFile, true
	}
	if v, ok := io.Pipeline[m]; ok {
		return v, true
	}
	if g := reInParam.FindStringSubmatch(m); g != nil {
		v, ok := io.Params[g[1]]
		if !ok {
			return "", true
		}
		return formatParam(v), true
	}
	if g := reOutParam.FindStringSubmatch(m); g != nil {
		f, ok := io.OutParamFiles[g[1]]
		return f, ok
	}
	if g := reArt.FindStringSubmatch(m); g != nil {
		set := io.InArts
		if g[1] == "outputs" {
			set = io.OutArts
		}
		list, ok := set[g[2]]
		if !ok || len(list) == 0 {
			return "", g[1] == "inputs"
		}
		switch g[3] {
		case "uri":
			return list[0].URI, true
		case "path":
			return list[0].path(), true
		case "metadata":
			md := list[0].Metadata
			if md == nil {
				md = map[string]any{}
			}
			if g[4] != "" {
				return formatParam(md[g[4]]), true
			}
			b, _ := json.Marshal(md)
			return string(b), true
		default:
			l := make([]any, len(list))
			for i, a := range list {
				l[i] = a.json()
			}
			b, _ := json.Marshal(l)
			return string(b), true
		}
	}
	return "", false
}

// present reports whether an IfPresent input has a value: a non-null parameter or an
// artifact (the SDK's local runner counts artifacts; upstream does not).
func (io *taskIO) present(name string) bool {
	if v, ok := io.Params[name]; ok && v != nil {
		return true
	}
	return len(io.InArts[name]) > 0
}

// commandLine resolves a container's command and args: IfPresent and Concat structures
// (given as JSON strings) and placeholders.
func (io *taskIO) commandLine(items []string, execInput string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, io.expand(it, execInput)...)
	}
	return out
}

func (io *taskIO) expand(s, execInput string) []string {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{") && (strings.Contains(t, `"IfPresent"`) || strings.Contains(t, `"Concat"`)) {
		var v any
		if err := json.Unmarshal([]byte(t), &v); err == nil {
			if out, ok := io.structured(v, execInput); ok {
				return out
			}
		}
	}
	return []string{io.resolve(s, execInput)}
}

// structured expands a decoded IfPresent/Concat value or a plain string.
func (io *taskIO) structured(v any, execInput string) ([]string, bool) {
	switch x := v.(type) {
	case string:
		return io.expand(x, execInput), true
	case []any:
		var out []string
		for _, e := range x {
			r, ok := io.structured(e, execInput)
			if !ok {
				return nil, false
			}
			out = append(out, r...)
		}
		return out, true
	case map[string]any:
		if ip, ok := x["IfPresent"].(map[string]any); ok {
			name, _ := ip["InputName"].(string)
			branch := ip["Else"]
			if io.present(name) {
				branch = ip["Then"]
			}
			if branch == nil {
				return nil, true
			}
			return io.structured(branch, execInput)
		}
		if c, ok := x["Concat"].([]any); ok {
			var b strings.Builder
			for _, e := range c {
				r, ok := io.structured(e, execInput)
				if !ok {
					return nil, false
				}
				b.WriteString(strings.Join(r, ""))
			}
			return []string{b.String()}, true
		}
	}
	return nil, false
}

// inputViews turns resolved artifact refs and their records into views.
func inputViews(refs map[string][]meta.ArtifactRef, recs map[string]*meta.Artifact, decl map[string]*spec.ArtifactSpec) map[string][]artifactView {
	out := map[string][]artifactView{}
	for name, list := range refs {
		vs := make([]artifactView, 0, len(list))
		for _, r := range list {
			v := artifactView{Name: r.ID, URI: r.URI, Title: "system.Artifact"}
			if d := decl[name]; d != nil {
				v.Title = d.ArtifactType.Title()
				v.Version = d.ArtifactType.SchemaVersion
			}
			if a := recs[r.ID]; a != nil {
				if a.SchemaTitle != "" {
					v.Title = a.SchemaTitle
					v.Version = a.SchemaVersion
				}
				v.Metadata = a.Metadata
			}
			md := map[string]any{}
			for k, x := range v.Metadata {
				md[k] = x
			}
			if _, ok := md["display_name"]; !ok && r.Name != "" {
				md["display_name"] = r.Name
			}
			v.Metadata = md
			vs = append(vs, v)
		}
		out[name] = vs
	}
	return out
}
