package appliance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/appliance/builtins"
	"github.com/kfp-box/kfp-box/internal/mysqltest"
	"github.com/kfp-box/kfp-box/internal/pgtest"
	"github.com/kfp-box/kfp-box/runtime/containerd"
	"github.com/kfp-box/kfp-box/runtime/containerd/containerdtest"
	"github.com/kfp-box/kfp-box/storage/objects/s3server"

	"github.com/kfp-box/kfp-box/internal/testmaterial"
)

// ctd is the containerd the containerd end-to-end test uses, started by TestMain.
var ctd struct {
	skip    string
	address string
	daemon  *containerd.Daemon
}

// testdata is this package's testdata directory as an absolute path: the embedded S3 server
// changes the process's working directory, so relative paths stop working once a box runs.
var testdata, projectTestdata string

func TestMain(m *testing.M) {
	testdata, _ = filepath.Abs("testdata")
	projectTestdata, _ = filepath.Abs("../testdata")
	// The host runtime re-executes this binary as its shim; containerd's shim runs it as the
	// log writer.
	if code, handled := builtins.Reexec(os.Args); handled {
		os.Exit(code)
	}
	if os.Getenv(s3ServerEnv) == "1" {
		os.Exit(runS3Server())
	}
	stop := startContainerd()
	code := m.Run()
	stop()
	os.Exit(code)
}

func startContainerd() func() {
	if why := containerdtest.Prerequisites(); why != "" {
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "containerd end-to-end tests cannot run in CI:", why)
			os.Exit(1)
		}
		ctd.skip = why + " (run scripts/ensure-containerd.sh; CI=true turns this skip into a failure)"
		return func() {}
	}
	tmp, err := os.MkdirTemp("", "kfpbox-e2e-")
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "containerd setup:", err)
		os.Exit(1)
	}
	initPath, err := containerdtest.BuildInit(ctx, tmp)
	if err != nil {
		fail(err)
	}
	// kfp-box looks for its task init in PATH when it is not next to the binary.
	os.Setenv("PATH", filepath.Dir(initPath)+":"+os.Getenv("PATH"))
	d, err := containerd.StartDaemon(ctx, containerd.DaemonConfig{Dir: filepath.Join(tmp, "containerd"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fail(err)
	}
	ctd.daemon, ctd.address = d, d.Address()
	if err := containerdtest.ImportBusybox(ctx, d.Address(), "docker.io/library/busybox:latest"); err != nil {
		fail(err)
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		containerdtest.RemoveAll(sctx, d.Address())
		_ = d.Stop(sctx)
		containerdtest.Unmount(tmp)
		_ = os.RemoveAll(tmp)
	}
}

// box is a running kfp-box for one test.
type box struct {
	t     *testing.T
	a     *appliance.Appliance
	base  string
	data  string
	token string // the admin token, sent with every request
}

func startBox(t *testing.T, mutate func(*appliance.Config)) *box {
	t.Helper()
	cfg := appliance.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.S3Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = 30 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := appliance.New(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("appliance.New: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := a.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return boxFor(t, a, cfg.DataDir)
}

// boxFor wraps a running appliance; requests carry its admin token.
func boxFor(t *testing.T, a *appliance.Appliance, data string) *box {
	t.Helper()
	b := &box{t: t, a: a, base: "http://" + a.Addr() + "/apis/v2beta1", data: data}
	if a.AuthEnabled() {
		tok, err := os.ReadFile(a.AdminTokenPath())
		if err != nil {
			t.Fatal(err)
		}
		b.token = strings.TrimSpace(string(tok))
		tokenFiles.Store(a.Addr(), a.AdminTokenPath())
	}
	return b
}

// tokenFiles maps a running box's address to its admin token's file, for client commands
// run in-process (runCLI).
var tokenFiles sync.Map

// post is an authenticated POST.
func (b *box) post(url, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if b.token != "" {
		req.Header.Set("Authorization", "Bearer "+b.token)
	}
	return http.DefaultClient.Do(req)
}

// get is an authenticated GET.
func (b *box) get(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if b.token != "" {
		req.Header.Set("Authorization", "Bearer "+b.token)
	}
	return http.DefaultClient.Do(req)
}

func (b *box) do(method, path string, body io.Reader, contentType string, out any) int {
	b.t.Helper()
	url := path
	if !strings.HasPrefix(path, "http") {
		url = b.base + path
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if b.token != "" {
		req.Header.Set("Authorization", "Bearer "+b.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	if resp.StatusCode >= 300 && out == nil {
		b.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

// upload uploads a pipeline file the way the SDK does and returns the pipeline id.
func (b *box) upload(file, name string) string {
	b.t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		b.t.Fatal(err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("uploadfile", filepath.Base(file))
	fw.Write(data)
	mw.Close()
	var p struct {
		PipelineID string `json:"pipeline_id"`
	}
	if code := b.do("POST", "/pipelines/upload?name="+name, &buf, mw.FormDataContentType(), &p); code != 200 {
		b.t.Fatalf("upload %s: HTTP %d", file, code)
	}
	return p.PipelineID
}

type taskDetail struct {
	DisplayName      string                    `json:"display_name"`
	State            string                    `json:"state"`
	Error            *struct{ Message string } `json:"error"`
	Waiting          string                    `json:"waiting"`
	CacheSource      map[string]any            `json:"cache_source"`
	OutputParameters map[string]any            `json:"output_parameters"`
}

type run struct {
	RunID      string `json:"run_id"`
	State      string `json:"state"`
	Error      *struct{ Message string }
	RunDetails struct {
		TaskDetails []taskDetail `json:"task_details"`
	} `json:"run_details"`
}

// runPipeline creates a run of the pipeline's latest version and waits until it ends.
func (b *box) runPipeline(pipelineID string, params map[string]any) run {
	b.t.Helper()
	body, _ := json.Marshal(map[string]any{
		"display_name":               "e2e",
		"pipeline_version_reference": map[string]string{"pipeline_id": pipelineID},
		"runtime_config":             map[string]any{"parameters": params},
	})
	var r run
	if code := b.do("POST", "/runs", bytes.NewReader(body), "application/json", &r); code != 200 {
		b.t.Fatalf("create run: HTTP %d: %+v", code, r)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var got run
		b.do("GET", "/runs/"+r.RunID, nil, "", &got)
		switch got.State {
		case "SUCCEEDED", "FAILED", "CANCELED", "SKIPPED":
			return got
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("run %s still %s after 3 minutes", r.RunID, got.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r run) task(t *testing.T, name string) taskDetail {
	t.Helper()
	for _, d := range r.RunDetails.TaskDetails {
		if d.DisplayName == name {
			return d
		}
	}
	t.Fatalf("run %s has no task %q: %+v", r.RunID, name, r.RunDetails.TaskDetails)
	return taskDetail{}
}

// TestBoxHostRuntime drives a whole box with the host runtime as a user would: healthz,
// upload, run, task outputs, the artifact API and S3 serving the same bytes, secrets at
// the Kubernetes paths, metrics and the GPU inventory.
func TestBoxHostRuntime(t *testing.T) { testBoxHostRuntime(t, "") }

// TestBoxHostRuntimePostgres is the same box with its metadata on PostgreSQL through kine
// (--datastore-endpoint), started by the test from Debian's package.
func TestBoxHostRuntimePostgres(t *testing.T) {
	pg := pgtest.Require(t)
	testBoxHostRuntime(t, pg.DSN("box"))
}

// TestBoxHostRuntimeMySQL is the same box with its metadata on MariaDB through kine
// (--datastore-endpoint mysql://), started by the test from Debian's mariadb-server.
func TestBoxHostRuntimeMySQL(t *testing.T) {
	my := mysqltest.Require(t)
	testBoxHostRuntime(t, my.DSN("box"))
}

// testBoxHostRuntime runs pipelines on the host runtime through the HTTP API, over the given
// datastore ("" for the bbolt file).
func testBoxHostRuntime(t *testing.T, datastore string) {
	b := startBox(t, func(c *appliance.Config) { c.Runtime = "host"; c.DatastoreEndpoint = datastore })

	var hz map[string]any
	b.do("GET", "/healthz", nil, "", &hz)
	if hz["multi_user"] != false {
		t.Fatalf("healthz multi_user = %v", hz["multi_user"])
	}

	pid := b.upload(filepath.Join(testdata, "limits.yaml"), "limits-probe")
	r := b.runPipeline(pid, map[string]any{})
	if r.State != "SUCCEEDED" {
		t.Fatalf("run ended %s: %+v", r.State, r)
	}
	if probe := r.task(t, "probe"); probe.State != "SUCCEEDED" || probe.OutputParameters["mem"] == nil {
		t.Fatalf("probe task: %+v", probe)
	}

	// The artifact, through the artifact API and over S3, byte for byte.
	var arts struct {
		Artifacts []struct {
			ArtifactID string `json:"artifact_id"`
			Name       string `json:"name"`
			URI        string `json:"uri"`
		} `json:"artifacts"`
	}
	b.do("GET", "/runs/"+r.RunID+"/artifacts", nil, "", &arts)
	var id, uri string
	for _, a := range arts.Artifacts {
		if a.Name == "report" {
			id, uri = a.ArtifactID, a.URI
		}
	}
	if id == "" {
		t.Fatalf("no report artifact in %+v", arts)
	}
	resp, err := b.get(b.base + "/artifacts/" + id + "/download")
	if err != nil {
		t.Fatal(err)
	}
	viaAPI, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(viaAPI) != "report from the box\n" {
		t.Fatalf("artifact API returned %q", viaAPI)
	}
	creds, err := s3server.LoadCredentials(filepath.Join(b.data, appliance.S3CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	ep, err := s3server.LoadEndpoint(filepath.Join(b.data, appliance.S3EndpointFile))
	if err != nil {
		t.Fatal(err)
	}
	endpoint := strings.TrimPrefix(strings.TrimPrefix(ep, "http://"), "https://")
	mc, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(creds.AccessKey, creds.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimPrefix(uri, "minio://mlpipeline/")
	obj, err := mc.GetObject(context.Background(), "mlpipeline", key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	viaS3, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || !bytes.Equal(viaS3, viaAPI) {
		t.Fatalf("S3 GET %s = %q, %v; the artifact API gave %q", key, viaS3, err, viaAPI)
	}

	// Secrets at the Kubernetes paths.
	secret := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"test-secret-1"},"stringData":{"username":"user1"}}`
	if code := b.do("POST", "http://"+b.a.Addr()+"/api/v1/namespaces/kubeflow/secrets", strings.NewReader(secret), "application/json", nil); code != http.StatusCreated {
		t.Fatalf("create secret: HTTP %d", code)
	}
	cm := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app-config"},"data":{"mode":"fast"}}`
	if code := b.do("POST", "http://"+b.a.Addr()+"/api/v1/namespaces/kubeflow/configmaps", strings.NewReader(cm), "application/json", nil); code != http.StatusCreated {
		t.Fatalf("create configmap: HTTP %d", code)
	}
	pid = b.upload(filepath.Join(testdata, "k8s_config.yaml"), "k8s-config")
	r = b.runPipeline(pid, map[string]any{})
	if got := r.task(t, "read").OutputParameters["seen"]; r.State != "SUCCEEDED" || got != "user1/fast/fast" {
		t.Fatalf("secret and configmap in a task: run %s, seen %v: %+v", r.State, got, r.RunDetails.TaskDetails)
	}

	// Metrics and the GPU inventory answer on a box without GPUs.
	resp, err = b.get("http://" + b.a.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "go_goroutines") {
		t.Fatalf("/metrics lacks go_goroutines:\n%.400s", metrics)
	}
	// Every run has ended: the engine holds no task slot.
	if !strings.Contains(string(metrics), "\nkfpbox_engine_task_slots_used 0\n") ||
		!strings.Contains(string(metrics), "\nkfpbox_engine_task_slots_reserved 0\n") {
		t.Fatalf("/metrics: task slots not back to zero:\n%s", grepLines(string(metrics), "kfpbox_engine"))
	}
	var gpus struct {
		Unavailable string `json:"unavailable_reason"`
	}
	b.do("GET", "/gpus", nil, "", &gpus)
	if gpus.Unavailable == "" {
		t.Fatal("GET /gpus on a machine without NVML gives no reason")
	}
	var sys struct {
		Runtime struct{ Backend string }
		Storage struct {
			ObjectsBytes int64  `json:"objects_bytes"`
			FreeBytes    int64  `json:"free_bytes"`
			Datastore    string `json:"datastore"`
		}
		Engine struct {
			TaskSlots struct{ Used, Reserved, Max int } `json:"task_slots"`
		}
	}
	b.do("GET", "/system", nil, "", &sys)
	if sys.Runtime.Backend != "host" || sys.Storage.ObjectsBytes <= 0 || sys.Storage.FreeBytes <= 0 {
		t.Fatalf("GET /system = %+v", sys)
	}
	if want := appliance.RedactDSN(datastore); (datastore == "" && sys.Storage.Datastore != "bbolt") || (datastore != "" && sys.Storage.Datastore != want) {
		t.Fatalf("GET /system datastore = %q, want %q", sys.Storage.Datastore, want)
	}
	if ts := sys.Engine.TaskSlots; ts.Used != 0 || ts.Reserved != 0 || ts.Max <= 0 {
		t.Fatalf("GET /system task slots = %+v, want none in use of a positive number", ts)
	}
}

// TestBoxContainerd runs pipelines in real containers through the HTTP API: a producer and
// consumer exchanging a parameter and an artifact, limits visible in the task's cgroup, and
// a missing image failing its task with the message that says what to do.
func TestBoxContainerd(t *testing.T) { testBoxContainerd(t, "") }

// TestBoxContainerdPostgres is the same box in real containers with its metadata on
// PostgreSQL through kine (--datastore-endpoint), started by the test from Debian's package.
func TestBoxContainerdPostgres(t *testing.T) {
	if ctd.skip != "" {
		t.Skip(ctd.skip)
	}
	pg := pgtest.Require(t)
	testBoxContainerd(t, pg.DSN("box"))
}

// testBoxContainerd runs pipelines in containers over the given datastore ("" for bbolt).
func testBoxContainerd(t *testing.T, datastore string) {
	if ctd.skip != "" {
		t.Skip(ctd.skip)
	}
	b := startBox(t, func(c *appliance.Config) {
		useContainerd(c, ctd.address)
		c.DatastoreEndpoint = datastore
	})

	pid := b.upload(filepath.Join(projectTestdata, "pipelines", "params_and_artifacts.yaml"), "params-and-artifacts")
	r := b.runPipeline(pid, map[string]any{})
	if r.State != "SUCCEEDED" {
		t.Fatalf("params-and-artifacts in containers ended %s: %+v", r.State, r.RunDetails.TaskDetails)
	}
	for _, name := range []string{"produce", "consume"} {
		if d := r.task(t, name); d.State != "SUCCEEDED" {
			t.Fatalf("task %s: %+v", name, d)
		}
	}

	// An artifact written at a custom path inside the container reaches its consumer.
	pid = b.upload(filepath.Join(projectTestdata, "pipelines", "custom_path.yaml"), "custom-path")
	r = b.runPipeline(pid, map[string]any{"dir": "/tmp/custom"})
	if r.State != "SUCCEEDED" {
		t.Fatalf("custom-path in containers ended %s: %+v", r.State, r.RunDetails.TaskDetails)
	}
	if got := r.task(t, "consume").OutputParameters["Output"]; got != "written at a custom path" {
		t.Fatalf("the consumer of a custom-path artifact read %q", got)
	}

	pid = b.upload(filepath.Join(testdata, "limits.yaml"), "limits-probe")
	r = b.runPipeline(pid, map[string]any{})
	if r.State != "SUCCEEDED" {
		t.Fatalf("limits-probe ended %s: %+v", r.State, r.RunDetails.TaskDetails)
	}
	probe := r.task(t, "probe")
	if got := fmt.Sprint(probe.OutputParameters["mem"]); got != "67108864" {
		t.Errorf("memory limit seen in the task's cgroup = %s, want 67108864 (64Mi)", got)
	}
	if got := fmt.Sprint(probe.OutputParameters["cpu"]); got != "50000" {
		t.Errorf("CPU quota seen in the task's cgroup = %s, want 50000 (500m of a 100ms period)", got)
	}

	pid = b.upload(filepath.Join(testdata, "missing_image.yaml"), "missing-image")
	r = b.runPipeline(pid, map[string]any{})
	if r.State != "FAILED" {
		t.Fatalf("a task with a missing image: run ended %s", r.State)
	}
	d := r.task(t, "nothing")
	if d.State != "FAILED" || d.Error == nil || !strings.Contains(d.Error.Message, "kfp-box image import") {
		t.Fatalf("missing image task: %+v (error %+v)", d, d.Error)
	}
}

// TestGPUFixtureWaitsWithoutGPUs submits KFP's GPU scheduling fixture to a box without GPUs:
// the task stays pending and says why, and terminating the run ends the wait.
func TestGPUFixtureWaitsWithoutGPUs(t *testing.T) {
	fixture := filepath.Join(fixturesDir(t), "valid", "gpu-scheduling", "nvidia_gpu_scheduling_check.yaml")
	b := startBox(t, func(c *appliance.Config) { c.Runtime = "host" })
	var gpus struct {
		Unavailable string `json:"unavailable_reason"`
	}
	b.do("GET", "/gpus", nil, "", &gpus)
	if gpus.Unavailable == "" {
		t.Skip("this machine has GPUs; the test is about a box without them")
	}
	pid := b.upload(fixture, "gpu-check")
	body, _ := json.Marshal(map[string]any{"display_name": "gpu", "pipeline_version_reference": map[string]string{"pipeline_id": pid}})
	var r run
	if code := b.do("POST", "/runs", bytes.NewReader(body), "application/json", &r); code != 200 {
		t.Fatalf("create run: HTTP %d", code)
	}
	deadline := time.Now().Add(time.Minute)
	var waiting taskDetail
	for waiting.Waiting == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no task reports why it waits: %+v", r.RunDetails.TaskDetails)
		}
		time.Sleep(100 * time.Millisecond)
		b.do("GET", "/runs/"+r.RunID, nil, "", &r)
		for _, d := range r.RunDetails.TaskDetails {
			if d.Waiting != "" {
				waiting = d
			}
		}
	}
	if waiting.State != "PENDING" || !strings.Contains(waiting.Waiting, "no GPUs") || r.State != "RUNNING" {
		t.Fatalf("run %s, task %+v: want a PENDING task whose reason says the box has no GPUs", r.State, waiting)
	}
	if code := b.do("POST", "/runs/"+r.RunID+":terminate", nil, "", nil); code != 200 {
		t.Fatalf("terminate: HTTP %d", code)
	}
	deadline = time.Now().Add(time.Minute)
	for r.State != "FAILED" {
		if time.Now().After(deadline) {
			t.Fatalf("terminated run is %s after a minute", r.State)
		}
		time.Sleep(100 * time.Millisecond)
		b.do("GET", "/runs/"+r.RunID, nil, "", &r)
	}
}

// fixturesDir is the shared KFP IR fixtures directory.
func fixturesDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("KFPBOX_FIXTURES"); d != "" {
		return d
	}
	d := filepath.Join(filepath.Dir(projectTestdata), "..", "shared", "fixtures", "kfp-ir")
	if _, err := os.Stat(d); err != nil {
		testmaterial.Missing(t, "KFP IR fixtures not found at %s (set KFPBOX_FIXTURES to their directory)", d)
	}
	return d
}

// TestRecurringRunInABox checks that a whole box runs its scheduler: a recurring run every
// second creates runs, and disabling it stops them.
func TestRecurringRunInABox(t *testing.T) { testRecurringRunInABox(t, "") }

// TestRecurringRunInABoxPostgres drives the scheduler, which reacts to kv watch events, with
// the metadata on PostgreSQL through kine.
func TestRecurringRunInABoxPostgres(t *testing.T) {
	pg := pgtest.Require(t)
	testRecurringRunInABox(t, pg.DSN("box"))
}

func testRecurringRunInABox(t *testing.T, datastore string) {
	b := startBox(t, func(c *appliance.Config) { c.Runtime = "host"; c.DatastoreEndpoint = datastore })
	pid := b.upload(filepath.Join(testdata, "limits.yaml"), "limits-probe")
	body, _ := json.Marshal(map[string]any{
		"display_name":               "every second",
		"pipeline_version_reference": map[string]string{"pipeline_id": pid},
		"trigger":                    map[string]any{"periodic_schedule": map[string]any{"interval_second": "1"}},
		"mode":                       "ENABLE",
		"max_concurrency":            "10",
		"no_catchup":                 true,
	})
	var rr struct {
		ID string `json:"recurring_run_id"`
	}
	if code := b.do("POST", "/recurringruns", bytes.NewReader(body), "application/json", &rr); code != 200 {
		t.Fatalf("create recurring run: HTTP %d", code)
	}
	count := func() int {
		var l struct {
			Runs []json.RawMessage `json:"runs"`
		}
		f := `{"predicates":[{"operation":"EQUALS","key":"recurring_run_id","string_value":"` + rr.ID + `"}]}`
		b.do("GET", "/runs?page_size=100&filter="+url.QueryEscape(f), nil, "", &l)
		return len(l.Runs)
	}
	deadline := time.Now().Add(30 * time.Second)
	for count() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the recurring run made %d runs in 30 s", count())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code := b.do("POST", "/recurringruns/"+rr.ID+":disable", nil, "", nil); code != 200 {
		t.Fatalf("disable: HTTP %d", code)
	}
	n := count()
	// Three periods after disabling, at most one run that was already being created may appear.
	time.Sleep(3 * time.Second)
	if got := count(); got > n+1 {
		t.Fatalf("disabled recurring run went on: %d runs, then %d", n, got)
	}
}

// TestGCSRootRefused checks that a run whose pipeline root is gs:// fails with a message
// that says why, since the box has no Google Cloud Storage.
func TestGCSRootRefused(t *testing.T) {
	b := startBox(t, func(c *appliance.Config) { c.Runtime = "host" })
	pid := b.upload(filepath.Join(testdata, "limits.yaml"), "limits-probe")
	body, _ := json.Marshal(map[string]any{
		"display_name":               "gcs",
		"pipeline_version_reference": map[string]string{"pipeline_id": pid},
		"runtime_config":             map[string]any{"pipeline_root": "gs://my-bucket/root"},
	})
	var r run
	if code := b.do("POST", "/runs", bytes.NewReader(body), "application/json", &r); code != 200 {
		t.Fatalf("create run: HTTP %d", code)
	}
	deadline := time.Now().Add(time.Minute)
	for r.State != "FAILED" {
		if time.Now().After(deadline) || r.State == "SUCCEEDED" {
			t.Fatalf("run with a gs:// root is %s", r.State)
		}
		time.Sleep(50 * time.Millisecond)
		b.do("GET", "/runs/"+r.RunID, nil, "", &r)
	}
	if r.Error == nil || !strings.Contains(r.Error.Message, "gs://") {
		t.Fatalf("run error %+v does not explain the gs:// root", r.Error)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// useContainerd points c at the containerd runtime on the socket address.
func useContainerd(c *appliance.Config, address string) {
	c.Runtime = containerd.ID
	c.Section("runtime", containerd.ID).(*containerd.Settings).Address = address
}
