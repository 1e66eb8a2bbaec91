package transfer

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The kfp SDK's generated REST client (kfp_server_api, from the wheel in ../shared) is the
// reference for request shapes: its API modules name each route's path, method, query
// parameters, upload fields and body model; its model modules name each model's fields and
// their types. This file reads them from the wheel's Python source.

// sdkRoute is one generated API method.
type sdkRoute struct {
	name, method string
	path         *regexp.Regexp
	query        map[string]bool
	files        map[string]bool
	body         string // model class of the body, "" for none
}

// sdkShapes is what the wheel says.
type sdkShapes struct {
	routes []sdkRoute
	// models maps class names to field -> type ("str", "bool", "object", "V2beta1Trigger",
	// "list[str]", "dict(str, object)", "datetime").
	models map[string]map[string]string
	// enums maps enum class names to their values.
	enums map[string]map[string]bool
}

var (
	reMethod   = regexp.MustCompile(`(?s)def (\w+)_with_http_info\(self.*?collection_formats=collection_formats\)`)
	rePath     = regexp.MustCompile(`'(/apis/v2beta1/[^']*)', '(GET|POST|DELETE|PATCH|PUT)'`)
	reQuery    = regexp.MustCompile(`query_params\.append\(\('([^']+)'`)
	reFiles    = regexp.MustCompile(`local_var_files\['([^']+)'\]`)
	reBody     = regexp.MustCompile(`body_params = local_var_params\['([^']+)'\]`)
	reClass    = regexp.MustCompile(`class (\w+)\(object\)`)
	reTypes    = regexp.MustCompile(`(?s)openapi_types = \{(.*?)\}`)
	reTypeItem = regexp.MustCompile(`'(\w+)': '([^']+)'`)
	reEnumVals = regexp.MustCompile(`(?m)^\s+[A-Z_0-9]+ = "([A-Z_0-9]+)"$`)
	rePathVar  = regexp.MustCompile(`\{[^}]+\}`)
)

// loadSDKShapes reads kfp_server_api from the wheel in ../shared (skipped, or failed under
// CI=true, when the wheel is missing).
func loadSDKShapes(t *testing.T) *sdkShapes {
	t.Helper()
	matches, _ := filepath.Glob("../../../shared/python/wheels/kfp_server_api-*.whl")
	if len(matches) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the kfp_server_api wheel is missing from ../shared/python/wheels (CI=true makes this a failure)")
		}
		t.Skip("the kfp_server_api wheel is not in ../shared/python/wheels; the request shapes cannot be checked (CI=true turns this skip into a failure)")
	}
	zr, err := zip.OpenReader(matches[len(matches)-1])
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	s := &sdkShapes{models: map[string]map[string]string{}, enums: map[string]map[string]bool{}}
	for _, f := range zr.File {
		isAPI := strings.HasPrefix(f.Name, "kfp_server_api/api/") && strings.HasSuffix(f.Name, ".py")
		isModel := strings.HasPrefix(f.Name, "kfp_server_api/models/") && strings.HasSuffix(f.Name, ".py")
		if !isAPI && !isModel {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		src := string(b)
		if isAPI {
			for _, m := range reMethod.FindAllStringSubmatch(src, -1) {
				body := m[0]
				p := rePath.FindStringSubmatch(body)
				if p == nil {
					continue
				}
				r := sdkRoute{name: m[1], method: p[2], query: map[string]bool{}, files: map[string]bool{},
					path: regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(rePathVar.ReplaceAllString(p[1], "VAR")), "VAR", `[^/]+`) + "$")}
				for _, q := range reQuery.FindAllStringSubmatch(body, -1) {
					r.query[q[1]] = true
				}
				for _, q := range reFiles.FindAllStringSubmatch(body, -1) {
					r.files[q[1]] = true
				}
				if bp := reBody.FindStringSubmatch(body); bp != nil {
					if ty := regexp.MustCompile(`:type ` + bp[1] + `: (\w+)`).FindStringSubmatch(body); ty != nil {
						r.body = ty[1]
					}
				}
				s.routes = append(s.routes, r)
			}
			continue
		}
		cls := reClass.FindStringSubmatch(src)
		if cls == nil {
			continue
		}
		fields := map[string]string{}
		if ty := reTypes.FindStringSubmatch(src); ty != nil {
			for _, it := range reTypeItem.FindAllStringSubmatch(ty[1], -1) {
				fields[it[1]] = it[2]
			}
		}
		if len(fields) == 0 && strings.Contains(src, "allowable_values") {
			vals := map[string]bool{}
			for _, v := range reEnumVals.FindAllStringSubmatch(src, -1) {
				vals[v[1]] = true
			}
			s.enums[cls[1]] = vals
			continue
		}
		s.models[cls[1]] = fields
	}
	if len(s.routes) < 20 || s.models["V2beta1RecurringRun"] == nil || s.enums["RecurringRunMode"] == nil {
		t.Fatalf("the wheel's API source did not parse: %d routes, %d models", len(s.routes), len(s.models))
	}
	return s
}

// route finds the generated method for a request.
func (s *sdkShapes) route(method, path string) *sdkRoute {
	// Literal routes first: /pipelines/upload before /pipelines/{id}.
	var found *sdkRoute
	for i := range s.routes {
		r := &s.routes[i]
		if r.method != method || !r.path.MatchString(path) {
			continue
		}
		if found == nil || !strings.Contains(r.path.String(), "[^/]+") {
			found = r
		}
	}
	return found
}

// checkValue checks a decoded JSON value against an SDK type, field by field.
func (s *sdkShapes) checkValue(where, typ string, v any) []string {
	switch {
	case typ == "object":
		return nil
	case typ == "str" || typ == "datetime":
		if _, ok := v.(string); !ok {
			return []string{fmt.Sprintf("%s: %T, the SDK sends a string (%s)", where, v, typ)}
		}
		return nil
	case typ == "bool":
		if _, ok := v.(bool); !ok {
			return []string{fmt.Sprintf("%s: %T, the SDK sends a bool", where, v)}
		}
		return nil
	case typ == "int" || typ == "float":
		if _, ok := v.(float64); !ok {
			return []string{fmt.Sprintf("%s: %T, the SDK sends a number", where, v)}
		}
		return nil
	case strings.HasPrefix(typ, "dict("):
		if _, ok := v.(map[string]any); !ok {
			return []string{fmt.Sprintf("%s: %T, the SDK sends an object", where, v)}
		}
		return nil
	case strings.HasPrefix(typ, "list["):
		l, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, the SDK sends a list", where, v)}
		}
		var errs []string
		for i, x := range l {
			errs = append(errs, s.checkValue(fmt.Sprintf("%s[%d]", where, i), strings.TrimSuffix(strings.TrimPrefix(typ, "list["), "]"), x)...)
		}
		return errs
	}
	if vals, ok := s.enums[typ]; ok {
		if str, _ := v.(string); !vals[str] {
			return []string{fmt.Sprintf("%s: %v is not a %s value", where, v, typ)}
		}
		return nil
	}
	fields, ok := s.models[typ]
	if !ok {
		return []string{fmt.Sprintf("%s: the SDK has no type %s", where, typ)}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: %T, the SDK sends a %s object", where, v, typ)}
	}
	var errs []string
	for k, x := range obj {
		ft, known := fields[k]
		if !known {
			errs = append(errs, fmt.Sprintf("%s.%s: %s has no such field", where, k, typ))
			continue
		}
		errs = append(errs, s.checkValue(where+"."+k, ft, x)...)
	}
	return errs
}

// TestSDKShapeCheckerFails shows the checker refuses what the SDK would not send: the box's
// time_zone extension, an int64 as a number, an unknown enum value, an unknown route.
func TestSDKShapeCheckerFails(t *testing.T) {
	s := loadSDKShapes(t)
	for name, body := range map[string]string{
		"time_zone extension": `{"trigger":{"cron_schedule":{"cron":"0 0 * * * *","time_zone":"Europe/Berlin"}}}`,
		"int64 as a number":   `{"max_concurrency":1}`,
		"unknown mode":        `{"mode":"PAUSED"}`,
		"unknown field":       `{"displayName":"camel"}`,
	} {
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		if errs := s.checkValue("body", "V2beta1RecurringRun", v); len(errs) != 1 {
			t.Errorf("%s: %v, want one error", name, errs)
		}
	}
	var ok any
	_ = json.Unmarshal([]byte(`{"display_name":"n","mode":"DISABLE","max_concurrency":"1","trigger":{"periodic_schedule":{"interval_second":"60"}}}`), &ok)
	if errs := s.checkValue("body", "V2beta1RecurringRun", ok); len(errs) != 0 {
		t.Errorf("a valid body: %v", errs)
	}
	if s.route("GET", "/apis/v2beta1/no-such") != nil || s.route("POST", "/apis/v2beta1/pipelines/upload").files["uploadfile"] != true {
		t.Error("routes: unknown path matched, or the upload field is not uploadfile")
	}
}
