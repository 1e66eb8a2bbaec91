package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/pyenv"
	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
	"github.com/kfp-box/kfp-box/storage/wheelhouse"
	"github.com/kfp-box/kfp-box/storage/wheelhouse/wheeltest"
)

// pyBox is one wheelhouse holding the shared KFP SDK wheels, served on loopback, and one
// host Python environment manager, shared by every test of the process that runs
// lightweight Python components: their cached environments are built once.
type pyBox struct {
	wheels *wheelhouse.Store
	srv    *httptest.Server
	mgr    *pyenv.Manager
	interp pyenv.Interpreter
	err    string
}

var (
	pyOnce   sync.Once
	pyShared *pyBox
	pyDir    string
)

// testPython is the interpreter the tests give host tasks: $KFPBOX_TEST_PYTHON, else
// Debian's /usr/bin/python3 (externally managed, PEP 668), which scripts/ensure-deps.sh
// installs with the packages kfp needs.
func testPython() string {
	if p := os.Getenv("KFPBOX_TEST_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// sharedPython returns the process's pyBox, making it the first time. It skips the test
// (fails under CI=true) when the wheels or a usable host Python are missing.
func sharedPython(t testing.TB) *pyBox {
	t.Helper()
	wheels := wheeltest.SharedWheels(t, repoRoot())
	pyOnce.Do(func() {
		b := &pyBox{}
		pyShared = b
		d, err := os.MkdirTemp("", "kfpbox-py-")
		if err != nil {
			b.err = err.Error()
			return
		}
		pyDir = d
		b.wheels, err = wheelhouse.Open(filepath.Join(d, "wheelhouse"), nil)
		if err != nil {
			b.err = err.Error()
			return
		}
		files, _ := filepath.Glob(filepath.Join(wheels, "*.whl"))
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				b.err = err.Error()
				return
			}
			_, err = b.wheels.Import(filepath.Base(f), fh, "")
			fh.Close()
			if err != nil {
				b.err = err.Error()
				return
			}
		}
		mux := http.NewServeMux()
		mux.Handle("/pypi/", &wheelhouse.Index{Store: b.wheels, Prefix: "/pypi"})
		b.srv = httptest.NewServer(mux)
		b.interp = pyenv.Probe(context.Background(), testPython())
		if b.interp.Problem != "" {
			b.err = b.interp.Problem
			return
		}
		b.mgr = pyenv.NewManager(pyenv.Config{Interpreter: b.interp, Dir: filepath.Join(d, "pyenv"), IndexURL: b.indexURL, Logger: testLogger()})
	})
	if pyShared.err != "" {
		msg := "host Python for lightweight components: " + pyShared.err + " (scripts/ensure-deps.sh installs it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return pyShared
}

func (b *pyBox) indexURL() string { return b.srv.URL + "/pypi/simple/" }

// closePython stops the shared index and removes its files (TestMain).
func closePython() {
	if pyShared != nil && pyShared.srv != nil {
		pyShared.srv.Close()
	}
	if pyDir != "" {
		_ = os.RemoveAll(pyDir)
	}
}

// TestPipIndexAndMissingDistribution: every task gets the box's index as PIP_INDEX_URL and
// PIP_TRUSTED_HOST, except a component naming its own (pip_index_urls); a task whose pip
// found no matching distribution (as on containerd, where pip runs in the image) fails
// with one line naming the package, the version and the fix.
func TestPipIndexAndMissingDistribution(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	envs := map[string][]string{}
	rt := &fakeRuntime{RunFn: func(_ context.Context, s runtime.TaskSpec) runtime.ExitStatus {
		mu.Lock()
		envs[s.Labels["kfp-box/task"]] = s.Env
		mu.Unlock()
		if s.Labels["kfp-box/task"] == "pinned" {
			ts := time.Now().UTC().Format(time.RFC3339Nano)
			log := ts + " stderr ERROR: Could not find a version that satisfies the requirement kfp==9.9.9 (from versions: 2.14.6)\n" +
				ts + " stderr ERROR: No matching distribution found for kfp==9.9.9\n"
			_ = os.MkdirAll(filepath.Dir(s.LogPath), 0o755)
			_ = os.WriteFile(s.LogPath, []byte(log), 0o644)
			return runtime.ExitStatus{Code: 1}
		}
		return runtime.ExitStatus{}
	}}
	h := newHarness(t, harnessOpts{rt: rt, packageIndex: "http://127.0.0.1:8888/pypi/simple/"})
	ps := basePipeline("pip-index")
	pipCmd := func(extra string) *spec.ExecutorSpec {
		return &spec.ExecutorSpec{Container: &spec.ContainerSpec{Image: "python:3.11", Command: []string{"sh", "-c",
			"python3 -m pip install --quiet " + extra + " 'kfp==9.9.9' '--no-deps' && \"$0\" \"$@\"", "python3", "-c", "pass"}}}
	}
	ps.DeploymentSpec.Executors["exec-plain"] = pipCmd("")
	ps.DeploymentSpec.Executors["exec-own"] = pipCmd("--index-url https://pypi.org/simple --trusted-host https://pypi.org/simple")
	for _, n := range []string{"plain", "own", "pinned"} {
		ex := "exec-" + n
		if n == "pinned" {
			ex = "exec-plain"
		}
		ps.Components["comp-"+n] = &spec.ComponentSpec{ExecutorLabel: ex}
		ps.Root.DAG.Tasks[n] = &spec.PipelineTaskSpec{TaskInfo: spec.TaskInfo{Name: n}, ComponentRef: spec.ComponentRef{Name: "comp-" + n}}
	}
	id := h.submit(&spec.Pipeline{Spec: ps}, nil)
	h.waitRun(id, time.Minute)
	got := h.tasks(id)
	if x := got["pinned"]; x == nil || x.State != meta.ExecFailed || x.Error != `task "pinned" failed: Python package kfp (version 9.9.9) is not in the box's wheelhouse (no --pypi-upstream is set); fix: kfp-box wheels import kfp-9.9.9-*.whl` {
		t.Errorf("pinned task: %+v", x)
	}
	mu.Lock()
	defer mu.Unlock()
	has := func(env []string, kv string) bool {
		for _, e := range env {
			if e == kv {
				return true
			}
		}
		return false
	}
	if e := envs["plain"]; !has(e, "PIP_INDEX_URL=http://127.0.0.1:8888/pypi/simple/") || !has(e, "PIP_TRUSTED_HOST=127.0.0.1:8888") {
		t.Errorf("plain task env %q lacks the box's index", e)
	}
	for _, e := range envs["own"] {
		if strings.HasPrefix(e, "PIP_INDEX_URL=") || strings.HasPrefix(e, "PIP_TRUSTED_HOST=") {
			t.Errorf("a component with its own index got %s", e)
		}
	}
}
