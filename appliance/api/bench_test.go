package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/storage/meta"
)

// BenchmarkAPIListRunsFilteredPage is GET /runs with a filter, a sort and page_size=200 over
// 10,000 runs, through HTTP on loopback and the JSON encoding (the SDK's list_runs path).
func BenchmarkAPIListRunsFilteredPage(b *testing.B) {
	a := newTestAPI(b)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	def, _ := a.meta.DefaultExperimentID(ctx)
	for i := range 10000 {
		state := meta.RunSucceeded
		if i%3 == 0 {
			state = meta.RunFailed
		}
		r := &meta.Run{
			ID: fmt.Sprintf("run-%05d", i), ExperimentID: def, DisplayName: fmt.Sprintf("train %d", i%10),
			StorageState: meta.StorageAvailable, State: state, CreatedAt: t0.Add(time.Duration(i) * time.Second),
			RuntimeConfig: meta.RuntimeConfig{Parameters: map[string]any{"lr": 0.01, "epochs": float64(i % 7)}},
			StateHistory:  []meta.StateEvent{{UpdateTime: t0, State: meta.RunPending}, {UpdateTime: t0, State: state}},
		}
		if err := a.meta.CreateRun(ctx, r, json.RawMessage(`{}`)); err != nil {
			b.Fatal(err)
		}
	}
	f := url.QueryEscape(`{"predicates":[{"operation":2,"key":"state","stringValue":"FAILED"}]}`)
	u := a.url + "/runs?page_size=200&sort_by=created_at%20desc&filter=" + f
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
}
