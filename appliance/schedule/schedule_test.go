package schedule

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
	"github.com/kfp-box/kfp-box/storage/meta"
)

var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC) // a Monday

func TestParseTriggerAndNext(t *testing.T) {
	tests := []struct {
		name    string
		trig    meta.Trigger
		after   time.Time
		want    time.Time
		wantErr bool
	}{
		{"six fields seconds first", meta.Trigger{Cron: "0 0 9 ? * 2-6"}, t0, time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC), false},
		{"five fields: no day of week", meta.Trigger{Cron: "30 15 10 * *"}, t0, time.Date(2026, 3, 2, 10, 15, 30, 0, time.UTC), false},
		{"every seconds", meta.Trigger{Cron: "*/20 * * * * *"}, t0, t0.Add(20 * time.Second), false},
		{"@every", meta.Trigger{Cron: "@every 2s"}, t0, t0.Add(2 * time.Second), false},
		{"@daily", meta.Trigger{Cron: "@daily"}, t0, time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC), false},
		{"time zone field", meta.Trigger{Cron: "0 0 9 * * *", TimeZone: "Europe/Berlin"}, t0, time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC), false},
		{"CRON_TZ prefix", meta.Trigger{Cron: "CRON_TZ=America/New_York 0 0 9 * * *"}, t0, time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC), false},
		{"start time", meta.Trigger{Cron: "0 0 * * * *", StartTime: t0.Add(90 * time.Minute)}, t0, t0.Add(2 * time.Hour), false},
		{"interval follows the last slot", meta.Trigger{IntervalSeconds: 60}, t0.Add(30 * time.Second), t0.Add(90 * time.Second), false},
		{"interval before start", meta.Trigger{IntervalSeconds: 60, StartTime: t0.Add(time.Hour)}, t0, t0.Add(time.Hour), false},
		{"cron strictly after start", meta.Trigger{Cron: "0 0 * * * *", StartTime: t0}, t0.Add(-time.Hour), t0.Add(time.Hour), false},
		{"four fields", meta.Trigger{Cron: "0 9 * *"}, t0, time.Time{}, true},
		{"garbage", meta.Trigger{Cron: "every day"}, t0, time.Time{}, true},
		{"bad zone", meta.Trigger{Cron: "0 0 9 * * *", TimeZone: "Nowhere/Land"}, t0, time.Time{}, true},
		{"both kinds", meta.Trigger{Cron: "@daily", IntervalSeconds: 5}, t0, time.Time{}, true},
		{"negative interval", meta.Trigger{IntervalSeconds: -1}, t0, time.Time{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseTrigger(tc.trig, t0)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, ok := p.Next(tc.after)
			if !ok || !got.Equal(tc.want) {
				t.Fatalf("Next(%v) = %v %v, want %v", tc.after, got, ok, tc.want)
			}
		})
	}
	p, _ := ParseTrigger(meta.Trigger{IntervalSeconds: 10, EndTime: t0.Add(25 * time.Second)}, t0)
	if _, ok := p.Next(t0.Add(20 * time.Second)); ok {
		t.Fatal("a slot after end_time")
	}
	// KFP accepts an end before the start (KFP's Go client sends the Unix epoch for both when
	// they are unset): such a schedule never runs.
	p, err := ParseTrigger(meta.Trigger{IntervalSeconds: 60, StartTime: time.Unix(0, 0), EndTime: time.Unix(0, 0)}, t0)
	if err != nil {
		t.Fatalf("epoch start and end: %v", err)
	}
	if s, ok := p.First(); ok {
		t.Fatalf("epoch start and end: first slot %v", s)
	}
	// No schedule at all: a single run at creation, as KFP's one-time recurring run.
	p, err = ParseTrigger(meta.Trigger{}, t0)
	if err != nil || !p.Once() {
		t.Fatalf("empty trigger: %v once=%v", err, p != nil && p.Once())
	}
	if s, ok := p.First(); !ok || !s.Equal(t0) {
		t.Fatalf("single run first slot %v %v, want %v", s, ok, t0)
	}
	if _, ok := p.Next(t0); ok {
		t.Fatal("a single run has a second slot")
	}
}

// TestCatchUpCountsAsKFP: a schedule whose start and end lie in the past makes as many runs
// as KFP's ScheduledWorkflow controller: with catch-up every slot after the start, without it
// only the last one.
func TestCatchUpCountsAsKFP(t *testing.T) {
	start := time.Unix(10*3600, 0).UTC()
	end := start.Add(2 * time.Minute)
	for _, tc := range []struct {
		name      string
		trig      meta.Trigger
		noCatchup bool
		want      []time.Time
	}{
		{"periodic catch-up", meta.Trigger{IntervalSeconds: 60, StartTime: start, EndTime: end}, false, []time.Time{start.Add(time.Minute), end}},
		{"periodic no catch-up", meta.Trigger{IntervalSeconds: 60, StartTime: start, EndTime: end}, true, []time.Time{end}},
		{"cron catch-up", meta.Trigger{Cron: "0 * * * * ?", StartTime: start, EndTime: end}, false, []time.Time{start.Add(time.Minute), end}},
		{"cron no catch-up", meta.Trigger{Cron: "0 * * * * ?", StartTime: start, EndTime: end}, true, []time.Time{end}},
		{"single run", meta.Trigger{}, false, []time.Time{t0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m := openMeta(t)
			clk := &fakeClock{now: t0.Add(time.Minute)}
			s := New(m, storeCreator(m, meta.RunSucceeded), nil, clk)
			rr := &meta.RecurringRun{ID: "rr", DisplayName: "past", Enabled: true, MaxConcurrency: 10,
				NoCatchup: tc.noCatchup, Trigger: tc.trig, CreatedAt: t0}
			if err := m.CreateRecurringRun(ctx, rr); err != nil {
				t.Fatal(err)
			}
			if wake := s.Pass(ctx); !wake.IsZero() {
				t.Fatalf("wake %v: the schedule has ended", wake)
			}
			s.Pass(ctx)
			runs := runsOf(t, m, "rr")
			var got []time.Time
			for _, r := range runs {
				got = append(got, r.ScheduledAt.UTC())
			}
			sort.Slice(got, func(i, j int) bool { return got[i].Before(got[j]) })
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("runs scheduled at %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMacros(t *testing.T) {
	m := Macros{RunUUID: "u-1", Index: 7, CurrentTime: t0.Add(time.Second), ScheduledTime: t0}
	got := m.ExpandParams(map[string]any{
		"a": "[[RunUUID]]/[[Index]]/[[ScheduledTime]]/[[CurrentTime]]",
		"b": "[[ScheduledTime.2006-01-02]]",
		"c": []any{"[[Index]]", 3.0},
		"d": 5.0,
		"e": "[[Unknown]]",
	})
	want := map[string]any{"a": "u-1/7/20260302080000/20260302080001", "b": "2026-03-02", "e": "[[Unknown]]"}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
	if l := got["c"].([]any); l[0] != "7" || got["d"] != 5.0 {
		t.Errorf("c, d = %v %v", got["c"], got["d"])
	}
}

// fakeClock is a settable clock; After fires when Advance passes its deadline.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now // like time.After: a deadline already passed fires at once
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
}

func openMeta(t *testing.T) *meta.Store {
	t.Helper()
	ctx := context.Background()
	kvs, err := bolt.Open(ctx, kv.Options{Path: filepath.Join(t.TempDir(), "meta.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kvs.Close() })
	m, err := meta.Open(ctx, kvs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// storeCreator creates runs straight in meta (the API's validation is tested in api).
func storeCreator(m *meta.Store, state string) CreatorFunc {
	return func(ctx context.Context, req RunRequest) (*meta.Run, error) {
		r := &meta.Run{
			ID: req.RunID, DisplayName: req.DisplayName, ExperimentID: req.ExperimentID,
			RecurringRunID: req.RecurringRunID, RuntimeConfig: req.RuntimeConfig, State: state,
			ScheduledAt: req.ScheduledAt, CreatedAt: req.ScheduledAt, StorageState: meta.StorageAvailable,
		}
		return r, m.CreateRun(ctx, r, req.Spec)
	}
}

func runsOf(t *testing.T, m *meta.Store, rrID string) []*meta.Run {
	t.Helper()
	f := fmt.Sprintf(`{"predicates":[{"operation":1,"key":"recurring_run_id","string_value":%q}]}`, rrID)
	p, err := m.ListRuns(context.Background(), "", meta.ListOptions{Filter: f, PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	return p.Items
}

func TestPassCatchUpNoCatchupAndConcurrency(t *testing.T) {
	tests := []struct {
		name      string
		noCatchup bool
		maxConc   int64
		state     string
		wantRuns  int
		wantFirst time.Time
		wantWake  time.Time
	}{
		{"catch up every missed slot", false, 10, meta.RunSucceeded, 5, t0.Add(time.Minute), t0.Add(6 * time.Minute)},
		// As KFP: a periodic schedule more than an interval behind runs once, now, and
		// continues one interval later.
		{"no catchup runs once now", true, 10, meta.RunSucceeded, 1, t0.Add(5*time.Minute + 30*time.Second), t0.Add(6*time.Minute + 30*time.Second)},
		{"max concurrency holds back", false, 2, meta.RunRunning, 2, t0.Add(time.Minute), time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m := openMeta(t)
			clk := &fakeClock{now: t0.Add(5*time.Minute + 30*time.Second)}
			s := New(m, storeCreator(m, tc.state), nil, clk)
			rr := &meta.RecurringRun{
				ID: "rr", DisplayName: "every minute", Enabled: true, MaxConcurrency: tc.maxConc, NoCatchup: tc.noCatchup,
				Trigger: meta.Trigger{IntervalSeconds: 60}, CreatedAt: t0,
				RuntimeConfig: meta.RuntimeConfig{Parameters: map[string]any{"id": "[[RunUUID]]", "at": "[[ScheduledTime]]"}},
			}
			if err := m.CreateRecurringRun(ctx, rr); err != nil {
				t.Fatal(err)
			}
			wake := s.Pass(ctx)
			runs := runsOf(t, m, "rr")
			if len(runs) != tc.wantRuns {
				t.Fatalf("created %d runs, want %d", len(runs), tc.wantRuns)
			}
			first := runs[0]
			if !first.ScheduledAt.Equal(tc.wantFirst) || first.RuntimeConfig.Parameters["id"] != first.ID ||
				first.RuntimeConfig.Parameters["at"] != tc.wantFirst.Format(defaultTimeLayout) {
				t.Fatalf("first run = %+v", first)
			}
			if tc.state == meta.RunRunning {
				if !wake.Equal(clk.Now().Add(blockedRecheck)) {
					t.Fatalf("blocked wake = %v", wake)
				}
			} else if !wake.Equal(tc.wantWake) {
				t.Fatalf("wake = %v, want the next slot", wake)
			}
			// A second pass at the same time creates nothing new.
			s.Pass(ctx)
			if n := len(runsOf(t, m, "rr")); n != tc.wantRuns {
				t.Fatalf("second pass made %d runs", n)
			}
			got, _ := m.GetRecurringRun(ctx, "rr")
			if got.RunCount != int64(tc.wantRuns) {
				t.Fatalf("run count %d", got.RunCount)
			}
		})
	}
}

func TestPassSkipsDisabledAndEnded(t *testing.T) {
	ctx := context.Background()
	m := openMeta(t)
	clk := &fakeClock{now: t0.Add(time.Hour)}
	s := New(m, storeCreator(m, meta.RunSucceeded), nil, clk)
	for _, rr := range []*meta.RecurringRun{
		{ID: "off", DisplayName: "off", Trigger: meta.Trigger{IntervalSeconds: 60}, CreatedAt: t0},
		{ID: "ended", DisplayName: "ended", Enabled: true, MaxConcurrency: 10, Trigger: meta.Trigger{IntervalSeconds: 60, EndTime: t0.Add(150 * time.Second)}, CreatedAt: t0},
	} {
		if err := m.CreateRecurringRun(ctx, rr); err != nil {
			t.Fatal(err)
		}
	}
	if wake := s.Pass(ctx); !wake.IsZero() {
		t.Fatalf("wake = %v, want none", wake)
	}
	if n := len(runsOf(t, m, "off")); n != 0 {
		t.Fatalf("disabled made %d runs", n)
	}
	if n := len(runsOf(t, m, "ended")); n != 2 {
		t.Fatalf("ended schedule made %d runs, want 2", n)
	}
}

func TestPassDisablesOnPermanentError(t *testing.T) {
	ctx := context.Background()
	m := openMeta(t)
	clk := &fakeClock{now: t0.Add(time.Hour)}
	s := New(m, CreatorFunc(func(context.Context, RunRequest) (*meta.Run, error) {
		return nil, fmt.Errorf("pipeline gone: %w", meta.ErrNotFound)
	}), nil, clk)
	if err := m.CreateRecurringRun(ctx, &meta.RecurringRun{ID: "rr", DisplayName: "x", Enabled: true, Trigger: meta.Trigger{IntervalSeconds: 60}, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	s.Pass(ctx)
	got, _ := m.GetRecurringRun(ctx, "rr")
	if got.Enabled || got.Error == nil {
		t.Fatalf("recurring run = %+v, want disabled with an error", got)
	}
}

func TestLoopWithFakeClock(t *testing.T) {
	ctx := context.Background()
	m := openMeta(t)
	clk := &fakeClock{now: t0}
	s := New(m, storeCreator(m, meta.RunSucceeded), nil, clk)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(ctx)
	if err := m.CreateRecurringRun(ctx, &meta.RecurringRun{ID: "rr", DisplayName: "x", Enabled: true, MaxConcurrency: 1, Trigger: meta.Trigger{Cron: "@every 2s"}, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		waitFor(t, func() bool { return s.Passes() >= int64(i) && hasWaiter(clk) })
		clk.Advance(2 * time.Second)
		waitFor(t, func() bool { return len(runsOf(t, m, "rr")) == i })
	}
}

func hasWaiter(c *fakeClock) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters) > 0
}

// waitFor polls cond until it holds or 60 s pass (generous: CI machines can be very busy).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 60s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
