package engine

import (
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/storage/meta"
)

// withinRunCachePipeline calls one component three times with the same input: twice in a
// chain and once in a loop iteration after them. As on KFP, the calls after the first one to
// succeed are cache hits, though all belong to the same run.
const withinRunCachePipeline = `
components:
  comp-stamp:
    executorLabel: exec-stamp
    inputDefinitions:
      parameters:
        salt: {parameterType: STRING}
    outputDefinitions:
      parameters:
        Output: {parameterType: STRING}
  comp-stamp-2:
    executorLabel: exec-stamp-2
    inputDefinitions:
      parameters:
        salt: {parameterType: STRING}
    outputDefinitions:
      parameters:
        Output: {parameterType: STRING}
deploymentSpec:
  executors:
    exec-stamp:
      container:
        image: busybox
        command: [sh, -c, 'printf "%s-%s" "$0" "$(cat /proc/sys/kernel/random/uuid)" > "$1"']
        args: ["{{$.inputs.parameters['salt']}}", "{{$.outputs.parameters['Output'].output_file}}"]
    exec-stamp-2:
      container:
        image: busybox
        command: [sh, -c, 'printf "%s-%s" "$0" "$(cat /proc/sys/kernel/random/uuid)" > "$1"']
        args: ["{{$.inputs.parameters['salt']}}", "{{$.outputs.parameters['Output'].output_file}}"]
pipelineInfo:
  name: within-run-cache
root:
  dag:
    tasks:
      stamp:
        cachingOptions: {enableCache: true}
        componentRef: {name: comp-stamp}
        inputs:
          parameters:
            salt: {componentInputParameter: salt}
        taskInfo: {name: stamp}
      stamp-2:
        cachingOptions: {enableCache: true}
        componentRef: {name: comp-stamp-2}
        dependentTasks: [stamp]
        inputs:
          parameters:
            salt: {componentInputParameter: salt}
        taskInfo: {name: stamp-2}
  inputDefinitions:
    parameters:
      salt: {parameterType: STRING}
schemaVersion: 2.1.0
sdkVersion: kfp-box-testdata
`

func TestCacheHitWithinARun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{cache: true})
	p := loadPipelineBytes(t, []byte(withinRunCachePipeline))
	id := h.submit(p, map[string]any{"salt": "within-" + t.Name()})
	h.check(id, h.waitRun(id, 30*time.Second), expectation{state: meta.RunSucceeded,
		tasks: map[string]string{"stamp": meta.ExecSucceeded, "stamp-2": meta.ExecCached}})
	got := h.tasks(id)
	first, second := got["stamp"], got["stamp-2"]
	if first.Outputs.Parameters["Output"] != second.Outputs.Parameters["Output"] {
		t.Errorf("the cache hit's output %v differs from its source's %v", second.Outputs.Parameters["Output"], first.Outputs.Parameters["Output"])
	}
	if second.CacheSource == nil || second.CacheSource.RunID != id || second.CacheSource.ExecutionID != first.ID {
		t.Errorf("cache source %+v, want execution %s of this run", second.CacheSource, first.ID)
	}
}
