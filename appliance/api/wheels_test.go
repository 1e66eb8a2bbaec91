package api

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/wheelhouse"
	"github.com/kfp-box/kfp-box/storage/wheelhouse/wheeltest"
)

func TestWheelRoutes(t *testing.T) {
	st, err := wheelhouse.Open(filepath.Join(t.TempDir(), "wh"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAPIWith(t, Deps{Wheels: st})
	w := wheeltest.Wheel{Name: "demo", Version: "1.0"}
	upload := func(name string, body []byte) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, a.url+"/wheels?filename="+name, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		return a.send(req)
	}
	if code, body := upload(w.FileName(), w.Bytes()); code != 200 || body["sha256"] == "" || body["project"] != "demo" {
		t.Fatalf("upload: %d %v", code, body)
	}
	if code, body := upload("notes.txt", []byte("x")); code != 400 || body["code"] != float64(3) || !strings.Contains(body["message"].(string), ".whl") {
		t.Errorf("bad name: %d %v", code, body)
	}
	if code, body := upload("demo-2.0-py3-none-any.whl", []byte("not a zip")); code != 400 || !strings.Contains(body["message"].(string), "zip") {
		t.Errorf("not a zip: %d %v", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, a.url+"/wheels?filename=demo-3.0-py3-none-any.whl", strings.NewReader("x"))
	req.Header.Set("Content-Type", "text/plain") // what a cross-site form could send
	if code, body := a.send(req); code != 415 || body["code"] != float64(3) {
		t.Errorf("text/plain upload: %d %v", code, body)
	}
	if code, body := a.do("GET", "/wheels", nil); code != 200 || len(body["wheels"].([]any)) != 1 {
		t.Errorf("list: %d %v", code, body)
	}
	if code, body := a.do("DELETE", "/wheels/demo==1.0", nil); code != 200 || len(body["removed"].([]any)) != 1 {
		t.Errorf("delete: %d %v", code, body)
	}
	if code, body := a.do("DELETE", "/wheels/demo", nil); code != 404 || body["code"] != float64(5) {
		t.Errorf("delete again: %d %v", code, body)
	}
}

// TestRunWarnings: what Preflight finds is stored with the run and shown in run_details.
func TestRunWarnings(t *testing.T) {
	a := newTestAPIWith(t, Deps{Preflight: func(_ context.Context, p *spec.Pipeline) []string {
		return []string{"task \"x\" will fail: " + p.Name()}
	}})
	ps, _ := specJSON(t, "params.yaml")
	st, created := a.do("POST", "/runs", map[string]any{"display_name": "r", "pipeline_spec": ps, "runtime_config": map[string]any{"parameters": map[string]any{"msg": "hi"}}})
	if st != 200 {
		t.Fatalf("create: %d %v", st, created)
	}
	// As on KFP, the created run comes back without run_details; the warnings are in the
	// run as it is read.
	if created["run_details"] != nil {
		t.Errorf("run_details at creation = %v, want none", created["run_details"])
	}
	_, got := a.do("GET", "/runs/"+created["run_id"].(string), nil)
	d, _ := got["run_details"].(map[string]any)
	if ws, _ := d["warnings"].([]any); len(ws) != 1 || !strings.Contains(ws[0].(string), "will fail") {
		t.Errorf("run_details on GET = %v", got["run_details"])
	}
}
