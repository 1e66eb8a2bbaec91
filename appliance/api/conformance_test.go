package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/kfp-box/kfp-box/internal/testmaterial"
)

// The tests in this file pin behaviours where the box must answer as KFP's API server does
// for KFP's own Go clients and suites: tags, versions addressed by their id alone, the stored
// spec, name lengths, package_url, the recurring-run shapes KFP's Go client sends, defaults
// of runs, filters and the v1beta1 read paths.

func tagFilter(preds ...string) string {
	return "?filter=" + url.QueryEscape(`{"predicates":[`+strings.Join(preds, ",")+`]}`)
}

func tagPred(k, op, v string) string {
	return fmt.Sprintf(`{"key":"tags.%s","operation":"%s","string_value":%q}`, k, op, v)
}

func uploadWithTags(t *testing.T, a *testAPI, path string, tags map[string]string) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(tags)
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return a.upload(path+sep+"tags="+url.QueryEscape(string(b)), "params.yaml", readTestdata(t, "params.yaml"))
}

func TestPipelineAndVersionTags(t *testing.T) {
	a := newTestAPI(t)
	st, p := uploadWithTags(t, a, "/pipelines/upload?name=tagged", map[string]string{"team": "ml-ops", "env": "prod"})
	if st != 200 || !reflect.DeepEqual(p["tags"], map[string]any{"team": "ml-ops", "env": "prod"}) {
		t.Fatalf("upload = %d %v", st, p)
	}
	pid := p["pipeline_id"].(string)
	// The tags of an upload are the pipeline's; its first version has none, as on KFP.
	_, vs := a.do("GET", "/pipelines/"+pid+"/versions", nil)
	first := obj(t, list(t, vs["pipeline_versions"])[0])
	if _, ok := first["tags"]; ok {
		t.Fatalf("first version has tags %v", first["tags"])
	}
	st, v := uploadWithTags(t, a, "/pipelines/upload_version?name=v2&pipelineid="+pid, map[string]string{"env": "staging"})
	if st != 200 || !reflect.DeepEqual(v["tags"], map[string]any{"env": "staging"}) {
		t.Fatalf("upload_version = %d %v", st, v)
	}
	vid := v["pipeline_version_id"].(string)
	if st, _ := uploadWithTags(t, a, "/pipelines/upload?name=other", map[string]string{"team": "data"}); st != 200 {
		t.Fatal("second upload failed")
	}

	// Filters: each tags.<key> predicate is an equality; several are all required.
	count := func(path string) int {
		t.Helper()
		st, body := a.do("GET", path, nil)
		if st != 200 {
			t.Fatalf("GET %s = %d %v", path, st, body)
		}
		n := 0
		for _, k := range []string{"pipelines", "pipeline_versions"} {
			if l, ok := body[k].([]any); ok {
				n = len(l)
			}
		}
		return n
	}
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/pipelines" + tagFilter(tagPred("team", "EQUALS", "ml-ops")), 1},
		{"/pipelines" + tagFilter(tagPred("team", "EQUALS", "ml-ops"), tagPred("env", "EQUALS", "prod")), 1},
		{"/pipelines" + tagFilter(tagPred("team", "EQUALS", "ml-ops"), tagPred("env", "EQUALS", "dev")), 0},
		{"/pipelines" + tagFilter(tagPred("nonexistent", "EQUALS", "value")), 0},
		{"/pipelines" + tagFilter(tagPred("team", "EQUALS", "ml-ops"), `{"key":"name","operation":"EQUALS","string_value":"tagged"}`), 1},
		{"/pipelines/" + pid + "/versions" + tagFilter(tagPred("env", "EQUALS", "staging")), 1},
		{"/pipelines/" + pid + "/versions" + tagFilter(tagPred("env", "EQUALS", "prod")), 0},
	} {
		if got := count(tc.path); got != tc.want {
			t.Errorf("GET %s: %d items, want %d", tc.path, got, tc.want)
		}
	}
	st, body := a.do("GET", "/pipelines"+tagFilter(tagPred("team", "NOT_EQUALS", "ml-ops")), nil)
	assertRPCError(t, st, body, 400, codeInvalidArgument)

	// PATCH /pipelines/{id}: display_name and tags replace; absent tags are kept; {} clears.
	st, up := a.do("PATCH", "/pipelines/"+pid, map[string]any{"pipeline_id": pid, "display_name": "Renamed", "tags": map[string]any{"a": "1"}})
	if st != 200 || up["display_name"] != "Renamed" || !reflect.DeepEqual(up["tags"], map[string]any{"a": "1"}) {
		t.Fatalf("patch = %d %v", st, up)
	}
	_, up = a.do("PATCH", "/pipelines/"+pid, map[string]any{"displayName": "Again"})
	if up["display_name"] != "Again" || !reflect.DeepEqual(up["tags"], map[string]any{"a": "1"}) {
		t.Fatalf("patch without tags = %v, want the tags kept", up)
	}
	_, got := a.do("GET", "/pipelines/"+pid, nil)
	if got["display_name"] != "Again" || got["name"] != "tagged" {
		t.Fatalf("get after patch = %v", got)
	}
	_, up = a.do("PATCH", "/pipelines/"+pid, map[string]any{"tags": map[string]any{}})
	if _, ok := up["tags"]; ok || up["display_name"] != "Again" {
		t.Fatalf("patch with {} = %v, want no tags", up)
	}
	if n := count("/pipelines" + tagFilter(tagPred("a", "EQUALS", "1"))); n != 0 {
		t.Fatalf("a cleared tag still matches %d pipelines", n)
	}

	// PATCH a version: found by its id, whatever pipeline the URL names.
	st, uv := a.do("PATCH", "/pipelines/not-its-pipeline/versions/"+vid, map[string]any{"tags": map[string]any{"env": "prod", "tier": "1"}})
	if st != 200 || uv["pipeline_id"] != pid || !reflect.DeepEqual(uv["tags"], map[string]any{"env": "prod", "tier": "1"}) {
		t.Fatalf("patch version = %d %v", st, uv)
	}
	if n := count("/pipelines/" + pid + "/versions" + tagFilter(tagPred("tier", "EQUALS", "1"))); n != 1 {
		t.Fatalf("patched version found %d times by its new tag", n)
	}
	st, body = a.do("PATCH", "/pipelines/"+pid+"/versions/nope", map[string]any{"tags": map[string]any{}})
	assertRPCError(t, st, body, 404, codeNotFound)

	// KFP's limits: 20 tags, no empty key, no dot in a key, keys and values of 63 characters.
	many := map[string]any{}
	for i := 0; i < 21; i++ {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	long := strings.Repeat("x", 64)
	for name, tags := range map[string]map[string]any{
		"21 tags":       many,
		"empty key":     {"": "v"},
		"dot in key":    {"a.b": "v"},
		"64-char key":   {long: "v"},
		"64-char value": {"k": long},
	} {
		st, body := a.do("PATCH", "/pipelines/"+pid, map[string]any{"tags": tags})
		if st != 400 {
			t.Errorf("%s: patch = %d %v, want 400", name, st, body)
		}
		st, body = a.do("POST", "/pipelines", map[string]any{"name": "bad-" + strings.ReplaceAll(name, " ", "-"), "tags": tags})
		if st != 400 {
			t.Errorf("%s: create = %d %v, want 400", name, st, body)
		}
	}
	if st, body := uploadWithTags(t, a, "/pipelines/upload?name=badtags", map[string]string{"a.b": "v"}); st != 400 {
		t.Errorf("upload with a dotted tag key = %d %v, want 400", st, body)
	}
	max := strings.Repeat("y", 63)
	if st, body := a.do("PATCH", "/pipelines/"+pid, map[string]any{"tags": map[string]any{max: max}}); st != 200 {
		t.Errorf("63-character tag = %d %v, want 200", st, body)
	}
	st, created := a.do("POST", "/pipelines", map[string]any{"name": "with-tags", "tags": map[string]any{"team": "x"}})
	if st != 200 || !reflect.DeepEqual(created["tags"], map[string]any{"team": "x"}) {
		t.Fatalf("create with tags = %d %v", st, created)
	}
}

func TestVersionByIDWhateverPipelineInURL(t *testing.T) {
	a := newTestAPI(t)
	_, p1 := a.upload("/pipelines/upload?name=one", "params.yaml", readTestdata(t, "params.yaml"))
	_, p2 := a.upload("/pipelines/upload?name=two", "params.yaml", readTestdata(t, "params.yaml"))
	pid1, pid2 := p1["pipeline_id"].(string), p2["pipeline_id"].(string)
	_, vs := a.do("GET", "/pipelines/"+pid1+"/versions", nil)
	vid := obj(t, list(t, vs["pipeline_versions"])[0])["pipeline_version_id"].(string)
	for _, owner := range []string{pid2, "no-such-pipeline"} {
		st, v := a.do("GET", "/pipelines/"+owner+"/versions/"+vid, nil)
		if st != 200 || v["pipeline_id"] != pid1 || v["pipeline_version_id"] != vid {
			t.Fatalf("get version %s under %s = %d %v", vid, owner, st, v)
		}
	}
	if st, body := a.do("DELETE", "/pipelines/"+pid2+"/versions/"+vid, nil); st != 200 {
		t.Fatalf("delete under another pipeline = %d %v", st, body)
	}
	st, body := a.do("GET", "/pipelines/"+pid1+"/versions/"+vid, nil)
	assertRPCError(t, st, body, 404, codeNotFound)
	st, body = a.do("DELETE", "/pipelines/"+pid1+"/versions/"+vid, nil)
	assertRPCError(t, st, body, 404, codeNotFound)
	// The other pipeline's own version is untouched.
	if _, vs := a.do("GET", "/pipelines/"+pid2+"/versions", nil); vs["total_size"] != float64(1) {
		t.Fatalf("versions of the other pipeline = %v", vs)
	}
}

func TestNameLengthLimits(t *testing.T) {
	a := newTestAPI(t)
	for _, tc := range []struct {
		what       string
		method     string
		path       string
		body       map[string]any
		wantStatus int
	}{
		{"500-character pipeline", "POST", "/pipelines", map[string]any{"name": strings.Repeat("p", 500)}, 400},
		{"129-character pipeline", "POST", "/pipelines", map[string]any{"name": strings.Repeat("p", 129)}, 400},
		{"128-character pipeline", "POST", "/pipelines", map[string]any{"name": strings.Repeat("p", 128)}, 200},
		{"129-character experiment", "POST", "/experiments", map[string]any{"display_name": strings.Repeat("e", 129)}, 400},
		{"128-character experiment", "POST", "/experiments", map[string]any{"display_name": strings.Repeat("e", 128)}, 200},
		{"64-character namespace", "POST", "/pipelines", map[string]any{"name": "ns", "namespace": strings.Repeat("n", 64)}, 400},
	} {
		st, body := a.do(tc.method, tc.path, tc.body)
		if st != tc.wantStatus {
			t.Errorf("%s: %d %v, want %d", tc.what, st, body, tc.wantStatus)
		}
	}
	if st, body := a.upload("/pipelines/upload?name="+strings.Repeat("u", 129), "params.yaml", readTestdata(t, "params.yaml")); st != 400 {
		t.Errorf("upload with a 129-character name = %d %v, want 400", st, body)
	}
}

// TestUploadedSpecComesBackEqual: the spec of an uploaded version is the uploaded document,
// read as YAML 1.2 as KFP reads it (keys y and n, values Y, N and off stay strings) with its
// numbers and nested values intact.
func TestUploadedSpecComesBackEqual(t *testing.T) {
	a := newTestAPI(t)
	st, p := a.upload("/pipelines/upload?name=yaml12", "yaml12.yaml", readTestdata(t, "yaml12.yaml"))
	if st != 200 {
		t.Fatalf("upload = %d %v", st, p)
	}
	_, vs := a.do("GET", "/pipelines/"+p["pipeline_id"].(string)+"/versions", nil)
	sp := obj(t, obj(t, list(t, vs["pipeline_versions"])[0])["pipeline_spec"])
	var want any
	_ = json.Unmarshal([]byte(`{
	  "x": {"parameterType": "NUMBER_INTEGER"}, "y": {"parameterType": "NUMBER_INTEGER"}}`), &want)
	if got := obj(t, obj(t, obj(t, sp["components"])["comp-add"])["inputDefinitions"])["parameters"]; !reflect.DeepEqual(got, want) {
		t.Errorf("component inputs = %v, want %v", got, want)
	}
	root := obj(t, obj(t, sp["root"])["inputDefinitions"])["parameters"]
	_ = json.Unmarshal([]byte(`{
	  "n": {"parameterType": "NUMBER_INTEGER", "defaultValue": 3, "isOptional": true},
	  "letters": {"parameterType": "LIST", "defaultValue": ["Y", "n", "off", 1.5, 2, -7], "isOptional": true},
	  "nested": {"parameterType": "STRUCT", "isOptional": true,
	    "defaultValue": {"A_a": [1, 2.25], "B_b": {"y": "N", "z": [{"deep": 1000}]}}}}`), &want)
	if !reflect.DeepEqual(root, want) {
		t.Errorf("root inputs = %v, want %v", root, want)
	}
	task := obj(t, obj(t, obj(t, obj(t, sp["root"])["dag"])["tasks"])["add"])
	_ = json.Unmarshal([]byte(`{"x": {"runtimeValue": {"constant": 2}}, "y": {"componentInputParameter": "n"}}`), &want)
	if got := obj(t, task["inputs"])["parameters"]; !reflect.DeepEqual(got, want) {
		t.Errorf("task inputs = %v, want %v", got, want)
	}

	// Every compiled fixture comes back as its file reads.
	dir := os.Getenv("KFPBOX_FIXTURES")
	if dir == "" {
		dir = "../../../shared/fixtures/kfp-ir"
	}
	files, _ := filepath.Glob(filepath.Join(dir, "valid", "*.yaml"))
	if len(files) == 0 {
		testmaterial.Missing(t, "the hand-written pipeline passed; no KFP IR fixtures under %s for the rest (set KFPBOX_FIXTURES)", dir)
	}
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.NewDecoder(strings.NewReader(string(data))).Decode(&doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		wantJS, _ := json.Marshal(doc)
		var want any
		_ = json.Unmarshal(wantJS, &want)
		st, p := a.upload(fmt.Sprintf("/pipelines/upload?name=f%d", i), filepath.Base(f), data)
		if st != 200 {
			t.Errorf("%s: upload = %d %v", f, st, p)
			continue
		}
		_, vs := a.do("GET", "/pipelines/"+p["pipeline_id"].(string)+"/versions", nil)
		got := obj(t, list(t, vs["pipeline_versions"])[0])["pipeline_spec"]
		if ps, ok := got.(map[string]any)["pipeline_spec"]; ok {
			got = ps
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the stored spec differs from the file", f)
		}
	}
}

func TestPackageURL(t *testing.T) {
	pkg := readTestdata(t, "params.yaml")
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/pipelines/sequential.yaml" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(pkg)
	}))
	defer files.Close()
	u, _ := url.Parse(files.URL)
	good := files.URL + "/pipelines/sequential.yaml"

	// By default a URL on a loopback or private address is refused.
	a := newTestAPI(t)
	st, body := a.do("POST", "/pipelines/create", map[string]any{
		"pipeline": map[string]any{"name": "seq"}, "pipeline_version": map[string]any{"package_url": map[string]any{"pipeline_url": good}},
	})
	assertRPCError(t, st, body, 400, codeInvalidArgument)
	if !strings.Contains(body["message"].(string), "package_url_hosts") {
		t.Errorf("refusal %q should name the setting that allows the host", body["message"])
	}

	// Allowed hosts are fetched, as KFP fetches package URLs.
	a = newTestAPIWith(t, Deps{PackageURLHosts: []string{u.Host}})
	st, p := a.do("POST", "/pipelines/create", map[string]any{
		"pipeline":         map[string]any{"name": "sequential-v2", "display_name": "sequential", "description": "sequential pipeline"},
		"pipeline_version": map[string]any{"package_url": map[string]any{"pipeline_url": good}},
	})
	if st != 200 || p["name"] != "sequential-v2" || p["display_name"] != "sequential" || p["description"] != "sequential pipeline" {
		t.Fatalf("create from package_url = %d %v", st, p)
	}
	pid := p["pipeline_id"].(string)
	_, vs := a.do("GET", "/pipelines/"+pid+"/versions", nil)
	v := obj(t, list(t, vs["pipeline_versions"])[0])
	if v["name"] != "sequential-v2" || v["display_name"] != "sequential" || v["description"] != "sequential pipeline" ||
		obj(t, v["package_url"])["pipeline_url"] != good || obj(t, obj(t, v["pipeline_spec"])["pipelineInfo"])["name"] != "say-things" {
		t.Fatalf("version = %v", v)
	}
	// A version from a URL takes the file's name when it has none of its own.
	st, v = a.do("POST", "/pipelines/"+pid+"/versions", map[string]any{"package_url": map[string]any{"pipelineUrl": good}})
	if st != 200 || v["name"] != "sequential.yaml" || v["pipeline_id"] != pid {
		t.Fatalf("create version from package_url = %d %v", st, v)
	}
	// And a run can use it.
	st, run := a.do("POST", "/runs", map[string]any{"display_name": "r", "pipeline_version_reference": map[string]any{"pipeline_id": pid, "pipeline_version_id": v["pipeline_version_id"]},
		"runtime_config": map[string]any{"parameters": map[string]any{"msg": "hi", "times": 1}}})
	if st != 200 {
		t.Fatalf("run of a version from a URL = %d %v", st, run)
	}
	for name, pv := range map[string]map[string]any{
		"missing file":   {"package_url": map[string]any{"pipeline_url": files.URL + "/nope.yaml"}},
		"not http":       {"package_url": map[string]any{"pipeline_url": "file:///etc/passwd"}},
		"no url at all":  {"package_url": map[string]any{"pipeline_url": ""}},
		"not a pipeline": {"package_url": map[string]any{"pipeline_url": files.URL + "/pipelines"}},
	} {
		st, body := a.do("POST", "/pipelines/"+pid+"/versions", pv)
		if st != 400 {
			t.Errorf("%s: %d %v, want 400", name, st, body)
		}
	}
}

// TestRecurringRunShapesOfKFPGoClient: the bodies KFP's generated Go client sends: no
// trigger at all (a single run, as KFP's one-off ScheduledWorkflow), start and end times at
// the Unix epoch (its zero DateTime), and a pipeline without a version (the latest version
// at each run). Responses carry mode as well as status, and KFP's default service account.
func TestRecurringRunShapesOfKFPGoClient(t *testing.T) {
	a := newTestAPI(t)
	_, p := a.upload("/pipelines/upload?name=rr", "params.yaml", readTestdata(t, "params.yaml"))
	pid := p["pipeline_id"].(string)
	params := map[string]any{"parameters": map[string]any{"msg": "x", "times": 1}}
	st, rr := a.do("POST", "/recurringruns", map[string]any{
		"display_name": "hello world", "max_concurrency": "10", "mode": "ENABLE", "runtime_config": params,
		"pipeline_version_reference": map[string]any{"pipeline_id": pid},
	})
	if st != 200 || rr["mode"] != "ENABLE" || rr["status"] != "ENABLED" || rr["service_account"] != "pipeline-runner" {
		t.Fatalf("no trigger = %d %v", st, rr)
	}
	ref := obj(t, rr["pipeline_version_reference"])
	if ref["pipeline_id"] != pid || ref["pipeline_version_id"] != nil {
		t.Fatalf("reference = %v, want the pipeline without a version", ref)
	}
	epoch := "1970-01-01T00:00:00.000Z"
	st, rr = a.do("POST", "/recurringruns", map[string]any{
		"display_name": "epoch", "max_concurrency": "10", "no_catchup": false, "runtime_config": params,
		"pipeline_version_reference": map[string]any{"pipeline_id": pid},
		"trigger":                    map[string]any{"periodic_schedule": map[string]any{"start_time": epoch, "end_time": epoch, "interval_second": "60"}},
		"mode":                       "DISABLE",
	})
	if st != 200 || rr["mode"] != "DISABLE" || rr["status"] != "DISABLED" {
		t.Fatalf("epoch start and end = %d %v", st, rr)
	}
	// An unset DateTime of the Go client (year 1) means no start or end.
	st, rr = a.do("POST", "/recurringruns", map[string]any{
		"display_name": "zero", "runtime_config": params, "pipeline_version_reference": map[string]any{"pipeline_id": pid},
		"trigger": map[string]any{"cron_schedule": map[string]any{"start_time": "0001-01-01T00:00:00.000Z", "end_time": "0001-01-01T00:00:00.000Z", "cron": "0 * * * * ?"}},
	})
	if st != 200 {
		t.Fatalf("zero times = %d %v", st, rr)
	}
	if cs := obj(t, obj(t, rr["trigger"])["cron_schedule"]); cs["start_time"] != nil || cs["end_time"] != nil {
		t.Fatalf("zero times came back as %v", cs)
	}
}

func TestRunDefaultsAndCreatedAtFilter(t *testing.T) {
	a := newTestAPI(t)
	ps, _ := specJSON(t, "yaml12.yaml")
	st, run := a.do("POST", "/runs", map[string]any{"display_name": "no config", "pipeline_spec": ps})
	if st != 200 || run["service_account"] != "pipeline-runner" || run["run_details"] != nil {
		t.Fatalf("run = %d %v", st, run)
	}
	if _, ok := run["runtime_config"]; ok {
		t.Fatalf("runtime_config %v came back though none was given", run["runtime_config"])
	}
	_, got := a.do("GET", "/runs/"+run["run_id"].(string), nil)
	if _, ok := got["runtime_config"]; ok || got["service_account"] != "pipeline-runner" {
		t.Fatalf("get = %v", got)
	}
	// created_at compared with a string of unix seconds, as KFP's SQL store allows.
	created := run["created_at"].(string)
	for _, tc := range []struct {
		pred string
		want float64
	}{
		{`{"key":"created_at","operation":"LESS_THAN","string_value":"4102444800"}`, 1},
		{`{"key":"created_at","operation":"GREATER_THAN","string_value":"4102444800"}`, 0},
		{`{"key":"created_at","operation":"GREATER_THAN_EQUALS","timestamp_value":"` + created + `"}`, 1},
		{`{"key":"created_at","operation":"LESS_THAN","string_value":"2000-01-01T00:00:00Z"}`, 0},
	} {
		st, body := a.do("GET", "/runs?filter="+url.QueryEscape(`{"predicates":[`+tc.pred+`]}`), nil)
		if st != 200 {
			t.Fatalf("%s: %d %v", tc.pred, st, body)
		}
		if n, _ := body["total_size"].(float64); n != tc.want {
			t.Errorf("%s: %v runs, want %v", tc.pred, n, tc.want)
		}
	}
	st, body := a.do("GET", "/runs?filter="+url.QueryEscape(`{"predicates":[{"key":"created_at","operation":"LESS_THAN","string_value":"soon"}]}`), nil)
	assertRPCError(t, st, body, 400, codeInvalidArgument)
}
