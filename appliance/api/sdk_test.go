package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The tests in this file replay the requests the kfp SDK (kfp.Client) sends, as listed in
// shared/docs/kfp-compat.md §1, and check the answers field by field.

const sdkFilterX = `{"predicates":[{"operation":1,"key":"display_name","stringValue":"x"}]}`

func TestSDKHealthz(t *testing.T) {
	a := newTestAPI(t)
	st, body := a.do("GET", "/healthz", nil)
	if st != 200 || body["multi_user"] != false {
		t.Fatalf("healthz = %d %v", st, body)
	}
}

func TestSDKExperiments(t *testing.T) {
	a := newTestAPI(t)
	// list_experiments() as sent by the SDK: empty paging parameters, page_size 10.
	st, body := a.do("GET", "/experiments?page_token=&page_size=10&sort_by=&namespace=", nil)
	if st != 200 {
		t.Fatalf("list = %d %v", st, body)
	}
	assertKeys(t, "list", body, "experiments", "total_size")
	if body["total_size"] != float64(1) {
		t.Fatalf("total_size = %v", body["total_size"])
	}
	def := obj(t, list(t, body["experiments"])[0])
	assertKeys(t, "experiment", def, "experiment_id", "display_name", "description", "created_at", "storage_state", "last_run_created_at")
	if def["display_name"] != "Default" || def["storage_state"] != "AVAILABLE" || def["last_run_created_at"] != "1970-01-01T00:00:00Z" {
		t.Fatalf("default experiment = %v", def)
	}
	if _, err := time.Parse(time.RFC3339, def["created_at"].(string)); err != nil {
		t.Fatalf("created_at: %v", err)
	}

	// create_experiment("x"): a name lookup, then POST.
	st, body = a.do("GET", "/experiments?filter="+url.QueryEscape(sdkFilterX)+"&namespace=", nil)
	if st != 200 || len(body) != 0 {
		t.Fatalf("lookup of a missing name = %d %v, want 200 {}", st, body)
	}
	st, exp := a.do("POST", "/experiments", map[string]any{"display_name": "x", "description": "mine"})
	if st != 200 {
		t.Fatalf("create = %d %v", st, exp)
	}
	assertKeys(t, "created", exp, "experiment_id", "display_name", "description", "created_at", "storage_state", "last_run_created_at")
	id := exp["experiment_id"].(string)
	st, body = a.do("GET", "/experiments?filter="+url.QueryEscape(sdkFilterX)+"&namespace=", nil)
	if st != 200 || body["total_size"] != float64(1) || obj(t, list(t, body["experiments"])[0])["experiment_id"] != id {
		t.Fatalf("lookup = %d %v", st, body)
	}
	st, body = a.do("POST", "/experiments", map[string]any{"display_name": "x"})
	assertRPCError(t, st, body, 409, codeAlreadyExists)

	// get, archive, unarchive, delete.
	if st, body = a.do("GET", "/experiments/"+id, nil); st != 200 || body["display_name"] != "x" {
		t.Fatalf("get = %d %v", st, body)
	}
	for _, act := range []string{"archive", "unarchive"} {
		if st, body = a.do("POST", "/experiments/"+id+":"+act, nil); st != 200 || len(body) != 0 {
			t.Fatalf("%s = %d %v", act, st, body)
		}
	}
	st, body = a.do("DELETE", "/experiments/"+def["experiment_id"].(string), nil)
	assertRPCError(t, st, body, 400, codeFailedPrecondition)
	if st, body = a.do("DELETE", "/experiments/"+id, nil); st != 200 || len(body) != 0 {
		t.Fatalf("delete = %d %v", st, body)
	}
	st, body = a.do("GET", "/experiments/"+id, nil)
	assertRPCError(t, st, body, 404, codeNotFound)
}

func TestSDKUpload(t *testing.T) {
	a := newTestAPI(t)
	yamlSpec := readTestdata(t, "params.yaml")
	// upload_pipeline(path, name, description): name, description, namespace as query.
	st, p := a.upload("/pipelines/upload?name=say&description=says+things&namespace=", "params.yaml", yamlSpec)
	if st != 200 {
		t.Fatalf("upload = %d %v", st, p)
	}
	assertKeys(t, "pipeline", p, "pipeline_id", "name", "display_name", "description", "created_at")
	if p["name"] != "say" || p["display_name"] != "say" || p["description"] != "says things" {
		t.Fatalf("pipeline = %v", p)
	}
	pid := p["pipeline_id"].(string)

	// get_pipeline_id(name): a filter on display_name.
	f := `{"predicates":[{"operation":1,"key":"display_name","stringValue":"say"}]}`
	st, body := a.do("GET", "/pipelines?filter="+url.QueryEscape(f), nil)
	if st != 200 || body["total_size"] != float64(1) || obj(t, list(t, body["pipelines"])[0])["pipeline_id"] != pid {
		t.Fatalf("lookup = %d %v", st, body)
	}

	// The upload made a first version with the spec.
	st, body = a.do("GET", "/pipelines/"+pid+"/versions?page_token=&page_size=10&sort_by=", nil)
	if st != 200 || body["total_size"] != float64(1) {
		t.Fatalf("versions = %d %v", st, body)
	}
	v1 := obj(t, list(t, body["pipeline_versions"])[0])
	assertKeys(t, "version", v1, "pipeline_id", "pipeline_version_id", "display_name", "name", "description", "created_at", "pipeline_spec")
	if obj(t, obj(t, v1["pipeline_spec"])["pipelineInfo"])["name"] != "say-things" {
		t.Fatalf("version spec = %v", v1["pipeline_spec"])
	}

	// upload_pipeline_version(path, version_name, pipeline_id): the query key is pipelineid.
	st, v2 := a.upload("/pipelines/upload_version?name=v2&pipelineid="+pid+"&description=", "with_platform.yaml", readTestdata(t, "with_platform.yaml"))
	if st != 200 || v2["pipeline_id"] != pid || v2["name"] != "v2" {
		t.Fatalf("upload_version = %d %v", st, v2)
	}
	wrapped := obj(t, v2["pipeline_spec"])
	assertKeys(t, "spec with platform", wrapped, "pipeline_spec", "platform_spec")
	vid := v2["pipeline_version_id"].(string)
	if st, body = a.do("GET", "/pipelines/"+pid+"/versions/"+vid, nil); st != 200 || body["name"] != "v2" {
		t.Fatalf("get version = %d %v", st, body)
	}

	// Upload errors use the plain {error_message, error_details} shape.
	for _, tc := range []struct {
		name, path, file string
		content          []byte
		status           int
	}{
		{"duplicate name", "/pipelines/upload?name=say", "p.yaml", yamlSpec, 409},
		{"not a pipeline", "/pipelines/upload?name=bad", "p.yaml", []byte("a: 1\n"), 400},
		{"bad yaml", "/pipelines/upload?name=bad", "p.yaml", []byte("{{{"), 400},
		{"empty", "/pipelines/upload?name=bad", "p.yaml", nil, 400},
		{"no pipelineid", "/pipelines/upload_version?name=v3", "p.yaml", yamlSpec, 400},
		{"unknown pipeline", "/pipelines/upload_version?name=v3&pipelineid=nope", "p.yaml", yamlSpec, 404},
		{"duplicate version", "/pipelines/upload_version?name=v2&pipelineid=" + pid, "p.yaml", yamlSpec, 409},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := a.upload(tc.path, tc.file, tc.content)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %v", st, tc.status, body)
			}
			assertKeys(t, "upload error", body, "error_message", "error_details")
		})
	}
	// No file at all.
	st, body = a.do("POST", "/pipelines/upload?name=z", "")
	if st != 400 || body["error_message"] == nil {
		t.Fatalf("upload without file = %d %v", st, body)
	}

	// Delete: versions first (the SDK never sends cascade), then the pipeline.
	st, body = a.do("DELETE", "/pipelines/"+pid, nil)
	assertRPCError(t, st, body, 400, codeFailedPrecondition)
	for _, v := range []string{v1["pipeline_version_id"].(string), vid} {
		if st, body = a.do("DELETE", "/pipelines/"+pid+"/versions/"+v, nil); st != 200 {
			t.Fatalf("delete version = %d %v", st, body)
		}
	}
	if st, body = a.do("DELETE", "/pipelines/"+pid, nil); st != 200 || len(body) != 0 {
		t.Fatalf("delete = %d %v", st, body)
	}
}

func TestSDKRunInlineCamelCase(t *testing.T) {
	a := newTestAPI(t)
	ps, _ := specJSON(t, "params.yaml")
	// run_pipeline from a package: snake_case run fields, camelCase IR inside pipeline_spec.
	st, run := a.do("POST", "/runs", map[string]any{
		"display_name":   "first",
		"pipeline_spec":  ps,
		"runtime_config": map[string]any{"parameters": map[string]any{"msg": "hi"}},
	})
	if st != 200 {
		t.Fatalf("create = %d %v", st, run)
	}
	assertKeys(t, "run", run, "experiment_id", "run_id", "display_name", "storage_state", "pipeline_spec",
		"runtime_config", "service_account", "created_at", "scheduled_at", "finished_at", "state", "state_history")
	if run["service_account"] != "pipeline-runner" {
		t.Fatalf("service_account = %v, want KFP's default pipeline-runner", run["service_account"])
	}
	if run["state"] != "PENDING" || run["storage_state"] != "AVAILABLE" || run["scheduled_at"] != run["created_at"] || run["finished_at"] != "1970-01-01T00:00:00Z" {
		t.Fatalf("run = %v", run)
	}
	params := obj(t, obj(t, run["runtime_config"])["parameters"])
	if params["msg"] != "hi" || len(params) != 1 {
		t.Fatalf("parameters = %v, want those given (as KFP reports them)", params)
	}
	h := obj(t, list(t, run["state_history"])[0])
	assertKeys(t, "state_history[0]", h, "update_time", "state")
	id := run["run_id"].(string)
	if sub, _, _ := a.engine.calls(); len(sub) != 1 || sub[0] != id {
		t.Fatalf("engine submissions = %v", sub)
	}
	// It went to the Default experiment, whose last_run_created_at moved.
	def, _ := a.meta.DefaultExperimentID(t.Context())
	_, exp := a.do("GET", "/experiments/"+def, nil)
	if run["experiment_id"] != def || exp["last_run_created_at"] != run["created_at"] {
		t.Fatalf("experiment %v after run %v", exp, run)
	}
	// GET returns the inline spec.
	st, got := a.do("GET", "/runs/"+id, nil)
	if st != 200 || obj(t, obj(t, got["pipeline_spec"])["pipelineInfo"])["name"] != "say-things" {
		t.Fatalf("get = %d %v", st, got)
	}

	// The same request with camelCase field names everywhere.
	st, run2 := a.do("POST", "/runs", map[string]any{
		"displayName":   "second",
		"experimentId":  def,
		"pipelineSpec":  ps,
		"runtimeConfig": map[string]any{"parameters": map[string]any{"msg": "yo", "times": 2}, "pipelineRoot": "minio://mlpipeline/v2/x"},
	})
	if st != 200 || obj(t, run2["runtime_config"])["pipeline_root"] != "minio://mlpipeline/v2/x" {
		t.Fatalf("camelCase create = %d %v", st, run2)
	}
}

func TestSDKRunWithPlatformSpec(t *testing.T) {
	a := newTestAPI(t)
	ps, plat := specJSON(t, "with_platform.yaml")
	st, run := a.do("POST", "/runs", map[string]any{
		"display_name":   "plat",
		"pipeline_spec":  map[string]any{"pipeline_spec": ps, "platform_spec": plat},
		"runtime_config": map[string]any{"parameters": map[string]any{"msg": "hi"}},
	})
	if st != 200 {
		t.Fatalf("create = %d %v", st, run)
	}
	got := obj(t, run["pipeline_spec"])
	assertKeys(t, "stored spec", got, "pipeline_spec", "platform_spec")
	if _, ok := obj(t, got["platform_spec"])["platforms"]; !ok {
		t.Fatalf("platform spec lost: %v", got)
	}
	frozen, err := a.meta.GetRunSpec(t.Context(), run["run_id"].(string))
	if err != nil || !strings.Contains(string(frozen), "nodeSelector") {
		t.Fatalf("frozen spec = %s %v", frozen, err)
	}
}

func TestSDKRunFromVersion(t *testing.T) {
	a := newTestAPI(t)
	_, p := a.upload("/pipelines/upload?name=say", "params.yaml", readTestdata(t, "params.yaml"))
	pid := p["pipeline_id"].(string)
	_, vs := a.do("GET", "/pipelines/"+pid+"/versions", nil)
	vid := obj(t, list(t, vs["pipeline_versions"])[0])["pipeline_version_id"].(string)
	_, exp := a.do("POST", "/experiments", map[string]any{"display_name": "e"})
	eid := exp["experiment_id"].(string)

	for _, tc := range []struct {
		name string
		body map[string]any
	}{
		{"reference", map[string]any{"pipeline_version_reference": map[string]any{"pipeline_id": pid, "pipeline_version_id": vid}}},
		{"pipeline only", map[string]any{"pipeline_version_reference": map[string]any{"pipeline_id": pid}}},
		{"deprecated version id", map[string]any{"pipeline_version_id": vid}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.body["display_name"] = tc.name
			tc.body["experiment_id"] = eid
			tc.body["runtime_config"] = map[string]any{"parameters": map[string]any{"msg": "m"}}
			st, run := a.do("POST", "/runs", tc.body)
			if st != 200 {
				t.Fatalf("create = %d %v", st, run)
			}
			if _, has := run["pipeline_spec"]; has {
				t.Fatal("a version-based run must not return pipeline_spec")
			}
			ref := obj(t, run["pipeline_version_reference"])
			if ref["pipeline_id"] != pid || ref["pipeline_version_id"] != vid || run["experiment_id"] != eid {
				t.Fatalf("run = %v", run)
			}
		})
	}
	// list_runs(experiment_id=...) with paging.
	var seen []string
	tok := ""
	for {
		st, body := a.do("GET", "/runs?experiment_id="+eid+"&page_size=2&sort_by=created_at%20desc&page_token="+url.QueryEscape(tok), nil)
		if st != 200 || body["total_size"] != float64(3) {
			t.Fatalf("list = %d %v", st, body)
		}
		for _, r := range list(t, body["runs"]) {
			seen = append(seen, obj(t, r)["run_id"].(string))
		}
		next, _ := body["next_page_token"].(string)
		if next == "" {
			break
		}
		tok = next
	}
	if len(seen) != 3 {
		t.Fatalf("paged through %d runs, want 3", len(seen))
	}
}

func TestBadInputGets4xx(t *testing.T) {
	a := newTestAPI(t)
	ps, _ := specJSON(t, "params.yaml")
	okRun := func(mut func(m map[string]any)) map[string]any {
		m := map[string]any{"display_name": "r", "pipeline_spec": ps, "runtime_config": map[string]any{"parameters": map[string]any{"msg": "hi"}}}
		mut(m)
		return m
	}
	big := `{"display_name":"` + strings.Repeat("x", 33<<20) + `"}`
	tests := []struct {
		name         string
		method, path string
		body         any
		status, code int
	}{
		{"malformed JSON", "POST", "/runs", `{"display_name": `, 400, codeInvalidArgument},
		{"not an object", "POST", "/experiments", `[1,2]`, 400, codeInvalidArgument},
		{"unknown field", "POST", "/experiments", `{"display_name":"a","colour":"red"}`, 400, codeInvalidArgument},
		{"wrong type", "POST", "/experiments", `{"display_name":5}`, 400, codeInvalidArgument},
		{"empty experiment name", "POST", "/experiments", `{}`, 400, codeInvalidArgument},
		{"oversized body", "POST", "/experiments", big, 400, codeInvalidArgument},
		{"empty run name", "POST", "/runs", okRun(func(m map[string]any) { delete(m, "display_name") }), 400, codeInvalidArgument},
		{"unknown parameter", "POST", "/runs", okRun(func(m map[string]any) {
			m["runtime_config"] = map[string]any{"parameters": map[string]any{"msg": "a", "nope": 1}}
		}), 400, codeInvalidArgument},
		{"missing parameter", "POST", "/runs", okRun(func(m map[string]any) { m["runtime_config"] = map[string]any{"parameters": map[string]any{}} }), 400, codeInvalidArgument},
		{"parameter kind", "POST", "/runs", okRun(func(m map[string]any) {
			m["runtime_config"] = map[string]any{"parameters": map[string]any{"msg": "a", "times": "three"}}
		}), 400, codeInvalidArgument},
		{"bad schema version", "POST", "/runs", okRun(func(m map[string]any) {
			bad := map[string]any{}
			for k, v := range ps {
				bad[k] = v
			}
			bad["schemaVersion"] = "1.0.0"
			m["pipeline_spec"] = bad
		}), 400, codeInvalidArgument},
		{"spec not an object", "POST", "/runs", okRun(func(m map[string]any) { m["pipeline_spec"] = "yaml?" }), 400, codeInvalidArgument},
		{"no source", "POST", "/runs", okRun(func(m map[string]any) { delete(m, "pipeline_spec") }), 400, codeInvalidArgument},
		{"unknown experiment", "POST", "/runs", okRun(func(m map[string]any) { m["experiment_id"] = "nope" }), 404, codeNotFound},
		{"unknown version", "POST", "/runs", okRun(func(m map[string]any) {
			delete(m, "pipeline_spec")
			m["pipeline_version_reference"] = map[string]any{"pipeline_id": "p", "pipeline_version_id": "v"}
		}), 404, codeNotFound},
		{"both spellings", "POST", "/runs", okRun(func(m map[string]any) { m["displayName"] = "r2" }), 400, codeInvalidArgument},
		{"bad page token", "GET", "/runs?page_token=garbage", nil, 400, codeInvalidArgument},
		{"negative page size", "GET", "/experiments?page_size=-1", nil, 400, codeInvalidArgument},
		{"page size not a number", "GET", "/pipelines?page_size=ten", nil, 400, codeInvalidArgument},
		{"unknown filter key", "GET", "/runs?filter=" + url.QueryEscape(`{"predicates":[{"operation":1,"key":"colour","stringValue":"x"}]}`), nil, 400, codeInvalidArgument},
		{"filter not JSON", "GET", "/experiments?filter=%7B", nil, 400, codeInvalidArgument},
		{"unknown sort key", "GET", "/pipelines?sort_by=colour", nil, 400, codeInvalidArgument},
		{"unknown run", "GET", "/runs/nope", nil, 404, codeNotFound},
		{"unknown run method", "POST", "/runs/nope:frobnicate", nil, 404, codeNotFound},
		{"unknown recurring run", "GET", "/recurringruns/nope", nil, 404, codeNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body := a.do(tc.method, tc.path, tc.body)
			assertRPCError(t, st, body, tc.status, tc.code)
		})
	}
}

func TestRunActions(t *testing.T) {
	a := newTestAPI(t)
	ps, _ := specJSON(t, "params.yaml")
	_, run := a.do("POST", "/runs", map[string]any{"display_name": "r", "pipeline_spec": ps, "runtime_config": map[string]any{"parameters": map[string]any{"msg": "x"}}})
	id := run["run_id"].(string)

	if st, body := a.do("POST", "/runs/"+id+":terminate", nil); st != 200 || len(body) != 0 {
		t.Fatalf("terminate = %d %v", st, body)
	}
	st, body := a.do("POST", "/runs/"+id+":retry", nil)
	assertRPCError(t, st, body, 400, codeFailedPrecondition)
	if _, err := a.meta.UpdateRun(t.Context(), id, func(r *metaRun) error { r.State = "FAILED"; return nil }); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.do("POST", "/runs/"+id+":retry", nil); st != 200 {
		t.Fatalf("retry of a failed run = %d", st)
	}
	st, body = a.do("POST", "/runs/"+id+":terminate", nil)
	assertRPCError(t, st, body, 400, codeFailedPrecondition)
	if _, term, retry := a.engine.calls(); len(term) != 1 || len(retry) != 1 {
		t.Fatalf("engine calls: terminate %v retry %v", term, retry)
	}

	if st, _ := a.do("POST", "/runs/"+id+":archive", nil); st != 200 {
		t.Fatal("archive")
	}
	f := url.QueryEscape(`{"predicates":[{"operation":"EQUALS","key":"storage_state","string_value":"ARCHIVED"}]}`)
	if _, body := a.do("GET", "/runs?filter="+f, nil); body["total_size"] != float64(1) {
		t.Fatalf("archived runs = %v", body)
	}
	// v1 spelling of the enum value.
	f = url.QueryEscape(`{"predicates":[{"operation":"EQUALS","key":"storage_state","string_value":"STORAGESTATE_ARCHIVED"}]}`)
	if _, body := a.do("GET", "/runs?filter="+f, nil); body["total_size"] != float64(1) {
		t.Fatalf("archived runs (v1 value) = %v", body)
	}
	if st, _ := a.do("POST", "/runs/"+id+":unarchive", nil); st != 200 {
		t.Fatal("unarchive")
	}
	if st, body := a.do("DELETE", "/runs/"+id, nil); st != 200 || len(body) != 0 {
		t.Fatalf("delete = %d %v", st, body)
	}
	st, body = a.do("GET", "/runs/"+id, nil)
	assertRPCError(t, st, body, 404, codeNotFound)
}

func TestEngineRefusalFailsTheRun(t *testing.T) {
	a := newTestAPI(t)
	a.engine.SubmitFn = func(_ ctxT, _ string) error { return fmt.Errorf("queue full") }
	ps, _ := specJSON(t, "params.yaml")
	st, run := a.do("POST", "/runs", map[string]any{"display_name": "r", "pipeline_spec": ps, "runtime_config": map[string]any{"parameters": map[string]any{"msg": "x"}}})
	if st != 200 || run["state"] != "FAILED" || !strings.Contains(obj(t, run["error"])["message"].(string), "queue full") {
		t.Fatalf("run = %d %v", st, run)
	}
}

func TestSDKRecurringRuns(t *testing.T) {
	a := newTestAPI(t)
	ps, _ := specJSON(t, "params.yaml")
	// create_recurring_run(cron_expression=...): int64 max_concurrency, mode ENABLE.
	st, rr := a.do("POST", "/recurringruns", map[string]any{
		"display_name":    "nightly",
		"pipeline_spec":   ps,
		"runtime_config":  map[string]any{"parameters": map[string]any{"msg": "run [[RunUUID]] at [[ScheduledTime]]"}},
		"max_concurrency": "2",
		"mode":            "ENABLE",
		"no_catchup":      true,
		"trigger":         map[string]any{"cron_schedule": map[string]any{"cron": "0 0 9 ? * 2-6", "start_time": "2026-01-01T00:00:00Z"}},
	})
	if st != 200 {
		t.Fatalf("create = %d %v", st, rr)
	}
	assertKeys(t, "recurring run", rr, "recurring_run_id", "display_name", "pipeline_spec", "runtime_config", "max_concurrency",
		"trigger", "created_at", "updated_at", "status", "mode", "no_catchup", "experiment_id", "service_account")
	if rr["status"] != "ENABLED" || rr["mode"] != "ENABLE" || rr["max_concurrency"] != "2" || rr["service_account"] != "pipeline-runner" {
		t.Fatalf("recurring run = %v", rr)
	}
	cron := obj(t, obj(t, rr["trigger"])["cron_schedule"])
	if cron["cron"] != "0 0 9 ? * 2-6" || cron["start_time"] != "2026-01-01T00:00:00Z" {
		t.Fatalf("trigger = %v", rr["trigger"])
	}
	id := rr["recurring_run_id"].(string)

	// Periodic, camelCase, mode as a number (DISABLE).
	st, rr2 := a.do("POST", "/recurringruns", map[string]any{
		"displayName": "every minute", "pipelineSpec": ps, "mode": 2,
		"runtimeConfig": map[string]any{"parameters": map[string]any{"msg": "x"}},
		// Python's naive datetime.isoformat(): no zone, read as UTC.
		"trigger": map[string]any{"periodicSchedule": map[string]any{"intervalSecond": 60, "startTime": "2026-01-01T00:00:00"}},
	})
	per := obj(t, obj(t, rr2["trigger"])["periodic_schedule"])
	if st != 200 || rr2["status"] != "DISABLED" || per["interval_second"] != "60" || per["start_time"] != "2026-01-01T00:00:00Z" {
		t.Fatalf("periodic = %d %v", st, rr2)
	}

	// list_recurring_runs: the key is recurringRuns.
	st, body := a.do("GET", "/recurringruns?page_token=&page_size=10&sort_by=&namespace=", nil)
	if st != 200 || body["total_size"] != float64(2) || len(list(t, body["recurringRuns"])) != 2 {
		t.Fatalf("list = %d %v", st, body)
	}
	if st, _ := a.do("POST", "/recurringruns/"+id+":disable", nil); st != 200 {
		t.Fatal("disable")
	}
	if _, got := a.do("GET", "/recurringruns/"+id, nil); got["status"] != "DISABLED" {
		t.Fatalf("after disable: %v", got)
	}
	if st, _ := a.do("POST", "/recurringruns/"+id+":enable", nil); st != 200 {
		t.Fatal("enable")
	}
	if st, body := a.do("DELETE", "/recurringruns/"+id+"?propagation_policy=BACKGROUND", nil); st != 200 || len(body) != 0 {
		t.Fatalf("delete = %d %v", st, body)
	}

	base := func() map[string]any {
		return map[string]any{"display_name": "bad", "pipeline_spec": ps,
			"runtime_config": map[string]any{"parameters": map[string]any{"msg": "x"}},
			"trigger":        map[string]any{"cron_schedule": map[string]any{"cron": "*/5 * * * * *"}}}
	}
	for name, mut := range map[string]func(m map[string]any){
		"bad cron": func(m map[string]any) {
			m["trigger"] = map[string]any{"cron_schedule": map[string]any{"cron": "every day"}}
		},
		"bad zone": func(m map[string]any) {
			m["trigger"] = map[string]any{"cron_schedule": map[string]any{"cron": "0 0 9 * * *", "time_zone": "Mars/Olympus"}}
		},
		"zero interval": func(m map[string]any) {
			m["trigger"] = map[string]any{"periodic_schedule": map[string]any{"interval_second": 0}}
		},
		"concurrency 11": func(m map[string]any) { m["max_concurrency"] = 11 },
		"unknown param": func(m map[string]any) {
			m["runtime_config"] = map[string]any{"parameters": map[string]any{"msg": "x", "zzz": 1}}
		},
		"bad mode": func(m map[string]any) { m["mode"] = "SOMETIMES" },
	} {
		t.Run(name, func(t *testing.T) {
			m := base()
			mut(m)
			st, body := a.do("POST", "/recurringruns", m)
			assertRPCError(t, st, body, 400, codeInvalidArgument)
		})
	}
}

func TestUnknownAPIRouteIsJSON404(t *testing.T) {
	a := newTestAPIWith(t, Deps{UI: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"ui":true}`))
	})})
	st, body := a.do("GET", "/nothing/here", nil)
	assertRPCError(t, st, body, 404, codeNotFound)
	req, _ := http.NewRequest("GET", strings.TrimSuffix(a.url, "/apis/v2beta1")+"/experiments/abc", nil)
	if st, body := a.send(req); st != 200 || body["ui"] != true {
		t.Fatalf("UI path = %d %v", st, body)
	}
}
