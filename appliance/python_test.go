package appliance_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/appliance/cli"
	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/runtime/containerd"
	"github.com/kfp-box/kfp-box/runtime/containerd/containerdtest"
	"github.com/kfp-box/kfp-box/storage/wheelhouse"
	"github.com/kfp-box/kfp-box/storage/wheelhouse/wheeltest"
)

// hostPython is Debian's interpreter (externally managed, PEP 668), or $KFPBOX_TEST_PYTHON.
func hostPython(t *testing.T) string {
	t.Helper()
	p := os.Getenv("KFPBOX_TEST_PYTHON")
	if p == "" {
		p = "/usr/bin/python3"
	}
	if err := exec.Command(p, "-c", "import venv, ensurepip, yaml, google.protobuf").Run(); err != nil {
		msg := fmt.Sprintf("%s with venv and kfp's Debian dependencies is needed (scripts/ensure-deps.sh installs them): %v", p, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// sitePackagesDigest fingerprints every file (path, size, mtime) under the interpreter's
// own site directories, to show that tasks never install into it.
func sitePackagesDigest(t *testing.T, python string) (string, int) {
	t.Helper()
	out, err := exec.Command(python, "-I", "-c", "import site, sysconfig, json; print(json.dumps(sorted(set(site.getsitepackages() + [sysconfig.get_path('purelib'), sysconfig.get_path('platlib')]))))").Output()
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	if err := json.Unmarshal(out, &dirs); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n := 0
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if fi, err := e.Info(); err == nil {
				fmt.Fprintf(h, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
				n++
			}
			return nil
		})
	}
	return fmt.Sprintf("%x", h.Sum(nil)), n
}

func sharedFixture(t *testing.T, rel string) string {
	t.Helper()
	d := os.Getenv("KFPBOX_FIXTURES")
	if d == "" {
		d = filepath.Join(projectTestdata, "..", "..", "shared", "fixtures", "kfp-ir")
	}
	p := filepath.Join(d, "valid", rel)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("KFP fixtures not found (set KFPBOX_FIXTURES): %v", err)
	}
	return p
}

// serveUpstream serves a PEP 503 index over the shared KFP SDK wheels on loopback: the
// "internet" index a connected box pulls through.
func serveUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	wheels := wheeltest.SharedWheels(t, filepath.Join(projectTestdata, ".."))
	st, err := wheelhouse.Open(filepath.Join(t.TempDir(), "upstream"), nil)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(wheels, "*.whl"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Import(filepath.Base(f), bytes.NewReader(b), ""); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/pypi/", &wheelhouse.Index{Store: st, Prefix: "/pypi"})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestPythonPullThroughThenOffline: a lightweight Python component on the host runtime,
// with Debian's externally managed python3: the first run fetches kfp through the box from
// an upstream index; the upstream is stopped and the cached environments deleted; a second
// run, whose task must install kfp again, succeeds from the wheelhouse. The interpreter's
// own site-packages are unchanged.
func TestPythonPullThroughThenOffline(t *testing.T) {
	py := hostPython(t)
	up := serveUpstream(t)
	before, nfiles := sitePackagesDigest(t, py)
	b := startBox(t, func(c *appliance.Config) {
		c.Runtime, c.HostPython, c.PypiUpstream, c.CacheEnabled = "host", py, up.URL+"/pypi/simple/", false
	})
	var sys struct {
		Python struct {
			HostPython struct {
				Path              string `json:"path"`
				ExternallyManaged bool   `json:"externally_managed"`
				Problem           string `json:"problem"`
			} `json:"host_python"`
			Upstream string `json:"pypi_upstream"`
		} `json:"python"`
	}
	b.do("GET", "/system", nil, "", &sys)
	if sys.Python.HostPython.Path == "" || sys.Python.HostPython.Problem != "" || sys.Python.Upstream == "" {
		t.Fatalf("/system python = %+v", sys.Python)
	}
	if !sys.Python.HostPython.ExternallyManaged {
		t.Logf("%s is not externally managed (PEP 668); the test still checks its site-packages", py)
	}
	pid := b.upload(sharedFixture(t, "critical/add_numbers.yaml"), "add-numbers")
	r := b.runPipeline(pid, map[string]any{"a": 1, "b": 2})
	if r.State != "SUCCEEDED" {
		t.Fatalf("first run (online): %s: %s", r.State, taskErrors(r))
	}
	var ls struct {
		Wheels []wheelhouse.File `json:"wheels"`
	}
	b.do("GET", "/wheels", nil, "", &ls)
	if len(ls.Wheels) != 1 || ls.Wheels[0].Name != "kfp-2.14.6-py3-none-any.whl" {
		t.Fatalf("after the first run the wheelhouse holds %+v, want the kfp 2.14.6 fetched from upstream", ls.Wheels)
	}
	up.Close()
	if err := os.RemoveAll(filepath.Join(b.data, "pyenv")); err != nil {
		t.Fatal(err)
	}
	r = b.runPipeline(pid, map[string]any{"a": 3, "b": 4})
	if r.State != "SUCCEEDED" {
		t.Fatalf("second run (upstream stopped): %s: %s", r.State, taskErrors(r))
	}
	if _, err := os.Stat(filepath.Join(b.data, "pyenv")); err != nil {
		t.Fatalf("the second run did not build its environment again: %v", err)
	}
	after, n2 := sitePackagesDigest(t, py)
	if after != before || n2 != nfiles {
		t.Errorf("%s's site-packages changed (%d files before, %d after)", py, nfiles, n2)
	}
}

// runCLI runs the kfp-box CLI in-process and returns its exit code and output.
func runCLI(t *testing.T, server string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	root := cli.NewRoot(&out, &errb)
	flags := []string{"--server", "http://" + server}
	if f, ok := tokenFiles.Load(server); ok {
		flags = append(flags, "--token-file", f.(string))
	}
	root.SetArgs(append(flags, args...))
	err := root.Execute()
	code := 0
	if err != nil {
		errb.WriteString(err.Error())
		code = 1
		var ee *cli.ExitError
		if e, ok := err.(*cli.ExitError); ok {
			ee = e
			code = ee.Code
		}
	}
	return code, out.String(), errb.String()
}

// TestPythonMissingPinOffline: wheels imported with the CLI; a component pinning a kfp the
// box does not have is announced at submission and fails with one line naming the package,
// the version and the fix.
func TestPythonMissingPinOffline(t *testing.T) {
	py := hostPython(t)
	wheels := wheeltest.SharedWheels(t, filepath.Join(projectTestdata, ".."))
	b := startBox(t, func(c *appliance.Config) { c.Runtime, c.HostPython, c.CacheEnabled = "host", py, false })
	addr := b.a.Addr()
	if code, out, errs := runCLI(t, addr, "wheels", "import", wheels); code != 0 || !strings.Contains(out, "imported kfp-2.14.6-py3-none-any.whl") {
		t.Fatalf("wheels import: %d %s %s", code, out, errs)
	}
	code, out, _ := runCLI(t, addr, "wheels", "ls")
	if code != 0 || !strings.Contains(out, "2.14.6") || !strings.Contains(out, "kfp-pipeline-spec") {
		t.Fatalf("wheels ls: %d %s", code, out)
	}
	if code, out, _ := runCLI(t, addr, "wheels", "rm", "kfp==2.1.3"); code != 0 || strings.TrimSpace(out) != "removed kfp-2.1.3-py3-none-any.whl" {
		t.Errorf("wheels rm: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, addr, "wheels", "rm", "kfp==2.1.3"); code != 2 {
		t.Errorf("removing it again: exit %d %s, want 2", code, errs)
	}
	if code, _, errs := runCLI(t, addr, "wheels", "import", filepath.Join(projectTestdata, "pipelines", "cache.yaml")); code != 2 || !strings.Contains(errs, ".whl") {
		t.Errorf("importing a non-wheel: exit %d %s, want 2 naming .whl", code, errs)
	}

	src, err := os.ReadFile(sharedFixture(t, "critical/add_numbers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "pinned.yaml")
	if err := os.WriteFile(file, bytes.ReplaceAll(src, []byte("kfp==2.14.6"), []byte("kfp==9.9.9")), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, addr, "run", "submit", file, "-p", "a=1", "-p", "b=2", "--watch", "--interval", "200ms")
	if code != 1 {
		t.Fatalf("run submit of a missing pin: exit %d, want 1\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"warning: task \"add-numbers\" will fail", "kfp (version 9.9.9)", "kfp-box wheels import kfp-9.9.9-*.whl"} {
		if !strings.Contains(errs, want) {
			t.Errorf("submission output lacks %q:\n%s", want, errs)
		}
	}
	var runs struct {
		Runs []run `json:"runs"`
	}
	b.do("GET", "/runs", nil, "", &runs)
	var msgs []string
	for _, r := range runs.Runs {
		var full run
		b.do("GET", "/runs/"+r.RunID, nil, "", &full)
		for _, td := range full.RunDetails.TaskDetails {
			if td.Error != nil {
				msgs = append(msgs, td.Error.Message)
			}
		}
	}
	sort.Strings(msgs)
	found := false
	for _, m := range msgs {
		if strings.Contains(m, "kfp (version 9.9.9) is not in the box's wheelhouse") && strings.Contains(m, "kfp-box wheels import") && !strings.Contains(m, "\n") {
			found = true
		}
	}
	if !found {
		t.Errorf("no task failed with the one-line fix; task errors: %q", msgs)
	}
}

// containerdPythonFixtures are the representative lightweight Python fixtures that run in
// containers (the test Python image under the python:3.11 name).
var containerdPythonFixtures = []string{
	"critical/add_numbers.yaml",
	"critical/flip_coin.yaml",
	"critical/mixed_parameters.yaml",
	"critical/pythonic_artifacts_test_pipeline.yaml",
	"critical/parallel_for_after_dependency.yaml",
	"critical/component_with_optional_inputs.yaml",
	"essential/concat_message.yaml",
	"essential/lightweight_python_functions_with_outputs.yaml",
	"essential/pipeline_with_condition.yaml",
	"essential/dict_input.yaml",
	"essential/pipeline_with_metrics_outputs.yaml",
	"essential/pipeline_with_nested_conditions.yaml",
}

// fillParams gives required root inputs without defaults a value by type, as KFP's e2e
// suite does.
func fillParams(t *testing.T, file string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := specParse(data)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	if p.Spec.Root.InputDefinitions == nil {
		return out
	}
	for name, d := range p.Spec.Root.InputDefinitions.Parameters {
		if d.HasDefault() || d.IsOptional {
			continue
		}
		switch d.ParameterType {
		case "NUMBER_INTEGER":
			out[name] = 42
		case "NUMBER_DOUBLE":
			out[name] = 3.5
		case "BOOLEAN":
			out[name] = true
		case "LIST":
			out[name] = []any{"abcdefghijklmnopqrst"}
		case "STRUCT":
			out[name] = map[string]any{"A": "abcdefghij", "B": "klmnopqrst"}
		default:
			out[name] = "abcdefghijklmnopqrst"
		}
	}
	return out
}

// TestPythonFixturesContainerd runs representative lightweight Python fixtures in
// containers, offline: python:3.11 is the test Python image (no kfp in it), and every task
// pip-installs kfp from the box's own index, reached on loopback through the host network.
func TestPythonFixturesContainerd(t *testing.T) {
	if ctd.skip != "" {
		t.Skip(ctd.skip)
	}
	rootfs, why := containerdtest.PythonRootfs()
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	wheels := wheeltest.SharedWheels(t, filepath.Join(projectTestdata, ".."))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, _, err := containerd.Connect(ctx, containerd.ConnectOptions{Address: ctd.address})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := containerdtest.ImportPythonImage(namespaces.WithNamespace(ctx, containerd.DefaultNamespace), c, rootfs, containerdtest.PythonImageRef, "python:3.11"); err != nil {
		t.Fatalf("import the test Python image: %v", err)
	}
	b := startBox(t, func(cfg *appliance.Config) {
		useContainerd(cfg, ctd.address)
		cfg.MaxParallelTasks = 4
	})
	if code, out, errs := runCLI(t, b.a.Addr(), "wheels", "import", wheels); code != 0 {
		t.Fatalf("wheels import: %d %s %s", code, out, errs)
	}
	ids := map[string]string{}
	for _, rel := range containerdPythonFixtures {
		file := sharedFixture(t, rel)
		data, _ := os.ReadFile(file)
		body, _ := json.Marshal(map[string]any{
			"display_name":   rel,
			"pipeline_spec":  json.RawMessage(mustJSON(t, data)),
			"runtime_config": map[string]any{"parameters": fillParams(t, file)},
		})
		var r run
		if code := b.do("POST", "/runs", bytes.NewReader(body), "application/json", &r); code != 200 {
			t.Fatalf("%s: create run: %d", rel, code)
		}
		ids[rel] = r.RunID
	}
	for _, rel := range containerdPythonFixtures {
		t.Run(rel, func(t *testing.T) {
			deadline := time.Now().Add(10 * time.Minute)
			for {
				var r run
				b.do("GET", "/runs/"+ids[rel], nil, "", &r)
				switch r.State {
				case "SUCCEEDED":
					return
				case "FAILED", "CANCELED":
					t.Fatalf("ended %s: %+v; tasks %+v", r.State, r.Error, r.RunDetails.TaskDetails)
				}
				if time.Now().After(deadline) {
					t.Fatalf("still %s after 10 minutes", r.State)
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}

func specParse(data []byte) (*spec.Pipeline, error) { return spec.Parse(data) }

// mustJSON is a pipeline file's IR as JSON (what kfp.Client sends inline).
func mustJSON(t *testing.T, data []byte) []byte {
	t.Helper()
	p, err := spec.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return p.StoredJSON()
}

// startRegistry runs Debian's docker-registry (the reference OCI registry) on a loopback
// port with its storage in a temporary directory; stop ends it.
func startRegistry(t *testing.T) (addr string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		msg := "docker-registry is not installed (scripts/ensure-deps.sh installs Debian's docker-registry)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfg)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return addr, stop
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBundleAirGapped: on the "connected" side an image is pushed to a real registry
// (Debian's docker-registry) and wheels are served by an upstream index; `kfp-box image
// pull` and `kfp-box bundle create` fetch from them; both are stopped and the image
// removed; `kfp-box bundle import` loads the bundle into a second box with an empty data
// dir, where a lightweight Python pipeline using that image then succeeds offline.
func TestBundleAirGapped(t *testing.T) {
	if ctd.skip != "" {
		t.Skip(ctd.skip)
	}
	rootfs, why := containerdtest.PythonRootfs()
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	regAddr, stopRegistry := startRegistry(t)
	up := serveUpstream(t)
	ref := regAddr + "/kfp-box-test/python:3-bookworm"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, _, err := containerd.Connect(ctx, containerd.ConnectOptions{Address: ctd.address})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nctx := namespaces.WithNamespace(ctx, containerd.DefaultNamespace)
	if err := containerdtest.ImportPythonImage(nctx, c, rootfs, ref); err != nil {
		t.Fatal(err)
	}
	img, err := c.GetImage(nctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Push(nctx, ref, img.Target()); err != nil {
		t.Fatalf("push to docker-registry: %v", err)
	}
	remove := func() {
		t.Helper()
		if err := containerd.RemoveImage(nctx, c, ref); err != nil {
			t.Fatalf("remove %s: %v", ref, err)
		}
	}
	remove()
	ctdFlags := []string{"--containerd-address", ctd.address, "--data-dir", t.TempDir()}
	if code, out, errs := runCLI(t, "127.0.0.1:1", append([]string{"image", "pull", "--local", ref}, ctdFlags...)...); code != 0 || !strings.Contains(out, "pulled "+ref) {
		t.Fatalf("image pull from docker-registry: %d %s %s", code, out, errs)
	}
	remove()
	bundle := filepath.Join(t.TempDir(), "lab.bundle")
	args := append([]string{"bundle", "create", "-o", bundle, "--image", ref, "--pip", "kfp==2.14.6", "--index-url", up.URL + "/pypi/simple/"}, ctdFlags...)
	if code, out, errs := runCLI(t, "127.0.0.1:1", args...); code != 0 || !strings.Contains(out, "1 image(s), 1 wheel(s)") {
		t.Fatalf("bundle create: %d %s %s", code, out, errs)
	}
	stopRegistry()
	up.Close()
	remove()

	b := startBox(t, func(cfg *appliance.Config) {
		useContainerd(cfg, ctd.address)
	})
	code, out, errs := runCLI(t, b.a.Addr(), append([]string{"bundle", "import", bundle}, ctdFlags...)...)
	if code != 0 || !strings.Contains(out, "imported image "+ref) || !strings.Contains(out, "imported wheel kfp-2.14.6-py3-none-any.whl") {
		t.Fatalf("bundle import: %d %s %s", code, out, errs)
	}
	src, err := os.ReadFile(sharedFixture(t, "critical/add_numbers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "add.yaml")
	if err := os.WriteFile(file, bytes.ReplaceAll(src, []byte("image: python:3.11"), []byte("image: "+ref)), 0o644); err != nil {
		t.Fatal(err)
	}
	pid := b.upload(file, "bundled")
	r := b.runPipeline(pid, map[string]any{"a": 2, "b": 3})
	if r.State != "SUCCEEDED" {
		t.Fatalf("run on the offline box: %s %+v", r.State, r.RunDetails.TaskDetails)
	}
	if got := fmt.Sprint(r.task(t, "add-numbers").OutputParameters["Output"]); got != "5" {
		t.Errorf("add-numbers Output = %s, want 5", got)
	}
}

// taskErrors lists a run's task errors, for messages.
func taskErrors(r run) string {
	var out []string
	for _, td := range r.RunDetails.TaskDetails {
		if td.Error != nil {
			out = append(out, td.DisplayName+": "+td.Error.Message)
		}
	}
	return strings.Join(out, "; ")
}
