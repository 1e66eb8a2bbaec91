package engine

import (
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/appliance/spec"
)

func TestCheckGraph(t *testing.T) {
	task := func(comp string, deps ...string) *spec.PipelineTaskSpec {
		return &spec.PipelineTaskSpec{ComponentRef: spec.ComponentRef{Name: comp}, DependentTasks: deps}
	}
	dag := func(tasks map[string]*spec.PipelineTaskSpec) *spec.ComponentSpec {
		return &spec.ComponentSpec{DAG: &spec.DAGSpec{Tasks: tasks}}
	}
	leaf := &spec.ComponentSpec{ExecutorLabel: "exec"}
	cases := []struct {
		name    string
		root    *spec.ComponentSpec
		comps   map[string]*spec.ComponentSpec
		wantErr string
	}{
		{"chain", dag(map[string]*spec.PipelineTaskSpec{"a": task("leaf"), "b": task("leaf", "a")}), map[string]*spec.ComponentSpec{"leaf": leaf}, ""},
		{"cycle", dag(map[string]*spec.PipelineTaskSpec{"a": task("leaf", "b"), "b": task("leaf", "a")}), map[string]*spec.ComponentSpec{"leaf": leaf}, "dependency cycle"},
		{"self dependency", dag(map[string]*spec.PipelineTaskSpec{"a": task("leaf", "a")}), map[string]*spec.ComponentSpec{"leaf": leaf}, "dependency cycle"},
		{"recursive component", dag(map[string]*spec.PipelineTaskSpec{"a": task("comp-x")}),
			map[string]*spec.ComponentSpec{"comp-x": dag(map[string]*spec.PipelineTaskSpec{"b": task("comp-x")})}, "contains itself"},
		{"shared sub-DAG", dag(map[string]*spec.PipelineTaskSpec{"a": task("comp-x"), "b": task("comp-x", "a")}),
			map[string]*spec.ComponentSpec{"comp-x": dag(map[string]*spec.PipelineTaskSpec{"c": task("leaf")}), "leaf": leaf}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkGraph(&spec.PipelineSpec{Root: c.root, Components: c.comps})
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}
