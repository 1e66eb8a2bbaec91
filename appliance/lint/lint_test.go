package lint

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/appliance/spec"
)

// pipelineYAML is a one-task pipeline; the cases replace its marked parts.
const pipelineYAML = `components:
  comp-a:
    executorLabel: exec-a
    inputDefinitions:
      parameters:
        x: {parameterType: STRING}
  comp-loop:
    dag:
      tasks:
        a:
          componentRef: {name: comp-a}
          inputs:
            parameters:
              x: {componentInputParameter: pipelinechannel--loop-item}
          taskInfo: {name: a}
    inputDefinitions:
      parameters:
        pipelinechannel--loop-item: {parameterType: STRING}
deploymentSpec:
  executors:
    exec-a:
      container:
        image: IMAGE
        command: [sh, -c, 'echo "$0"']
        args: [ARG]
RESOURCES
pipelineInfo: {name: lint-me}
root:
  dag:
    tasks:
      a:
        componentRef: {name: comp-a}
        inputs:
          parameters:
            x: {runtimeValue: {constant: CONSTANT}}
        taskInfo: {name: a}
      for-loop-1:
        componentRef: {name: comp-loop}
        taskInfo: {name: for-loop-1}
ITERATOR
schemaVersion: 2.1.0
EXTRA`

type parts struct {
	image, arg, constant, resources, iterator, extra string
}

func build(t *testing.T, p parts) *spec.Pipeline {
	t.Helper()
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	y := strings.NewReplacer(
		"IMAGE", def(p.image, "python:3.11"),
		"ARG", def(p.arg, "'{{$.inputs.parameters[''x'']}}'"),
		"CONSTANT", def(p.constant, "hello"),
		"RESOURCES", p.resources,
		"ITERATOR", def(p.iterator, "        parameterIterator: {items: {raw: '[\"a\",\"b\"]'}, itemInput: pipelinechannel--loop-item}"),
		"EXTRA", p.extra,
	).Replace(pipelineYAML)
	pl, err := spec.Parse([]byte(y))
	if err != nil {
		t.Fatalf("parse:\n%s\n%v", y, err)
	}
	return pl
}

func rules(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule+"/"+string(f.Severity))
	}
	return out
}

// TestPipelineFindings has one case per finding, each next to the clean pipeline it
// changes, so that every rule is shown to fire and to stay quiet.
func TestPipelineFindings(t *testing.T) {
	v214 := Target{Minor: 14}
	any2 := Target{Minor: -1}
	for _, tc := range []struct {
		name   string
		p      parts
		target Target
		want   []string
	}{
		{name: "clean", want: nil},
		{name: "clean with a registry image and a typed GPU", p: parts{image: "ghcr.io/team/train:1.2", resources: "        resources: {accelerator: {resourceType: nvidia.com/gpu, resourceCount: '1'}}"}, want: nil},
		{name: "artifact iterator", p: parts{iterator: "        artifactIterator: {items: {inputArtifact: pipelinechannel--xs}, itemInput: pipelinechannel--loop-item}"}, want: []string{"artifact-iterator/error"}},
		{name: "local registry image", p: parts{image: "localhost:5000/train:dev"}, want: []string{"local-image/error"}},
		{name: "loopback registry image", p: parts{image: "127.0.0.1:5000/train"}, want: []string{"local-image/error"}},
		{name: "mDNS registry image", p: parts{image: "registry.local/train:1"}, want: []string{"local-image/error"}},
		{name: "invalid image", p: parts{image: "Train:Latest"}, want: []string{"local-image/error"}},
		{name: "imagePullPolicy Never", p: parts{extra: "---\nplatforms:\n  kubernetes:\n    deploymentSpec:\n      executors:\n        exec-a: {imagePullPolicy: Never}\n"}, want: []string{"local-image/error"}},
		{name: "GPU count without type", p: parts{resources: "        resources: {accelerator: {resourceCount: '2'}}"}, want: []string{"gpu-without-type/error"}},
		{name: "deprecated GPU count without type", p: parts{resources: "        resources: {accelerator: {count: '1'}}"}, want: []string{"gpu-without-type/error"}},
		{name: "deprecated GPU type", p: parts{resources: "        resources: {accelerator: {count: '1', type: NVIDIA_TESLA_T4}}"}, want: nil},
		{name: "Concat", p: parts{arg: `'{"Concat": ["a-", "{{$.inputs.parameters[''x'']}}"]}'`}, want: []string{"concat-placeholder/warning"}},
		{name: "output_file", p: parts{arg: "'{{$.outputs.output_file}}'"}, want: []string{"output-file-placeholder/warning"}},
		{name: "artifact metadata", p: parts{arg: "'{{$.inputs.artifacts[''d''].metadata[''rows'']}}'"}, want: []string{"metadata-placeholder/warning"}},
		{name: "whole artifact list", p: parts{arg: "'{{$.inputs.artifacts[''ds'']}}'"}, want: []string{"artifact-list-placeholder/warning"}},
		{name: "pipeline_root in an argument", p: parts{arg: "'{{$.pipeline_root}}/x'"}, want: []string{"pipeline-root-placeholder/warning"}},
		{name: "pipeline_root in a constant", p: parts{constant: "'{{$.pipeline_root}}'"}, want: []string{"pipeline-root-placeholder/warning"}},
		{name: "defaultPipelineRoot", p: parts{extra: "defaultPipelineRoot: minio://mlpipeline/custom\n"}, want: []string{"default-pipeline-root/warning"}},
		{name: "workspace path on 2.15", p: parts{constant: "'{{$.workspace_path}}/data'"}, want: nil},
		{name: "workspace path on 2.14", p: parts{constant: "'{{$.workspace_path}}/data'"}, target: v214, want: nil},
		{name: "workspace path on any 2.x", p: parts{constant: "'{{$.workspace_path}}/data'"}, target: any2, want: []string{"workspace/error"}},
		{name: "workspace config on any 2.x", p: parts{extra: "---\nplatforms:\n  kubernetes:\n    pipelineConfig: {workspace: {size: 1Gi}}\n"}, target: any2, want: []string{"workspace/error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.target
			if target == (Target{}) {
				target = DefaultTarget
			}
			got := rules(Pipeline(build(t, tc.p), target))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("findings %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRecurringRunFindings(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Schedule
		want []string
	}{
		{name: "UTC cron", s: Schedule{Cron: "0 0 9 * * 1-5"}, want: nil},
		{name: "explicit UTC", s: Schedule{Cron: "0 0 9 * * *", TimeZone: "UTC"}, want: nil},
		{name: "periodic", s: Schedule{}, want: nil},
		{name: "time_zone field", s: Schedule{Cron: "0 0 9 * * *", TimeZone: "Europe/Berlin"}, want: []string{"cron-time-zone/error"}},
		{name: "CRON_TZ prefix", s: Schedule{Cron: "CRON_TZ=Asia/Tokyo 0 0 9 * * *"}, want: []string{"cron-time-zone/error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.Name = "nightly"
			if got := rules(RecurringRun(tc.s, DefaultTarget)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("findings %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]int{"kfp-2.x": -1, "kfp-2": -1, "KFP-2.15": 15, "kfp-2.5.1": 5} {
		got, err := ParseTarget(in)
		if err != nil || got.Minor != want {
			t.Errorf("ParseTarget(%q) = %v, %v; want minor %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "2.15", "kfp-1.8", "kfp-3.0", "kfp-2.y", "kfp-2.x.1", "kfp-2.1.2.3"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
}

// FuzzLint lints arbitrary pipeline files and targets: never a panic.
func FuzzLint(f *testing.F) {
	f.Add([]byte(pipelineYAML), "kfp-2.15")
	f.Add([]byte("pipelineInfo: {name: x}\nroot: {dag: {tasks: {}}}\nschemaVersion: 2.1.0\n"), "kfp-2.x")
	f.Fuzz(func(t *testing.T, data []byte, target string) {
		tg, err := ParseTarget(target)
		if err != nil {
			tg = DefaultTarget
		}
		p, err := spec.Parse(data)
		if err != nil {
			return
		}
		for _, fd := range Pipeline(p, tg) {
			if fd.Rule == "" || fd.Message == "" {
				t.Fatalf("finding without rule or message: %+v", fd)
			}
		}
	})
}
