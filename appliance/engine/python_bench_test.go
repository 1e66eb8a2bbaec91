package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/spec"
)

// pythonChainPipeline is n lightweight Python tasks (the compiled add_numbers component
// of KFP's test corpus: pip install kfp, then kfp's executor), each after the previous one.
func pythonChainPipeline(b testing.TB, n int) (*spec.Pipeline, *spec.ContainerSpec) {
	b.Helper()
	src := loadPipeline(b, filepath.Join(fixturesDir(b), "valid", "critical", "add_numbers.yaml"))
	ex := src.Spec.DeploymentSpec.Executors["exec-add-numbers"]
	comp := src.Spec.Components["comp-add-numbers"]
	ps := basePipeline(fmt.Sprintf("bench-python-chain-%d", n))
	ps.Components["comp-add"] = comp
	ps.DeploymentSpec.Executors["exec-add-numbers"] = ex
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("t%d", i)
		t := &spec.PipelineTaskSpec{TaskInfo: spec.TaskInfo{Name: k}, ComponentRef: spec.ComponentRef{Name: "comp-add"},
			Inputs: &spec.TaskInputsSpec{Parameters: map[string]*spec.InputParameterSpec{
				"a": {RuntimeValue: &spec.ValueOrRuntimeParameter{Constant: json.RawMessage(fmt.Sprint(i))}},
				"b": {RuntimeValue: &spec.ValueOrRuntimeParameter{Constant: json.RawMessage("1")}},
			}}}
		if i > 0 {
			t.DependentTasks = []string{fmt.Sprintf("t%d", i-1)}
		}
		ps.Root.DAG.Tasks[k] = t
	}
	return &spec.Pipeline{Spec: ps}, ex.Container
}

// rawPython runs the component's compiled command n times, one after the other, as a
// launcher would with nothing around it: fork/exec with {{$}} substituted, in a ready
// environment that already holds kfp (a task venv of the same cached environment).
func rawPython(b *testing.B, py *pyBox, ctr *spec.ContainerSpec, n int) time.Duration {
	b.Helper()
	argv := append(append([]string(nil), ctr.Command...), ctr.Args...)
	dir := b.TempDir()
	env, _, err := py.mgr.Prepare(b.Context(), argv, filepath.Join(dir, "venv"), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", nil)
	if err != nil {
		b.Fatal(err)
	}
	env = append(env, "HOME="+dir, "PIP_INDEX_URL="+py.indexURL())
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i++ {
		out := filepath.Join(dir, fmt.Sprint(i))
		in := fmt.Sprintf(`{"inputs":{"parameterValues":{"a":%d,"b":1}},"outputs":{"parameters":{"Output":{"outputFile":"%s/Output"}},"outputFile":"%s/output_metadata.json"}}`, i, out, out)
		args := make([]string, len(argv))
		for j, a := range argv {
			args[j] = strings.ReplaceAll(a, "{{$}}", in)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = env
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("raw run: %v\n%s", err, o)
		}
		if _, err := os.Stat(filepath.Join(out, "output_metadata.json")); err != nil {
			b.Fatalf("raw run wrote no output: %v", err)
		}
	}
	return time.Since(start)
}

// benchPython runs a chain of n Python tasks through the engine on the host runtime (with
// the task environments cached by a first run), sub-benchmark "box", and the same compiled
// commands run directly, sub-benchmark "raw", in the same process.
func benchPython(b *testing.B, n int) {
	requireHost(b)
	h := newHarness(b, harnessOpts{python: true})
	py := sharedPython(b)
	p, ctr := pythonChainPipeline(b, n)
	if r := h.waitRun(h.submit(p, nil), 10*time.Minute); r.State != "SUCCEEDED" { // warms the cache
		b.Fatalf("warm-up run %s", r.State)
	}
	b.Run("box", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if r := h.waitRun(h.submit(p, nil), 10*time.Minute); r.State != "SUCCEEDED" {
				b.Fatalf("run %s", r.State)
			}
		}
	})
	b.Run("raw", func(b *testing.B) { rawPython(b, py, ctr, n*b.N) })
}

// BenchmarkPythonTask is one trivial lightweight Python task end to end on the host runtime.
func BenchmarkPythonTask(b *testing.B) { benchPython(b, 1) }

// BenchmarkPythonChain10 is a 10-task chain of them.
func BenchmarkPythonChain10(b *testing.B) { benchPython(b, 10) }
