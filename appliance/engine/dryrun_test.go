package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// dryRunner is a Runtime for dry runs of any pipeline: instead of running a task's command
// it writes typed stand-in values for the component's declared outputs, so every IR shape
// of the fixtures goes through planning, resolution and output collection.
type dryRunner struct {
	fakeRuntime
	h     *harness
	pipes map[string]*spec.Pipeline // by run id
}

func newDryRunner() *dryRunner {
	d := &dryRunner{pipes: map[string]*spec.Pipeline{}}
	d.RunFn = d.run
	return d
}

// standIn is a value of a parameter type.
func standIn(typ string) any {
	switch typ {
	case spec.TypeNumberInteger:
		return 7.0
	case spec.TypeNumberDouble:
		return 7.5
	case spec.TypeBoolean:
		return true
	case spec.TypeList:
		return []any{map[string]any{"A_a": "1", "B_b": []any{"2", "3"}, "a": 1.0, "b": 2.0}, map[string]any{"A_a": "3", "B_b": []any{"4"}, "a": 3.0, "b": 4.0}}
	case spec.TypeStruct:
		return map[string]any{"A_a": "x", "B_b": 1.0}
	}
	return "heads"
}

// pipeline reads the IR of a run from the store.
func (d *dryRunner) pipeline(ctx context.Context, runID string) (*spec.Pipeline, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.pipes[runID]; p != nil {
		return p, nil
	}
	raw, err := d.h.meta.GetRunSpec(ctx, runID)
	if err != nil {
		return nil, err
	}
	p, err := spec.FromJSON(raw)
	if err != nil {
		return nil, err
	}
	d.pipes[runID] = p
	return p, nil
}

func (d *dryRunner) run(ctx context.Context, ts runtime.TaskSpec) runtime.ExitStatus {
	fail := func(err error) runtime.ExitStatus {
		return runtime.ExitStatus{Code: 99, Message: "dry run: " + err.Error()}
	}
	p, err := d.pipeline(ctx, ts.Labels["kfp-box/run"])
	if err != nil {
		return fail(err)
	}
	comp := p.Spec.Components[ts.Labels["kfp-box/component"]]
	x, err := d.h.meta.GetExecution(ctx, ts.Labels["kfp-box/run"], ts.Labels["kfp-box/execution"])
	if err != nil || comp == nil {
		return fail(fmt.Errorf("task %v: %v", ts.Labels, err))
	}
	out := map[string]any{}
	if od := comp.OutputDefinitions; od != nil {
		pv := map[string]any{}
		for n, ps := range od.Parameters {
			pv[n] = standIn(ps.ParameterType)
		}
		out["parameterValues"] = pv
		for n := range od.Artifacts {
			path, err := d.h.engine.objectPath(x.TaskRoot + "/" + n)
			if err != nil {
				return fail(err)
			}
			_ = os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, []byte("stand-in"), 0o644); err != nil {
				return fail(err)
			}
		}
	}
	root, err := d.h.engine.objectPath(x.TaskRoot)
	if err != nil {
		return fail(err)
	}
	_ = os.MkdirAll(root, 0o755)
	b, _ := json.Marshal(out)
	if err := os.WriteFile(filepath.Join(root, "output_metadata.json"), b, 0o644); err != nil {
		return fail(err)
	}
	return runtime.ExitStatus{}
}

// fakeGPUs hands out as many stand-in GPUs as asked.
type fakeGPUs struct{}

type fakeLease []string

func (l fakeLease) UUIDs() []string { return l }
func (l fakeLease) Env() map[string]string {
	return map[string]string{"NVIDIA_VISIBLE_DEVICES": strings.Join(l, ",")}
}
func (fakeLease) Release() {}

func (fakeGPUs) Allocate(_ context.Context, _ string, n int, _ string, _ func(string)) (GPULease, error) {
	l := fakeLease{}
	for i := 0; i < n; i++ {
		l = append(l, fmt.Sprintf("GPU-fake-%d", i))
	}
	return l, nil
}

// mapSecrets is a SecretStore over a map.
type mapSecrets map[string]map[string][]byte

func (m mapSecrets) Secret(_ context.Context, name string) (map[string][]byte, error) {
	if s, ok := m[name]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("secret %q: %w", name, meta.ErrNotFound)
}

// anySecret answers every secret name (dry runs, where secret names come from stand-ins).
type anySecret struct{}

func (anySecret) Secret(context.Context, string) (map[string][]byte, error) {
	return map[string][]byte{"username": []byte("user1"), "password": []byte("psw1")}, nil
}

// fixtureClaim is the claim pvc_mount.yaml mounts: its pvc_name parameter, which
// fixtureParams gives every required string, names a claim that must exist before the
// run, as a KFP user makes it with kubectl.
const fixtureClaim = "abcdefghijklmnopqrst"

// kfpTestSecrets are the secrets KFP's e2e suite creates before each test.
var kfpTestSecrets = mapSecrets{
	"test-secret-1": {"username": []byte("user1")},
	"test-secret-2": {"password": []byte("psw1")},
	"test-secret-3": {"password": []byte("psw2")},
}

// dryRunExpectFailure are fixtures a dry run cannot finish as SUCCEEDED, and why.
var dryRunExpectFailure = map[string]string{
	"component_with_metadata_fields.yaml": "root input artifacts cannot be supplied through the API (nor in KFP)",
	"input_artifact.yaml":                 "root input artifacts cannot be supplied through the API (nor in KFP)",
	"pipeline_with_metadata_fields.yaml":  "root input artifacts cannot be supplied through the API (nor in KFP)",
	"pipeline_with_various_io_types.yaml": "root input artifacts cannot be supplied through the API (nor in KFP)",
}

// TestDryRunAllFixtures runs every valid fixture with stand-in executors: the engine must
// bring each to SUCCEEDED (the stand-ins never fail), with at least one task detail per
// task, which checks resolution, conditions, loops, nesting and outputs on the exact IR the
// KFP SDK compiles.
func TestDryRunAllFixtures(t *testing.T) {
	t.Parallel()
	root := filepath.Join(fixturesDir(t), "valid")
	var files []string
	_ = filepath.WalkDir(root, func(p string, de os.DirEntry, err error) error {
		if err == nil && !de.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".json")) {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	dr := newDryRunner()
	h := newHarness(t, harnessOpts{rt: dr, secrets: anySecret{}, cache: true, gpus: fakeGPUs{}})
	dr.h = h
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		rel = filepath.ToSlash(rel)
		t.Run(rel, func(t *testing.T) {
			h := h.with(t)
			p := loadPipeline(t, f)
			if p.Spec.Root == nil || p.Spec.Root.DAG == nil {
				t.Skip("not a pipeline (a single component)")
			}
			id := h.submit(p, fixtureParams(p))
			r := h.waitRun(id, 30*time.Second)
			if why, ok := dryRunExpectFailure[rel]; ok {
				t.Logf("run %s (expected not to succeed: %s)", r.State, why)
				return
			}
			if r.State != meta.RunSucceeded {
				msg := ""
				if r.Error != nil {
					msg = r.Error.Message
				}
				t.Fatalf("run %s: %s", r.State, msg)
			}
			if got, want := len(h.tasks(id)), len(p.Spec.Root.DAG.Tasks)+1; got < want {
				t.Errorf("%d executions, want at least %d", got, want)
			}
		})
	}
}
