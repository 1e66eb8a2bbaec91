package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeRun: any request body decodes or fails with ErrInvalid; it never panics.
func FuzzDecodeRun(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"display_name":"r","pipeline_spec":{"a":1},"runtime_config":{"parameters":{"x":1}}}`,
		`{"displayName":"r","runtimeConfig":{"pipelineRoot":"x"}}`, `{"display_name":"a","displayName":"b"}`,
		`[]`, `null`, `{"runtime_config":[]}`, `{"pipeline_version_reference":{"pipelineId":"p"}}`,
		`{"max_concurrency":"12","trigger":{"cronSchedule":{"cron":"@daily","startTime":"2026-01-01T00:00:00Z"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in runIn
		if err := decodeMessage(body, shapeRun, &in); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode run %q = %v, not ErrInvalid", body, err)
			}
		} else if _, err := in.RuntimeConfig.params(); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("params %q = %v", body, err)
		}
		var rr recurringRunIn
		if err := decodeMessage(body, shapeRecurringRun, &rr); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode recurring run %q = %v, not ErrInvalid", body, err)
			}
			return
		}
		if _, err := rr.Trigger.toMeta(); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("trigger %q = %v", body, err)
		}
	})
}

// FuzzAPIRequest sends any method, path, content type, Origin and body through the whole
// server (guard, routes, handlers, store): the answer is never a 5xx (an unavailable store
// aside), and a refused request is in KFP's error shape.
func FuzzAPIRequest(f *testing.F) {
	g := newGuarded(f, nil)
	for _, s := range []struct{ method, path, ct, origin, body string }{
		{"POST", "/apis/v2beta1/runs", "application/json", "", inlineRun},
		{"POST", "/apis/v2beta1/runs", "text/plain", "http://evil.example", inlineRun},
		{"POST", "/apis/v2beta1/experiments", "application/json", "", `{"display_name":"e"}`},
		{"POST", "/apis/v2beta1/recurringruns", "application/json", "", `{"display_name":"r","trigger":{"periodic_schedule":{"interval_second":"5"}}}`},
		{"GET", "/apis/v2beta1/runs?filter=%7B%7D&page_size=3&sort_by=created_at%20desc", "", "", ""},
		{"POST", "/apis/v2beta1/pipelines/upload?name=x", "multipart/form-data; boundary=b", "", "--b\r\nContent-Disposition: form-data; name=\"uploadfile\"; filename=\"p.yaml\"\r\n\r\nschemaVersion: 2.1.0\r\n--b--\r\n"},
		{"DELETE", "/apis/v2beta1/tokens/x", "", "", ""},
		{"POST", "/login", "application/x-www-form-urlencoded", "", "token=x&next=//evil"},
		{"PATCH", "/apis/v2beta1/pipelines/p", "application/json", "", `{"tags":{"a":"b"}}`},
	} {
		f.Add(s.method, s.path, s.ct, s.origin, []byte(s.body), true)
	}
	h := g.srv.Handler()
	f.Fuzz(func(t *testing.T, method, path, ct, origin string, body []byte, withToken bool) {
		if !validMethod(method) || !strings.HasPrefix(path, "/") {
			return
		}
		req, err := http.NewRequest(method, "http://127.0.0.1"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if withToken {
			req.Header.Set("Authorization", "Bearer "+g.admin)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s (%s, %d bytes): HTTP %d %s", method, path, ct, len(body), w.Code, w.Body)
		}
		if w.Code >= 400 && strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			var e map[string]any
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || (e["code"] == nil && e["error_message"] == nil) {
				t.Fatalf("%s %s: HTTP %d body %s is not an error shape", method, path, w.Code, w.Body)
			}
		}
	})
}

func validMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return true
	}
	return false
}
