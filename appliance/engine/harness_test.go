package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kfp-box/kfp-box/appliance/api"
	"github.com/kfp-box/kfp-box/appliance/pyenv"
	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/runtime/host"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// TestMain lets the test binary act as the host runtime's shim (and as the child engine
// process of the crash test).
func TestMain(m *testing.M) {
	if host.ShimMain() {
		return
	}
	if childMain() {
		return
	}
	code := m.Run()
	closePython()
	if shimDir != "" {
		_ = os.RemoveAll(shimDir)
	}
	os.Exit(code)
}

var (
	shimOnce sync.Once
	shimDir  string
	shimPath string
)

// testShim builds testdata/shim, a shim binary that links only the host runtime, once per
// test process. The test binary itself can be the shim too, but it links the API and its
// dependencies, whose package init costs tens of milliseconds on every task start. "" when
// the build fails (the test binary is used then).
func testShim() string {
	shimOnce.Do(func() {
		d, err := os.MkdirTemp("", "kfpbox-shim-")
		if err != nil {
			return
		}
		shimDir = d
		out := filepath.Join(d, "shim")
		cmd := exec.Command("go", "build", "-o", out, "./testdata/shim")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building the test shim failed, using the test binary: %v\n%s", err, b)
			return
		}
		shimPath = out
	})
	return shimPath
}

// harness is one engine over a real bbolt store and a runtime, in a temporary data dir.
type harness struct {
	t      testing.TB
	dir    string
	kv     kv.Store
	meta   *meta.Store
	rt     runtime.Runtime
	engine *Engine
	// srv is the KFP HTTP API in front of the engine (nil with harnessOpts.direct).
	srv *httptest.Server
}

type harnessOpts struct {
	dir         string
	rt          runtime.Runtime
	cache       bool
	maxParallel int
	secrets     SecretStore
	volumes     Volumes // nil: fake volumes holding fixtureClaim
	gpus        GPUAllocator
	noStart     bool
	logLevel    slog.Level
	staleness   time.Duration
	// sync makes bbolt fsync every commit (benchmarks of the real cost).
	sync bool
	// direct creates runs in the store and submits them to the engine, without the API.
	direct bool
	// python gives tasks the shared wheelhouse as their package index and host Python
	// environments (sharedPython).
	python bool
	// packageIndex is the PIP_INDEX_URL tasks get (without python).
	packageIndex string
}

// with returns a view of h that reports to t (for subtests).
func (h *harness) with(t testing.TB) *harness {
	c := *h
	c.t = t
	return &c
}

func testLogger() *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("KFPBOX_TEST_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// requireHost skips tests that need the host runtime's mount namespaces.
func requireHost(t testing.TB) {
	t.Helper()
	if err := host.Available(); err != nil {
		t.Skipf("needs the host runtime with mount namespaces (run the tests as root): %v", err)
	}
}

func openHostRuntime(t testing.TB, dir string) runtime.Runtime {
	t.Helper()
	s := host.NewSettings()
	s.Shim = testShim()
	rt, err := runtime.Open(context.Background(), host.ID, runtime.Options{DataDir: dir, Logger: testLogger()}, s)
	if err != nil {
		t.Fatalf("open host runtime: %v", err)
	}
	return rt
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	ctx := context.Background()
	st, err := bolt.Open(ctx, kv.Options{Path: filepath.Join(dir, "meta.db"), NoSync: !o.sync})
	if err != nil {
		t.Fatalf("open kv: %v", err)
	}
	ms, err := meta.Open(ctx, st, testLogger())
	if err != nil {
		t.Fatalf("open meta: %v", err)
	}
	rt := o.rt
	if rt == nil {
		requireHost(t)
		rt = openHostRuntime(t, dir)
	}
	cfg := Config{
		Logger: testLogger(), Meta: ms, Runtime: rt, DataDir: dir,
		MaxParallelTasks: o.maxParallel, CacheEnabled: o.cache, Secrets: o.secrets, GPUs: o.gpus, Volumes: o.volumes,
		MaxCacheStaleness: o.staleness, KillGrace: 2 * time.Second,
	}
	if cfg.Volumes == nil {
		cfg.Volumes = newFakeVolumes(filepath.Join(dir, "volumes"), fixtureClaim)
	}
	if o.packageIndex != "" {
		cfg.PackageIndex = func(string) string { return o.packageIndex }
	}
	var py *pyBox
	if o.python {
		py = sharedPython(t)
		cfg.PackageIndex = func(string) string { return py.indexURL() }
		if rt.Name() == "host" {
			cfg.Python = py.mgr
		}
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: dir, kv: st, meta: ms, rt: rt, engine: e}
	if !o.direct {
		deps := api.Deps{Logger: testLogger(), Meta: ms, Engine: e}
		if py != nil {
			deps.Preflight = func(_ context.Context, p *spec.Pipeline) []string {
				return pyenv.Preflight(p, pyenv.PreflightOptions{Wheels: py.wheels, ContainerRuntime: rt.Name() != "host"})
			}
		}
		h.srv = httptest.NewServer(api.New(deps).Handler())
		t.Cleanup(h.srv.Close)
	}
	if !o.noStart {
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
		_ = rt.Close()
		_ = st.Close()
	})
	return h
}

// loadPipeline reads an IR file: testdata/... relative to the repo root, or a fixture.
func loadPipeline(t testing.TB, path string) *spec.Pipeline {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	p, err := spec.Parse(b)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return p
}

func repoRoot() string { return filepath.Join("..", "..") }

func testdataPipeline(t testing.TB, name string) *spec.Pipeline {
	return loadPipeline(t, filepath.Join(repoRoot(), "testdata", "pipelines", name))
}

// submit creates a run of p through the HTTP API (POST /apis/v2beta1/runs with the spec
// inline, as kfp.Client does from a package), which stores it and hands it to the engine.
func (h *harness) submit(p *spec.Pipeline, params map[string]any) string {
	h.t.Helper()
	if h.srv == nil {
		return h.submitWith(p, params, nil)
	}
	stored := p.StoredJSON()
	if stored == nil {
		stored, _ = json.Marshal(p.Spec)
	}
	if params == nil {
		params = map[string]any{}
	}
	body, _ := json.Marshal(map[string]any{
		"display_name":   "run-" + uuid.NewString()[:8],
		"pipeline_spec":  stored,
		"runtime_config": map[string]any{"parameters": params},
	})
	resp, err := http.Post(h.srv.URL+"/apis/v2beta1/runs", "application/json", bytes.NewReader(body))
	if err != nil {
		h.t.Fatalf("create run: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		RunID string `json:"run_id"`
		State string `json:"state"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil || out.RunID == "" {
		h.t.Fatalf("create run: %d %s", resp.StatusCode, raw)
	}
	return out.RunID
}

// apiState reads a run's state through GET /apis/v2beta1/runs/{id}.
func (h *harness) apiState(id string) string {
	h.t.Helper()
	resp, err := http.Get(h.srv.URL + "/apis/v2beta1/runs/" + id)
	if err != nil {
		h.t.Fatalf("get run: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		State string `json:"state"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.State
}

// submitWith is submit with a hook called with the run id before the engine sees it.
func (h *harness) submitWith(p *spec.Pipeline, params map[string]any, before func(id string)) string {
	h.t.Helper()
	id := uuid.NewString()
	if before != nil {
		before(id)
	}
	now := time.Now().UTC()
	exp, err := h.meta.DefaultExperimentID(context.Background())
	if err != nil {
		h.t.Fatalf("default experiment: %v", err)
	}
	r := &meta.Run{ID: id, ExperimentID: exp, DisplayName: "run-" + id[:8], StorageState: meta.StorageAvailable,
		InlineSpec: true, RuntimeConfig: meta.RuntimeConfig{Parameters: params}, CreatedAt: now, ScheduledAt: now,
		State: meta.RunPending, PipelineName: p.Name(),
		StateHistory: []meta.StateEvent{{UpdateTime: now, State: meta.RunPending}}}
	stored := p.StoredJSON()
	if stored == nil {
		stored, _ = json.Marshal(p.Spec)
	}
	if err := h.meta.CreateRun(context.Background(), r, stored); err != nil {
		h.t.Fatalf("create run: %v", err)
	}
	if err := h.engine.Submit(context.Background(), id); err != nil {
		h.t.Fatalf("submit: %v", err)
	}
	return id
}

// waitRun waits until the run reaches a terminal state and returns it.
func (h *harness) waitRun(id string, timeout time.Duration) *meta.Run {
	h.t.Helper()
	var r *meta.Run
	waitFor(h.t, timeout, fmt.Sprintf("run %s to finish", id), func() bool {
		var err error
		r, err = h.meta.GetRun(context.Background(), id)
		if err != nil {
			h.t.Fatalf("get run: %v", err)
		}
		return meta.IsTerminalRunState(r.State)
	})
	return r
}

// waitFor polls cond until it holds or timeout passes (then the test fails).
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// taskPath names an execution by its task keys from the root: "a", "for-loop-1[0]/b".
func taskPaths(execs []*meta.Execution) map[string]*meta.Execution {
	byID := map[string]*meta.Execution{}
	for _, x := range execs {
		byID[x.ID] = x
	}
	var name func(x *meta.Execution) string
	name = func(x *meta.Execution) string {
		if x.Kind == meta.KindRoot {
			return ""
		}
		own := x.TaskKey
		if x.Kind == meta.KindIteration {
			own = fmt.Sprintf("[%d]", x.IterationIndex)
		}
		parent := byID[x.ParentID]
		pn := ""
		if parent != nil {
			pn = name(parent)
		}
		if pn == "" {
			return own
		}
		if x.Kind == meta.KindIteration {
			return pn + own
		}
		return pn + "/" + own
	}
	out := map[string]*meta.Execution{}
	for _, x := range execs {
		out[name(x)] = x
	}
	return out
}

func (h *harness) tasks(id string) map[string]*meta.Execution {
	h.t.Helper()
	execs, err := h.meta.ListExecutions(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return taskPaths(execs)
}

// states renders "path=STATE" sorted, for messages.
func states(m map[string]*meta.Execution) string {
	var out []string
	for k, x := range m {
		s := k + "=" + x.State
		if x.Error != "" && x.State == meta.ExecFailed {
			s += "(" + x.Error + ")"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, "\n  ")
}

// expectRun checks the run's final state, the states of the listed tasks and their output
// parameters.
type expectation struct {
	state   string
	tasks   map[string]string
	outputs map[string]map[string]any
}

func (h *harness) check(id string, r *meta.Run, want expectation) {
	h.t.Helper()
	got := h.tasks(id)
	if st := h.apiState(id); h.srv != nil && st != want.state {
		h.t.Errorf("GET /runs/%s says %s, want %s", id, st, want.state)
	}
	if r.State != want.state {
		msg := ""
		if r.Error != nil {
			msg = r.Error.Message
		}
		h.t.Fatalf("run state %s (%s), want %s; tasks:\n  %s", r.State, msg, want.state, states(got))
	}
	for path, st := range want.tasks {
		x := got[path]
		if x == nil {
			h.t.Errorf("task %s: no record, want %s; tasks:\n  %s", path, st, states(got))
			continue
		}
		if x.State != st {
			h.t.Errorf("task %s: state %s (%s), want %s", path, x.State, x.Error, st)
		}
	}
	for path, outs := range want.outputs {
		x := got[path]
		if x == nil {
			h.t.Errorf("task %s: no record", path)
			continue
		}
		for k, v := range outs {
			if fmt.Sprint(x.Outputs.Parameters[k]) != fmt.Sprint(v) {
				h.t.Errorf("task %s output %s = %#v, want %#v", path, k, x.Outputs.Parameters[k], v)
			}
		}
	}
}
