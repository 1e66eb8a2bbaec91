package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// volumePipeline is CreatePVC, a task mounting the claim it made (waiting for /data/go
// when wait is set), then DeletePVC, as kfp-kubernetes compiles them.
func volumePipeline(claim string, wait bool) string {
	cmd := `echo hi > /data/out`
	if wait {
		cmd = `while [ ! -e /data/go ]; do sleep 0.05; done; echo hi > /data/out`
	}
	mount := `taskOutputParameter: {producerTask: createpvc, outputParameterKey: name}`
	if claim != "" {
		mount = `runtimeValue: {constant: ` + claim + `}`
	}
	return `
components:
  comp-createpvc:
    executorLabel: exec-createpvc
    inputDefinitions:
      parameters:
        access_modes: {parameterType: LIST}
        pvc_name_suffix: {parameterType: STRING}
        size: {parameterType: STRING}
        storage_class_name: {parameterType: STRING}
    outputDefinitions:
      parameters:
        name: {parameterType: STRING}
  comp-deletepvc:
    executorLabel: exec-deletepvc
    inputDefinitions:
      parameters:
        pvc_name: {parameterType: STRING}
  comp-use:
    executorLabel: exec-use
deploymentSpec:
  executors:
    exec-createpvc:
      container: {image: argostub/createpvc}
    exec-deletepvc:
      container: {image: argostub/deletepvc}
    exec-use:
      container:
        image: busybox
        command: [sh, -c, '` + cmd + `']
pipelineInfo: {name: volumes}
root:
  dag:
    tasks:
      createpvc:
        cachingOptions: {}
        componentRef: {name: comp-createpvc}
        inputs:
          parameters:
            access_modes: {runtimeValue: {constant: [ReadWriteOnce]}}
            pvc_name_suffix: {runtimeValue: {constant: -my-pvc}}
            size: {runtimeValue: {constant: 5Mi}}
            storage_class_name: {runtimeValue: {constant: standard}}
        taskInfo: {name: createpvc}
      use:
        cachingOptions: {}
        componentRef: {name: comp-use}
        dependentTasks: [createpvc]
        taskInfo: {name: use}
      deletepvc:
        cachingOptions: {}
        componentRef: {name: comp-deletepvc}
        dependentTasks: [use]
        inputs:
          parameters:
            pvc_name: {taskOutputParameter: {producerTask: createpvc, outputParameterKey: name}}
        taskInfo: {name: deletepvc}
schemaVersion: 2.1.0
sdkVersion: kfp-box-testdata
---
platforms:
  kubernetes:
    deploymentSpec:
      executors:
        exec-use:
          pvcMount:
          - mountPath: /data
            pvcNameParameter: {` + mount + `}
`
}

// TestVolumesCreateMountDelete: CreatePVC makes the claim through Volumes with the sizes,
// modes and class it names; the next task mounts its directory; DeletePVC deletes it.
func TestVolumesCreateMountDelete(t *testing.T) {
	dir := t.TempDir()
	vols := newFakeVolumes(filepath.Join(dir, "volumes"))
	h := newHarness(t, harnessOpts{dir: dir, volumes: vols, direct: true})
	id := h.submit(loadPipelineBytes(t, []byte(volumePipeline("", false))), nil)
	r := h.waitRun(id, time.Minute)
	if r.State != meta.RunSucceeded {
		t.Fatalf("run %s:\n  %s", r.State, states(h.tasks(id)))
	}
	if len(vols.created) != 1 {
		t.Fatalf("claims created: %+v", vols.created)
	}
	c := vols.created[0]
	if !strings.HasSuffix(c.Name, "-my-pvc") || c.Size != "5Mi" || c.StorageClass != "standard" || len(c.AccessModes) != 1 || c.AccessModes[0] != "ReadWriteOnce" || c.Run != id {
		t.Fatalf("CreatePVC asked for %+v", c)
	}
	if got := h.tasks(id)["createpvc"].Outputs.Parameters["name"]; got != c.Name {
		t.Fatalf("createpvc output name = %v, want %s", got, c.Name)
	}
	if ok, _ := vols.exists(c.Name); ok {
		t.Fatalf("claim %s still exists after DeletePVC", c.Name)
	}
}

// TestVolumesHeldWhileTaskRuns: a task holds the claims it mounts from its start until it
// exits, so a DeletePVC (or kubectl delete) meanwhile leaves the claim terminating and it
// goes when the task ends.
func TestVolumesHeldWhileTaskRuns(t *testing.T) {
	dir := t.TempDir()
	vols := newFakeVolumes(filepath.Join(dir, "volumes"), "claim-a")
	h := newHarness(t, harnessOpts{dir: dir, volumes: vols, direct: true})
	id := h.submit(loadPipelineBytes(t, []byte(volumePipeline("claim-a", true))), nil)
	waitFor(t, time.Minute, "the task to hold claim-a", func() bool {
		vols.mu.Lock()
		defer vols.mu.Unlock()
		return len(vols.holders["claim-a"]) == 1
	})
	if err := vols.DeleteVolume(t.Context(), "claim-a"); err != nil {
		t.Fatal(err)
	}
	if ok, term := vols.exists("claim-a"); !ok || !term {
		t.Fatalf("a held claim after delete: exists %v, terminating %v", ok, term)
	}
	if err := os.WriteFile(filepath.Join(dir, "volumes", "claim-a", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := h.waitRun(id, time.Minute)
	// The task succeeded and let go of the claim; the run's own DeletePVC found it gone.
	if r.State != meta.RunSucceeded || h.tasks(id)["use"].State != meta.ExecSucceeded {
		t.Fatalf("run %s:\n  %s", r.State, states(h.tasks(id)))
	}
	if ok, _ := vols.exists("claim-a"); ok {
		t.Fatal("claim-a is still there after its task ended")
	}
}

// TestVolumesMissingClaim: mounting a claim that does not exist fails the task saying so
// (on Kubernetes its pod would stay Pending); without Volumes the box says they are not
// configured.
func TestVolumesMissingClaim(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, harnessOpts{dir: dir, volumes: newFakeVolumes(filepath.Join(dir, "volumes")), direct: true})
	id := h.submit(loadPipelineBytes(t, []byte(volumePipeline("nope", false))), nil)
	r := h.waitRun(id, time.Minute)
	use := h.tasks(id)["use"]
	if r.State != meta.RunFailed || use == nil || !strings.Contains(use.Error, `persistentvolumeclaim "nope" not found`) {
		t.Fatalf("run %s:\n  %s", r.State, states(h.tasks(id)))
	}
}

// TestRestartHoldsVolumesAgain: a task re-adopted after a restart holds its claims again,
// so a claim deleted meanwhile waits for it, and goes when it ends.
func TestRestartHoldsVolumesAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	release := make(chan struct{})
	rt := &fakeRuntime{}
	rt.RunFn = func(ctx context.Context, _ runtime.TaskSpec) runtime.ExitStatus {
		<-release
		return runtime.ExitStatus{}
	}
	vols := filepath.Join(dir, "volumes")
	h1 := newHarness(t, harnessOpts{dir: dir, rt: rt, volumes: newFakeVolumes(vols, "claim-a")})
	id := h1.submit(loadPipelineBytes(t, []byte(volumePipeline("claim-a", false))), nil)
	var runtimeID string
	waitFor(t, 10*time.Second, "the task to run", func() bool {
		x := h1.tasks(id)["use"]
		if x != nil && x.State == meta.ExecRunning {
			runtimeID = x.RuntimeTaskID
			return true
		}
		return false
	})
	if err := h1.engine.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h1.kv.Close(); err != nil {
		t.Fatal(err)
	}
	v2 := newFakeVolumes(vols, "claim-a")
	h2 := newHarness(t, harnessOpts{dir: dir, rt: rt, volumes: v2})
	waitFor(t, 10*time.Second, "the re-adopted task to hold claim-a", func() bool {
		v2.mu.Lock()
		defer v2.mu.Unlock()
		return v2.holders["claim-a"][runtimeID]
	})
	if err := v2.DeleteVolume(context.Background(), "claim-a"); err != nil {
		t.Fatal(err)
	}
	if ok, term := v2.exists("claim-a"); !ok || !term {
		t.Fatalf("claim held by a re-adopted task after delete: exists %v, terminating %v", ok, term)
	}
	close(release)
	r := h2.waitRun(id, 10*time.Second)
	h2.check(id, r, expectation{state: "SUCCEEDED", tasks: map[string]string{"use": "SUCCEEDED"}})
	waitFor(t, 10*time.Second, "claim-a to go after its task ended", func() bool {
		ok, _ := v2.exists("claim-a")
		return !ok
	})
}
