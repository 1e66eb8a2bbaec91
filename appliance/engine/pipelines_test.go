package engine

import (
	"strings"
	"testing"
	"time"
)

func TestPipelineParamsAndArtifacts(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	p := testdataPipeline(t, "params_and_artifacts.yaml")
	id := h.submit(p, nil)
	r := h.waitRun(id, 20*time.Second)
	want := "line|hello x3|4|" + r.DisplayName + "|consume|got hello x3!|--no-opt|a-4-z|1"
	h.check(id, r, expectation{
		state:   "SUCCEEDED",
		tasks:   map[string]string{"produce": "SUCCEEDED", "consume": "SUCCEEDED"},
		outputs: map[string]map[string]any{"produce": {"out_text": "hello x3", "n_plus": 4}, "consume": {"summary": want}},
	})
	prod := h.tasks(id)["produce"]
	uri := prod.Outputs.Artifacts["data"][0].URI
	if !strings.HasPrefix(uri, "minio://mlpipeline/v2/artifacts/params-and-artifacts/"+id+"/produce/") {
		t.Errorf("artifact uri %q does not follow KFP's layout", uri)
	}

	// With the optional input given, IfPresent takes the Then branch.
	id2 := h.submit(p, map[string]any{"opt": "yes", "greeting": "hi", "count": 1})
	r2 := h.waitRun(id2, 20*time.Second)
	want2 := "line|hi x1|2|" + r2.DisplayName + "|consume|got hi x1!|--opt=yes|a-2-z|1"
	h.check(id2, r2, expectation{state: "SUCCEEDED", outputs: map[string]map[string]any{"consume": {"summary": want2}}})
}

func TestDebugDump(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	p := testdataPipeline(t, "params_and_artifacts.yaml")
	id := h.submit(p, nil)
	h.waitRun(id, 20*time.Second)
	for k, x := range h.tasks(id) {
		t.Logf("%s: %+v", k, x.Inputs)
	}
}
