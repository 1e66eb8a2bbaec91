package api

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/schedule"
)

// offsetClock is the wall clock moved by a fixed offset.
type offsetClock struct{ d time.Duration }

func (c offsetClock) Now() time.Time                         { return time.Now().Add(c.d) }
func (c offsetClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// TestRecurringRunCreatesRunsThroughTheAPIPath creates recurring runs over HTTP (inline spec
// and version reference), lets the scheduler pass 5.5 minutes later, and reads the spawned
// runs back over HTTP.
func TestRecurringRunCreatesRunsThroughTheAPIPath(t *testing.T) {
	a := newTestAPI(t)
	ps, _ := specJSON(t, "params.yaml")
	_, p := a.upload("/pipelines/upload?name=say", "params.yaml", readTestdata(t, "params.yaml"))
	pid := p["pipeline_id"].(string)

	mk := func(body map[string]any) string {
		body["runtime_config"] = map[string]any{"parameters": map[string]any{"msg": "[[RunUUID]]@[[ScheduledTime]]#[[Index]]"}}
		body["max_concurrency"] = 10
		body["trigger"] = map[string]any{"periodic_schedule": map[string]any{"interval_second": "60"}}
		st, rr := a.do("POST", "/recurringruns", body)
		if st != 200 {
			t.Fatalf("create = %d %v", st, rr)
		}
		return rr["recurring_run_id"].(string)
	}
	inline := mk(map[string]any{"display_name": "inline", "pipeline_spec": ps})
	byRef := mk(map[string]any{"display_name": "by-ref", "pipeline_version_reference": map[string]any{"pipeline_id": pid}, "no_catchup": true})

	sch := schedule.New(a.meta, a.srv.RunCreator(), nil, offsetClock{5*time.Minute + 30*time.Second})
	sch.Pass(t.Context())

	for _, tc := range []struct {
		id     string
		want   int
		inline bool
	}{{inline, 5, true}, {byRef, 1, false}} {
		f := url.QueryEscape(`{"predicates":[{"operation":1,"key":"recurring_run_id","stringValue":"` + tc.id + `"}]}`)
		st, body := a.do("GET", "/runs?sort_by=scheduled_at&filter="+f, nil)
		if st != 200 || body["total_size"] != float64(tc.want) {
			t.Fatalf("runs of %s = %d %v, want %d", tc.id, st, body, tc.want)
		}
		first := obj(t, list(t, body["runs"])[0])
		msg := obj(t, obj(t, first["runtime_config"])["parameters"])["msg"].(string)
		if !strings.HasPrefix(msg, first["run_id"].(string)+"@") || !strings.HasSuffix(msg, "#1") {
			t.Fatalf("macros not expanded: %q in %v", msg, first)
		}
		if first["recurring_run_id"] != tc.id || first["state"] != "PENDING" || first["scheduled_at"] == first["created_at"] {
			t.Fatalf("spawned run = %v", first)
		}
		_, got := a.do("GET", "/runs/"+first["run_id"].(string), nil)
		if _, has := got["pipeline_spec"]; has != tc.inline {
			t.Fatalf("pipeline_spec present = %v, want %v", has, tc.inline)
		}
	}
	if sub, _, _ := a.engine.calls(); len(sub) != 6 {
		t.Fatalf("engine got %d submissions, want 6", len(sub))
	}
}
