package api

import (
	"net/http"
	"strings"
	"testing"
)

// TestV1beta1ReadPaths: the v1beta1 routes KFP 2.x still serves for old clients.
func TestV1beta1ReadPaths(t *testing.T) {
	a := newTestAPI(t)
	v1 := strings.TrimSuffix(a.url, "v2beta1") + "v1beta1"
	get := func(path string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("GET", v1+path, nil)
		return a.send(req)
	}
	if st, h := get("/healthz"); st != 200 || h["multi_user"] != false {
		t.Fatalf("healthz = %d %v", st, h)
	}
	st, exps := get("/experiments")
	if st != 200 || exps["total_size"] != float64(1) {
		t.Fatalf("experiments = %d %v", st, exps)
	}
	def := obj(t, list(t, exps["experiments"])[0])
	if def["name"] != "Default" || def["storage_state"] != "STORAGESTATE_AVAILABLE" || def["id"] == nil {
		t.Fatalf("default experiment = %v", def)
	}
	req, _ := http.NewRequest("POST", v1+"/experiments", strings.NewReader(`{"name":"old","description":"v1"}`))
	req.Header.Set("Content-Type", "application/json")
	st, exp := a.send(req)
	if st != 200 || exp["name"] != "old" {
		t.Fatalf("create experiment = %d %v", st, exp)
	}
	if st, e := get("/experiments/" + exp["id"].(string)); st != 200 || e["description"] != "v1" {
		t.Fatalf("get experiment = %d %v", st, e)
	}

	_, p := a.upload("/pipelines/upload?name=v1pipe", "params.yaml", readTestdata(t, "params.yaml"))
	pid := p["pipeline_id"].(string)
	st, pl := get("/pipelines/" + pid)
	if st != 200 || pl["name"] != "v1pipe" || obj(t, pl["default_version"])["id"] == nil {
		t.Fatalf("pipeline = %d %v", st, pl)
	}
	vid := obj(t, pl["default_version"])["id"].(string)
	if st, vs := get("/pipeline_versions?resource_key.type=PIPELINE&resource_key.id=" + pid); st != 200 || vs["total_size"] != float64(1) {
		t.Fatalf("versions = %d %v", st, vs)
	}
	st, tmpl := get("/pipeline_versions/" + vid + "/templates")
	if st != 200 || !strings.Contains(tmpl["template"].(string), "name: say-things") {
		t.Fatalf("template = %d %v", st, tmpl)
	}

	st, run := a.do("POST", "/runs", map[string]any{"display_name": "v1 run", "experiment_id": exp["id"],
		"pipeline_version_reference": map[string]any{"pipeline_id": pid, "pipeline_version_id": vid},
		"runtime_config":             map[string]any{"parameters": map[string]any{"msg": "a", "times": 2}}})
	if st != 200 {
		t.Fatalf("create run = %d %v", st, run)
	}
	st, runs := get("/runs?resource_reference_key.type=EXPERIMENT&resource_reference_key.id=" + exp["id"].(string))
	if st != 200 || runs["total_size"] != float64(1) {
		t.Fatalf("runs = %d %v", st, runs)
	}
	r := obj(t, list(t, runs["runs"])[0])
	if r["name"] != "v1 run" || r["status"] != "Pending" || r["storage_state"] != "STORAGESTATE_AVAILABLE" {
		t.Fatalf("v1 run = %v", r)
	}
	st, detail := get("/runs/" + run["run_id"].(string))
	if st != 200 || obj(t, detail["run"])["id"] != run["run_id"] || !strings.Contains(obj(t, detail["pipeline_runtime"])["pipeline_manifest"].(string), "say-things") {
		t.Fatalf("run detail = %d %v", st, detail)
	}
	st, body := get("/runs/nope")
	assertRPCError(t, st, body, 404, codeNotFound)
}
