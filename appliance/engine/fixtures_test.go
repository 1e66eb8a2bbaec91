package engine

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/spec"

	"github.com/kfp-box/kfp-box/internal/testmaterial"
)

// fixturesDir finds KFP's compiled fixtures: $KFPBOX_FIXTURES or ../shared/fixtures/kfp-ir
// beside the repository.
func fixturesDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("KFPBOX_FIXTURES")
	if d == "" {
		d = filepath.Join(repoRoot(), "..", "shared", "fixtures", "kfp-ir")
	}
	if _, err := os.Stat(filepath.Join(d, "valid")); err != nil {
		testmaterial.Missing(t, "KFP fixtures not found at %s (set KFPBOX_FIXTURES): %v", d, err)
	}
	return d
}

// runnableFixtures are the fixtures whose executors run with this machine's tools (plain
// shell commands; images are ignored by the host runtime), with the final state KFP's own
// e2e suite expects.
var runnableFixtures = map[string]string{
	"hello_world.yaml":                              "SUCCEEDED",
	"arguments_parameters.yaml":                     "SUCCEEDED",
	"sequential_v1.yaml":                            "SUCCEEDED",
	"pipeline_with_only_display_name.yaml":          "SUCCEEDED",
	"run_as_user_cache_disabled.yaml":               "SUCCEEDED",
	"mounted_cabundle_secret.yaml":                  "SUCCEEDED",
	"essential/container_no_input.yaml":             "SUCCEEDED",
	"critical/two_step_pipeline_containerized.yaml": "SUCCEEDED",
}

// slowFixtures run only with KFPBOX_SLOW_FIXTURES=1.
var slowFixtures = map[string]string{
	"long-running.yaml": "SUCCEEDED",
}

// unrunnableFixtures is THE list of fixtures that cannot run here and why; they are not
// counted as passing. Fixtures not named here or above are lightweight Python components,
// which run offline with the shared KFP SDK wheels and must succeed.
var unrunnableFixtures = map[string]string{
	"long-running.yaml":                               "two tasks sleep 5 minutes each; runs with KFPBOX_SLOW_FIXTURES=1",
	"container_io.yaml":                               "runs my_program, which does not exist on this machine",
	"container_with_artifact_output.yaml":             "runs `sh run.sh`, a script only its image has",
	"container_with_placeholder_in_fstring.yaml":      "runs my_program, which does not exist on this machine",
	"pipeline_with_various_io_types.yaml":             "image gcr.io/image with no command: only the image's entrypoint knows what to run",
	"pipeline_with_importer_and_gcpc_types.yaml":      "the consumer runs `cmd`, which does not exist on this machine",
	"gpu-scheduling/nvidia_gpu_scheduling_check.yaml": "asks for one nvidia.com/gpu; this machine has none (runs on a GPU box with the gpu allocator wired)",

	// Lightweight Python components that cannot succeed here, for reasons outside the box.
	"essential/iris_pipeline_compiled.yaml":                                "pip-installs pandas==2.2.0 and scikit-learn, third-party packages not among the shared wheels (with their wheels imported it runs)",
	"metrics_visualization_v2.yaml":                                        "pip-installs scikit-learn, a third-party package not among the shared wheels",
	"critical/notebook_component_simple.yaml":                              "pip-installs nbclient, a third-party package not among the shared wheels",
	"pythonic_artifact_with_single_return.yaml":                            "pip-installs dill==0.3.7, a third-party package not among the shared wheels",
	"pipeline_with_google_artifact_type.yaml":                              "pip-installs aiplatform, a third-party (Google Cloud) package not among the shared wheels",
	"pipeline_with_condition_dynamic_task_output_custom_training_job.yaml": "runs google_cloud_pipeline_components' Vertex AI custom job launcher: a third-party package and a Google Cloud service",
	"essential/component_with_pip_index_urls.yaml":                         "its pip_index_urls name https://pypi.org/simple, honoured as written: a download from the internet",
	"essential/component_with_pip_install.yaml":                            "its pip_index_urls name https://pypi.org/simple, honoured as written: a download from the internet",
	"pipeline_with_importer.yaml":                                          "imports gs://ml-pipeline-playground/shakespeare1.txt: a download from Google Cloud Storage",
	"critical/modelcar.yaml":                                               "imports a model from oci://registry.domain.local/modelcar:test, a registry that exists only in KFP's CI",
	"artifacts_simple.yaml":                                                "its add-container reads uri.replace('gs://', '/gcs/'): written for a gs:// pipeline root, it fails on any minio:// root, KFP's own included",
	"essential/embedded_artifact.yaml":                                     "its components use dsl.EmbeddedInput, which the kfp==2.14.x they pin does not have (compiled by a newer SDK than the one installed at run time)",
	"input_artifact.yaml":                                                  "the pipeline's root takes an input artifact, which a run cannot be given (KFP's runtime_config holds parameters only)",
	"component_with_metadata_fields.yaml":                                  "the pipeline's root takes input artifacts, which a run cannot be given (KFP's runtime_config holds parameters only)",
	"pipeline_with_metadata_fields.yaml":                                   "the pipeline's root takes an input artifact, which a run cannot be given (KFP's runtime_config holds parameters only)",
}

// failingFixtures end FAILED by design: a task fails on purpose (exit handlers, ignored
// upstream failures), as on KFP, or the fixture was written for kfp.local, where a retry
// reuses the caller's working directory, while on a cluster, as here, each attempt starts
// from a clean file system.
var failingFixtures = map[string]string{
	"pipeline_with_task_final_status.yaml":                                       "FAILED",
	"pipeline_as_exit_task.yaml":                                                 "FAILED",
	"pipeline_with_task_using_ignore_upstream_failure.yaml":                      "FAILED",
	"local_execution/local_execution_pipeline_with_ignore_upstream_failure.yaml": "FAILED",
	"local_execution/local_execution_pipeline_with_retry.yaml":                   "FAILED",
}

// fixtureReason says why a fixture cannot run here ("" when it can).
func fixtureReason(rel string, content []byte) string {
	if _, ok := runnableFixtures[rel]; ok {
		return ""
	}
	if _, ok := slowFixtures[rel]; ok && os.Getenv("KFPBOX_SLOW_FIXTURES") == "1" {
		return ""
	}
	if r, ok := unrunnableFixtures[rel]; ok {
		return r
	}
	if strings.Contains(string(content), "pip install") || strings.Contains(string(content), "kfp.dsl.executor_main") {
		return "" // a lightweight Python component: runs offline with the shared wheels
	}
	return "not classified yet: add it to runnableFixtures or unrunnableFixtures"
}

// fixtureParams gives required root inputs without defaults a value by type, as KFP's e2e
// suite does.
func fixtureParams(p *spec.Pipeline) map[string]any {
	out := map[string]any{}
	if p.Spec.Root.InputDefinitions == nil {
		return out
	}
	for name, d := range p.Spec.Root.InputDefinitions.Parameters {
		if d.HasDefault() || d.IsOptional {
			continue
		}
		switch d.ParameterType {
		case spec.TypeNumberInteger:
			out[name] = 42.0
		case spec.TypeNumberDouble:
			out[name] = 3.5
		case spec.TypeBoolean:
			out[name] = true
		case spec.TypeList:
			out[name] = []any{"abcdefghijklmnopqrst"}
		case spec.TypeStruct:
			out[name] = map[string]any{"A": "abcdefghij", "B": "klmnopqrst"}
		default:
			out[name] = "abcdefghijklmnopqrst"
		}
	}
	return out
}

// countTasks counts the tasks of every DAG reachable from the root.
func countTasks(ps *spec.PipelineSpec, c *spec.ComponentSpec) int {
	if c == nil || c.DAG == nil {
		return 0
	}
	n := 0
	for _, t := range c.DAG.Tasks {
		n++
		n += countTasks(ps, ps.Components[t.ComponentRef.Name])
	}
	return n
}

// hasConditions reports whether a task of the pipeline has a trigger condition: the tasks
// inside a branch not taken are never created, so they have no task_details.
func hasConditions(ps *spec.PipelineSpec) bool {
	for _, c := range append(mapValues(ps.Components), ps.Root) {
		if c == nil || c.DAG == nil {
			continue
		}
		for _, t := range c.DAG.Tasks {
			if t.TriggerPolicy != nil && t.TriggerPolicy.Condition != "" {
				return true
			}
		}
	}
	return false
}

func mapValues(m map[string]*spec.ComponentSpec) []*spec.ComponentSpec {
	out := make([]*spec.ComponentSpec, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestFixtures runs, through the HTTP API with the host runtime, every KFP fixture whose
// executors can run on this machine, and skips the others naming the reason. Lightweight
// Python components run offline: the shared KFP SDK wheels are the box's wheelhouse and
// each task gets a venv of its own over Debian's Python. Every run is submitted first and
// the engine runs them side by side (at most 4 tasks at once); each subtest then waits
// for its run.
func TestFixtures(t *testing.T) {
	t.Parallel()
	root := filepath.Join(fixturesDir(t), "valid")
	var files []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".json")) {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	b := newAPIBox(t, harnessOpts{secrets: kfpTestSecrets, python: true, maxParallel: 4})
	type job struct {
		rel, reason, want string
		p                 *spec.Pipeline
		runID             string
	}
	var jobs []*job
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		rel = filepath.ToSlash(rel)
		content, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		j := &job{rel: rel, reason: fixtureReason(rel, content)}
		if only := os.Getenv("KFPBOX_FIXTURES_RUN"); only != "" && j.reason == "" && !strings.Contains(rel, only) {
			j.reason = "not selected by KFPBOX_FIXTURES_RUN=" + only
		}
		jobs = append(jobs, j)
		if j.reason != "" {
			continue
		}
		j.want = runnableFixtures[rel]
		if j.want == "" {
			j.want = slowFixtures[rel]
		}
		if j.want == "" {
			j.want = failingFixtures[rel]
		}
		if j.want == "" {
			j.want = "SUCCEEDED"
		}
		j.p = loadPipeline(t, f)
		j.runID = b.createRun(j.p, fixtureParams(j.p))
	}
	ran := 0
	for _, j := range jobs {
		t.Run(j.rel, func(t *testing.T) {
			if j.reason != "" {
				t.Skip(j.reason)
			}
			b := &apiBox{harness: b.harness.with(t)}
			r := b.waitRunAPI(j.runID, 15*time.Minute, 100*time.Millisecond)
			if r.State != j.want {
				t.Fatalf("run state %s, want %s; error %+v; tasks %+v", r.State, j.want, r.Error, r.RunDetails.TaskDetails)
			}
			if n := countTasks(j.p.Spec, j.p.Spec.Root); !hasConditions(j.p.Spec) && len(r.RunDetails.TaskDetails) < n {
				t.Errorf("%d task_details, want at least %d", len(r.RunDetails.TaskDetails), n)
			}
			for _, td := range r.RunDetails.TaskDetails {
				if j.want == "SUCCEEDED" && td.State != "SUCCEEDED" && td.State != "SKIPPED" {
					t.Errorf("task %s is %s", td.DisplayName, td.State)
				}
			}
			ran++
		})
	}
	t.Logf("%d of %d fixtures ran here; the others are skipped with their reason", ran, len(files))
}
