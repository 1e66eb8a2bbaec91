package meta

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestPropPagingMatchesNaiveList: for random runs, a random filter and a random sort, paging
// through ListRuns with any page size yields exactly the naive filtered, sorted list, and
// total_size is its length on every page.
func TestPropPagingMatchesNaiveList(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	states := []string{RunPending, RunRunning, RunSucceeded, RunFailed}
	var all []*Run
	for i := 0; i < 120; i++ {
		r := &Run{
			ID: fmt.Sprintf("r%03d", (i*37)%120), DisplayName: fmt.Sprintf("n%d", i%7),
			State: states[i%4], StorageState: StorageAvailable,
			CreatedAt: time.Unix(1_700_000_000+int64(i%13), 0).UTC(),
		}
		if err := s.CreateRun(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	rapid.Check(t, func(rt *rapid.T) {
		field := rapid.SampledFrom([]string{"created_at", "display_name", "state", "run_id"}).Draw(rt, "sort")
		desc := rapid.Bool().Draw(rt, "desc")
		size := rapid.IntRange(1, 50).Draw(rt, "page_size")
		state := rapid.SampledFrom(append([]string{""}, states...)).Draw(rt, "state")
		var want []*Run
		for _, r := range all {
			if state == "" || r.State != state {
				want = append(want, r)
			}
		}
		key := func(r *Run) string {
			switch field {
			case "created_at":
				return fmt.Sprintf("%020d", r.CreatedAt.UnixNano())
			case "display_name":
				return r.DisplayName
			case "state":
				return r.State
			}
			return r.ID
		}
		sort.Slice(want, func(i, j int) bool {
			a, b := key(want[i])+"\x00"+want[i].ID, key(want[j])+"\x00"+want[j].ID
			if desc {
				return a > b
			}
			return a < b
		})
		opts := ListOptions{PageSize: size, SortBy: field}
		if desc {
			opts.SortBy += " desc"
		}
		if state != "" {
			opts.Filter = fmt.Sprintf(`{"predicates":[{"operation":2,"key":"state","stringValue":%q}]}`, state)
		}
		var got []string
		for pages := 0; pages < 200; pages++ {
			p, err := s.ListRuns(ctx, "", opts)
			if err != nil {
				rt.Fatal(err)
			}
			if p.TotalSize != len(want) {
				rt.Fatalf("total_size %d, want %d", p.TotalSize, len(want))
			}
			for _, r := range p.Items {
				got = append(got, r.ID)
			}
			if p.NextPageToken == "" {
				break
			}
			opts.PageToken = p.NextPageToken
		}
		wantIDs := make([]string, len(want))
		for i, r := range want {
			wantIDs[i] = r.ID
		}
		if strings.Join(got, ",") != strings.Join(wantIDs, ",") {
			rt.Fatalf("paged %v\nwant   %v", got, wantIDs)
		}
	})
}

// TestIndexKeepsTheNewerRevision: publications applied out of order leave the newer row.
func TestIndexKeepsTheNewerRevision(t *testing.T) {
	ix := newIndexes().runs
	newer := runRow(&Run{ID: "a", State: RunSucceeded})
	newer.rev = 5
	older := runRow(&Run{ID: "a", State: RunRunning})
	older.rev = 4
	ix.apply(newer)
	ix.apply(older)
	r, _ := ix.get("a")
	if ix.str(r, "state") != RunSucceeded {
		t.Fatalf("state %q, want the newer SUCCEEDED", ix.str(r, "state"))
	}
	tomb := &row{id: "a", deleted: true, rev: 6}
	ix.apply(tomb)
	ix.apply(older)
	if _, ok := ix.get("a"); ok {
		t.Fatal("an older put resurrected a deleted row")
	}
}
