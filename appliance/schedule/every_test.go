package schedule_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/api"
	"github.com/kfp-box/kfp-box/appliance/schedule"
	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// TestEveryTwoSecondsOnTheWallClock runs the real scheduler with the API's run creation path
// on the wall clock: a recurring run with "@every 2s" creates runs on schedule, and once it
// is disabled it creates no more, while a second schedule keeps ticking to show that the
// scheduler went past the disabled one's next slots.
func TestEveryTwoSecondsOnTheWallClock(t *testing.T) {
	ctx := context.Background()
	kvs, err := bolt.Open(ctx, kv.Options{Path: filepath.Join(t.TempDir(), "meta.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer kvs.Close()
	m, err := meta.Open(ctx, kvs, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../api/testdata/params.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.ParsePackage("params.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	creator := &api.RunCreator{Meta: m}
	s := schedule.New(m, creator, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(ctx)

	mk := func(id, cron string) {
		now := time.Now().UTC()
		err := m.CreateRecurringRun(ctx, &meta.RecurringRun{
			ID: id, DisplayName: id, Enabled: true, MaxConcurrency: 10, NoCatchup: true,
			Trigger: meta.Trigger{Cron: cron}, CreatedAt: now, UpdatedAt: now, InlineSpec: p.StoredJSON(),
			RuntimeConfig: meta.RuntimeConfig{Parameters: map[string]any{"msg": "run [[RunUUID]] #[[Index]]"}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	count := func(id string) (int, time.Time) {
		f := fmt.Sprintf(`{"predicates":[{"operation":1,"key":"recurring_run_id","string_value":%q}]}`, id)
		pg, err := m.ListRuns(ctx, "", meta.ListOptions{Filter: f, SortBy: "scheduled_at desc", PageSize: 200})
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Items) == 0 {
			return 0, time.Time{}
		}
		last := pg.Items[0]
		if last.State != meta.RunPending || last.RuntimeConfig.Parameters["msg"] != fmt.Sprintf("run %s #%d", last.ID, pg.TotalSize) {
			t.Fatalf("scheduled run = %+v", last)
		}
		return pg.TotalSize, last.ScheduledAt
	}
	waitFor := func(what string, cond func() bool) {
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				n1, l1 := count("every2s")
				n2, l2 := count("heartbeat")
				t.Fatalf("%s: not within 60s (every2s %d last %v, heartbeat %d last %v, passes %d)", what, n1, l1, n2, l2, s.Passes())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	mk("every2s", "@every 2s")
	start := time.Now()
	waitFor("two runs", func() bool { n, _ := count("every2s"); return n >= 2 })
	if el := time.Since(start); el < 3*time.Second {
		t.Fatalf("two @every 2s runs after only %v", el)
	}
	if _, err := m.SetRecurringRunEnabled(ctx, "every2s", false); err != nil {
		t.Fatal(err)
	}
	// A pass that began before the disable may still create one run: let two passes finish.
	p0 := s.Passes()
	waitFor("passes after the disable", func() bool { s.Kick(); return s.Passes() >= p0+2 })
	n, _ := count("every2s")
	disabledAt := time.Now()

	mk("heartbeat", "@every 1s")
	waitFor("heartbeat past two more slots", func() bool {
		_, last := count("heartbeat")
		return last.After(disabledAt.Add(2500 * time.Millisecond))
	})
	if n2, _ := count("every2s"); n2 != n {
		t.Fatalf("disabled recurring run went on: %d runs, then %d", n, n2)
	}
}
