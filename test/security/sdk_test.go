package security

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// sdkProbe runs the real kfp SDK and CLI against a box, each way a user connects, and prints
// what each got: a count of experiments, or the HTTP status of the refusal.
const sdkProbe = `
import json, os, subprocess, sys, warnings
warnings.simplefilter("ignore")
import kfp
from kfp.client import ServiceAccountTokenVolumeCredentials
from kfp_server_api.exceptions import ApiException

host, tokfile = os.environ["BOX"], os.environ["TOKFILE"]
token = open(tokfile).read().strip()
out = {}

def probe(name, make):
    try:
        c = make()
        out[name] = c.list_experiments().total_size
    except ApiException as e:
        out[name] = "HTTP %d %s" % (e.status, json.loads(e.body).get("code"))

probe("no_token", lambda: kfp.Client(host=host))
probe("existing_token", lambda: kfp.Client(host=host, existing_token=token))
os.environ["KF_PIPELINES_SA_TOKEN_PATH"] = tokfile
probe("sa_token_path", lambda: kfp.Client(host=host, credentials=ServiceAccountTokenVolumeCredentials()))
del os.environ["KF_PIPELINES_SA_TOKEN_PATH"]
probe("kubeconfig", lambda: kfp.Client())

# A run from a package with the token, as a user submits one.
c = kfp.Client(host=host, existing_token=token)
r = c.create_run_from_pipeline_package(os.environ["PIPELINE"], arguments={}, run_name="sdk-auth")
out["run_created"] = bool(r.run_id)

kfp_cli = os.path.join(os.path.dirname(sys.executable), "kfp")
cli = subprocess.run([kfp_cli, "--endpoint", host, "--existing-token", token, "experiment", "list"], capture_output=True, text=True)
out["kfp_cli"] = cli.returncode
out["kfp_cli_lists"] = "Default" in cli.stdout
cli = subprocess.run([kfp_cli, "--endpoint", host, "experiment", "list"], capture_output=True, text=True)
out["kfp_cli_no_token"] = cli.returncode
print(json.dumps(out))
`

// TestRealSDK drives the kfp SDK and CLI (from ../shared/python) against a box that requires
// tokens: without one it gets 401 in KFP's error shape; with existing_token=, with
// KF_PIPELINES_SA_TOKEN_PATH through ServiceAccountTokenVolumeCredentials, and with
// KUBECONFIG set to the box's kubeconfig and no host at all, it works unchanged.
func TestRealSDK(t *testing.T) {
	py := sdkPython(t)
	b := start(t, "")
	dir := t.TempDir()
	pipeline := filepath.Join(dir, "p.yaml")
	os.WriteFile(pipeline, []byte(`pipelineInfo: {name: sdk-auth}
schemaVersion: 2.1.0
sdkVersion: kfp-box-test
components: {comp-a: {executorLabel: exec-a}}
deploymentSpec: {executors: {exec-a: {container: {image: busybox, command: ["true"]}}}}
root: {dag: {tasks: {a: {taskInfo: {name: a}, componentRef: {name: comp-a}}}}}
`), 0o644)
	cmd := exec.Command(py, "-c", sdkProbe)
	cmd.Env = append(os.Environ(), "BOX="+b.url, "TOKFILE="+filepath.Join(b.data, "auth", "admin-token"),
		"KUBECONFIG="+filepath.Join(b.data, "auth", "kubeconfig"), "PIPELINE="+pipeline, "HOME="+dir)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("the SDK probe failed: %v\n%s\n%s", err, out, stderr)
	}
	var got map[string]any
	if err := json.Unmarshal(out[strings.LastIndexByte(strings.TrimSpace(string(out)), '\n')+1:], &got); err != nil {
		t.Fatalf("probe output %q: %v", out, err)
	}
	want := map[string]any{
		"no_token": "HTTP 401 16", "existing_token": float64(1), "sa_token_path": float64(1), "kubeconfig": float64(1),
		"run_created": true, "kfp_cli": float64(0), "kfp_cli_lists": true, "kfp_cli_no_token": float64(1),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// sdkPython makes (once per test binary) a virtual environment with the real kfp SDK from the
// shared wheels over Debian's python3 and its packages, and returns its interpreter.
func sdkPython(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	wheels := os.Getenv("KFPBOX_WHEELS")
	if wheels == "" {
		wheels = filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "python", "wheels")
	}
	if m, _ := filepath.Glob(filepath.Join(wheels, "kfp-2.15.2-*.whl")); len(m) == 0 {
		msg := "the kfp SDK wheels are not at " + wheels + " (set KFPBOX_WHEELS)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Fatal("Debian's python3 is missing: make test installs it (scripts/ensure-deps.sh)")
	}
	venv := filepath.Join(os.TempDir(), "kfp-box-security-sdk")
	py := filepath.Join(venv, "bin", "python3")
	if _, err := os.Stat(filepath.Join(venv, "ok")); err == nil {
		return py
	}
	os.RemoveAll(venv)
	for _, args := range [][]string{
		{"/usr/bin/python3", "-m", "venv", "--system-site-packages", venv},
		{py, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", wheels, "kfp==2.15.2", "kfp-pipeline-spec", "kfp-server-api", "docstring-parser", "googleapis-common-protos"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s (make test installs Debian's python3-venv and the packages ../shared/python/README.md lists)", args, err, out)
		}
	}
	os.WriteFile(filepath.Join(venv, "ok"), nil, 0o644)
	return py
}
