package pyenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/wheelhouse"
)

// compiled is a command as the KFP SDK 2.14 compiles a component with packages_to_install
// and pip_index_urls.
var compiled = []string{"sh", "-c", "\nif ! [ -x \"$(command -v pip)\" ]; then\n    python3 -m ensurepip || python3 -m ensurepip --user || apt-get install python3-pip\nfi\n\nPIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location 'yapf' 'pandas==2.2.0' && python3 -m pip install --quiet --no-warn-script-location 'kfp==2.14.3' '--no-deps' 'typing-extensions>=3.7.4,<5; python_version<\"3.9\"' && \"$0\" \"$@\"\n",
	"sh", "-ec", "program_path=$(mktemp -d)\nprintf \"%s\" \"$0\" > \"$program_path/ephemeral_component.py\"\n_KFP_RUNTIME=true python3 -m kfp.dsl.executor_main --component_module_path \"$program_path/ephemeral_component.py\" \"$@\"\n",
	"\nimport kfp\n", "--executor_input", "{{$}}", "--function_to_execute", "f"}

func TestParseCommand(t *testing.T) {
	c := ParseCommand(compiled)
	if !c.UsesPython || len(c.Installs) != 2 || c.OwnIndex() {
		t.Fatalf("parsed %+v", c)
	}
	if got := strings.Join(c.Installs[0].Requirements, " "); got != "yapf pandas==2.2.0" || c.Installs[0].NoDeps {
		t.Errorf("first install %+v", c.Installs[0])
	}
	if got := c.Installs[1].Requirements; len(got) != 2 || got[0] != "kfp==2.14.3" || got[1] != `typing-extensions>=3.7.4,<5; python_version<"3.9"` || !c.Installs[1].NoDeps {
		t.Errorf("second install %+v", c.Installs[1])
	}
	withIndex := append([]string(nil), compiled...)
	withIndex[2] = strings.Replace(withIndex[2], "'yapf'", "--index-url https://pypi.org/simple --trusted-host https://pypi.org/simple 'yapf'", 1)
	if c := ParseCommand(withIndex); !c.OwnIndex() || c.Installs[0].IndexURLs[0] != "https://pypi.org/simple" {
		t.Errorf("pip_index_urls not seen: %+v", c)
	}
	if c := ParseCommand([]string{"sh", "-c", "echo hello"}); c.UsesPython || len(c.Installs) != 0 {
		t.Errorf("a shell task: %+v", c)
	}
	if c := ParseCommand([]string{"python", "-c", "print(1)"}); !c.UsesPython {
		t.Errorf("python -c: %+v", c)
	}
	if c := ParseCommand([]string{"sh", "-c", "pip3 install -i http://x/simple foo==1 && run"}); len(c.Installs) != 1 || !c.OwnIndex() || c.Installs[0].Requirements[0] != "foo==1" {
		t.Errorf("pip3 -i: %+v", c)
	}
	if ParseCommand(compiled).Key() == ParseCommand(withIndex).Key() {
		t.Error("a component's own index decides what is installed: it must be part of the environment's key")
	}
}

func TestMissingHint(t *testing.T) {
	out := "ERROR: Could not find a version that satisfies the requirement kfp==9.9.9 (from versions: 2.1.3, 2.14.6)\nERROR: No matching distribution found for kfp==9.9.9\n"
	got := MissingHint(out, "")
	want := "Python package kfp (version 9.9.9) is not in the box's wheelhouse (no --pypi-upstream is set); fix: kfp-box wheels import kfp-9.9.9-*.whl"
	if got != want {
		t.Errorf("hint\n got %q\nwant %q", got, want)
	}
	if got := MissingHint(out, "https://mirror/simple/"); !strings.Contains(got, "neither in the box's wheelhouse nor on https://mirror/simple/") {
		t.Errorf("with upstream: %q", got)
	}
	if got := MissingHint("ERROR: No matching distribution found for nbclient<1,>=0.10", ""); !strings.Contains(got, "nbclient (version <1,>=0.10)") {
		t.Errorf("range: %q", got)
	}
	if MissingHint("all good", "") != "" {
		t.Error("a hint without an error")
	}
}

type fakeWheels map[string]string // project -> version

func (f fakeWheels) Satisfies(r wheelhouse.Requirement) (wheelhouse.File, bool) {
	v, ok := f[r.Project]
	if !ok {
		return wheelhouse.File{}, false
	}
	sp, _ := wheelhouse.ParseSpecifier(r.Specifier)
	pv, _ := wheelhouse.ParseVersion(v)
	return wheelhouse.File{}, sp.Match(pv)
}

func TestPreflight(t *testing.T) {
	p := &spec.Pipeline{Spec: &spec.PipelineSpec{
		Root: &spec.ComponentSpec{DAG: &spec.DAGSpec{Tasks: map[string]*spec.PipelineTaskSpec{
			"train": {ComponentRef: spec.ComponentRef{Name: "comp-train"}},
			"echo":  {ComponentRef: spec.ComponentRef{Name: "comp-echo"}},
		}}},
		Components: map[string]*spec.ComponentSpec{"comp-train": {ExecutorLabel: "exec-train"}, "comp-echo": {ExecutorLabel: "exec-echo"}},
		DeploymentSpec: &spec.DeploymentSpec{Executors: map[string]*spec.ExecutorSpec{
			"exec-train": {Container: &spec.ContainerSpec{Image: "python:3.11", Command: compiled}},
			"exec-echo":  {Container: &spec.ContainerSpec{Image: "alpine", Command: []string{"echo", "hi"}}},
		}},
	}}
	got := Preflight(p, PreflightOptions{Wheels: fakeWheels{"kfp": "2.14.3", "yapf": "0.32.0"}})
	if len(got) != 1 || !strings.Contains(got[0], `task "train" will fail`) || !strings.Contains(got[0], "pandas (version 2.2.0)") {
		t.Fatalf("warnings %q", got)
	}
	if got := Preflight(p, PreflightOptions{Wheels: fakeWheels{"kfp": "2.14.3", "yapf": "1", "pandas": "2.2.0"}}); len(got) != 0 {
		t.Errorf("everything present: %q", got)
	}
	if got := Preflight(p, PreflightOptions{Wheels: fakeWheels{}, Upstream: "https://mirror/simple/"}); len(got) != 0 {
		t.Errorf("with an upstream nothing is known to fail: %q", got)
	}
	if got := Preflight(p, PreflightOptions{Wheels: fakeWheels{}, ContainerRuntime: true}); len(got) != 1 || !strings.Contains(got[0], "unless its image python:3.11 already has it") || !strings.Contains(got[0], "also missing") {
		t.Errorf("containerd: %q", got)
	}
}

func TestProbeMissingInterpreter(t *testing.T) {
	in := Probe(context.Background(), "/nonexistent/python3")
	if !strings.Contains(in.Problem, AptFix) {
		t.Errorf("problem %q lacks the apt command", in.Problem)
	}
	m := NewManager(Config{Interpreter: in, Dir: t.TempDir()})
	_, _, err := m.Prepare(context.Background(), compiled, t.TempDir(), "", nil)
	if err == nil || !strings.Contains(err.Error(), "apt-get install python3 python3-venv") {
		t.Errorf("prepare without an interpreter: %v", err)
	}
	// An interpreter without venv/ensurepip, as Debian's python3 without python3-venv:
	// a stand-in that answers the probe the way such an interpreter does.
	fake := filepath.Join(t.TempDir(), "python3")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nif [ \"$1\" = -I ]; then echo '{\"version\":\"3.11.2\",\"short\":\"3.11\",\"em\":true,\"missing\":[\"venv\",\"ensurepip\"]}'; fi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	in = Probe(context.Background(), fake)
	if !strings.Contains(in.Problem, "apt-get install python3-venv") || !in.ExternallyManaged {
		t.Errorf("without venv: %+v", in)
	}
}
