// Package kvtest is the conformance suite every storage/kv backend passes.
package kvtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/storage/kv"
)

// Factory opens a fresh store in dir. Reopen must be supported: calling it again with the
// same dir after Close must see the committed data.
type Factory func(t *testing.T, dir string) kv.Store

// Run runs the suite.
func Run(t *testing.T, open Factory) {
	t.Run("GetPutDelete", func(t *testing.T) { testGetPutDelete(t, open) })
	t.Run("ScanOrder", func(t *testing.T) { testScan(t, open) })
	t.Run("RollbackOnError", func(t *testing.T) { testRollback(t, open) })
	t.Run("RevisionAndWatch", func(t *testing.T) { testWatch(t, open) })
	t.Run("ConcurrentBatch", func(t *testing.T) { testBatch(t, open) })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, open) })
	t.Run("ReadOnlyView", func(t *testing.T) { testReadOnly(t, open) })
	t.Run("ModRevisions", func(t *testing.T) { testModRevisions(t, open) })
	t.Run("ReadYourWrites", func(t *testing.T) { testReadYourWrites(t, open) })
	t.Run("ConcurrentReadModifyWrite", func(t *testing.T) { testReadModifyWrite(t, open) })
	t.Run("WatchFromRevision", func(t *testing.T) { testWatchFrom(t, open) })
	t.Run("WatchCompacted", func(t *testing.T) { testWatchCompacted(t, open) })
	t.Run("Cancellation", func(t *testing.T) { testCancellation(t, open) })
	t.Run("CopyAndDigest", func(t *testing.T) { testCopy(t, open) })
	t.Run("SlowWatcherResumes", func(t *testing.T) { testSlowWatcher(t, open) })
}

// put writes the pairs in one transaction and returns its revision.
func put(t *testing.T, s kv.Store, kvs ...string) int64 {
	t.Helper()
	rev, err := s.Update(context.Background(), func(tx kv.Tx) error {
		for i := 0; i+1 < len(kvs); i += 2 {
			if err := tx.Put([]byte(kvs[i]), []byte(kvs[i+1])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	return rev
}

func revision(t *testing.T, s kv.Store) int64 {
	t.Helper()
	rev, err := s.Revision(context.Background())
	if err != nil {
		t.Fatalf("revision: %v", err)
	}
	return rev
}

func get(t *testing.T, s kv.Store, k string) (string, error) {
	t.Helper()
	var out string
	err := s.View(context.Background(), func(tx kv.Tx) error {
		v, err := tx.Get([]byte(k))
		out = string(v)
		return err
	})
	return out, err
}

func testGetPutDelete(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	if _, err := get(t, s, "a"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("missing key: got %v, want ErrNotFound", err)
	}
	put(t, s, "a", "1", "b", "2")
	if v, err := get(t, s, "a"); err != nil || v != "1" {
		t.Fatalf("get a = %q, %v", v, err)
	}
	_, err := s.Update(context.Background(), func(tx kv.Tx) error {
		if err := tx.Delete([]byte("a")); err != nil {
			return err
		}
		return tx.Delete([]byte("never-existed"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, s, "a"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("deleted key: got %v", err)
	}
	if v, _ := get(t, s, "b"); v != "2" {
		t.Fatalf("b = %q", v)
	}
}

func scan(t *testing.T, s kv.Store, prefix, from string, reverse bool) []string {
	t.Helper()
	var keys []string
	var f []byte
	if from != "" {
		f = []byte(from)
	}
	err := s.View(context.Background(), func(tx kv.Tx) error {
		return tx.Scan([]byte(prefix), f, reverse, func(k, _ []byte, _ int64) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func testScan(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	put(t, s, "/a/1", "", "/a/2", "", "/a/3", "", "/b/1", "", "/a", "", "/\xff", "")
	cases := []struct {
		prefix, from string
		reverse      bool
		want         string
	}{
		{"/a/", "", false, "[/a/1 /a/2 /a/3]"},
		{"/a/", "", true, "[/a/3 /a/2 /a/1]"},
		{"/a/", "/a/2", false, "[/a/2 /a/3]"},
		{"/a/", "/a/2", true, "[/a/2 /a/1]"},
		{"/a/", "/a/25", true, "[/a/2 /a/1]"},
		{"/a/", "/a/9", true, "[/a/3 /a/2 /a/1]"},
		{"/b/", "", true, "[/b/1]"},
		{"/c/", "", false, "[]"},
		{"/\xff", "", true, "[/\xff]"},
	}
	for _, c := range cases {
		got := fmt.Sprint(scan(t, s, c.prefix, c.from, c.reverse))
		if got != c.want {
			t.Errorf("scan(%q, from %q, reverse %v) = %s, want %s", c.prefix, c.from, c.reverse, got, c.want)
		}
	}
	var n int
	err := s.View(context.Background(), func(tx kv.Tx) error {
		return tx.Scan([]byte("/a/"), nil, false, func(_, _ []byte, _ int64) error {
			n++
			return kv.ErrStop
		})
	})
	if err != nil || n != 1 {
		t.Fatalf("ErrStop: n=%d err=%v", n, err)
	}
}

func testRollback(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	rev := put(t, s, "k", "old")
	boom := errors.New("boom")
	_, err := s.Update(context.Background(), func(tx kv.Tx) error {
		if err := tx.Put([]byte("k"), []byte("new")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update error = %v", err)
	}
	if v, _ := get(t, s, "k"); v != "old" {
		t.Fatalf("after rollback k = %q", v)
	}
	if got := revision(t, s); got != rev {
		t.Fatalf("revision moved on rollback: %d -> %d", rev, got)
	}
}

type wantEvent struct {
	typ kv.EventType
	key string
	rev int64
}

// expect reads len(want) events from ch and compares them; rev 0 in want means "any revision
// above the previous event's".
func expect(t *testing.T, ch <-chan kv.Event, want []wantEvent) {
	t.Helper()
	var last int64
	for i, w := range want {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event %d: channel closed", i)
			}
			if ev.Type != w.typ || string(ev.Key) != w.key || (w.rev != 0 && ev.Revision != w.rev) || ev.Revision < last {
				t.Fatalf("event %d = %v %q rev %d, want %v %q rev %d (after %d)", i, ev.Type, ev.Key, ev.Revision, w.typ, w.key, w.rev, last)
			}
			last = ev.Revision
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d (%v %q) not delivered", i, w.typ, w.key)
		}
	}
}

func testWatch(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Watch(ctx, []byte("/w/"), 0)
	if err != nil {
		t.Fatal(err)
	}
	r0 := revision(t, s)
	r1 := put(t, s, "/other", "y", "/w/1", "x")
	r2 := put(t, s, "/w/2", "z")
	r3, err := s.Update(ctx, func(tx kv.Tx) error { return tx.Delete([]byte("/w/1")) })
	if err != nil {
		t.Fatal(err)
	}
	if !(r0 < r1 && r1 < r2 && r2 < r3) {
		t.Fatalf("revisions not increasing: %d %d %d %d", r0, r1, r2, r3)
	}
	expect(t, ch, []wantEvent{{kv.EventPut, "/w/1", r1}, {kv.EventPut, "/w/2", r2}, {kv.EventDelete, "/w/1", r3}})
	if got := revision(t, s); got != r3 {
		t.Fatalf("revision = %d, want %d", got, r3)
	}
	cancel()
	for range ch { // channel closes once the watch's context ends
	}
}

func testBatch(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := s.Batch(context.Background(), func(tx kv.Tx) error {
				return tx.Put([]byte(fmt.Sprintf("/batch/%03d", i)), []byte("v"))
			})
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(scan(t, s, "/batch/", "", false)); got != n {
		t.Fatalf("batch wrote %d keys, want %d", got, n)
	}
}

func testReopen(t *testing.T, open Factory) {
	dir := t.TempDir()
	s := open(t, dir)
	rev := put(t, s, "durable", "yes")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if v, err := get(t, s, "durable"); err != nil || v != "yes" {
		t.Fatalf("after reopen: %q %v", v, err)
	}
	if got := revision(t, s); got < rev {
		t.Fatalf("revision after reopen = %d, want at least %d", got, rev)
	}
	err := s.View(context.Background(), func(tx kv.Tx) error {
		_, mod, err := tx.GetRevision([]byte("durable"))
		if err == nil && mod != rev {
			err = fmt.Errorf("modification revision after reopen = %d, want %d", mod, rev)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testReadOnly(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	err := s.View(context.Background(), func(tx kv.Tx) error { return tx.Put([]byte("x"), []byte("y")) })
	if err == nil {
		t.Fatal("Put in View succeeded")
	}
}

func testModRevisions(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	ra := put(t, s, "/m/a", "1")
	rb := put(t, s, "/m/b", "2")
	if rb <= ra {
		t.Fatalf("second write's revision %d not above the first's %d", rb, ra)
	}
	revs := map[string]int64{}
	err := s.View(context.Background(), func(tx kv.Tx) error {
		if tx.Revision() < rb {
			return fmt.Errorf("view reads at %d, before the last write %d", tx.Revision(), rb)
		}
		_, mod, err := tx.GetRevision([]byte("/m/a"))
		if err != nil {
			return err
		}
		if mod != ra {
			return fmt.Errorf("GetRevision(/m/a) = %d, want %d", mod, ra)
		}
		if _, _, err := tx.GetRevision([]byte("/m/none")); !errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("GetRevision(missing) error = %v, want ErrNotFound", err)
		}
		return tx.Scan([]byte("/m/"), nil, false, func(k, _ []byte, rev int64) error {
			revs[string(k)] = rev
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if revs["/m/a"] != ra || revs["/m/b"] != rb {
		t.Fatalf("scan revisions = %v, want /m/a=%d /m/b=%d", revs, ra, rb)
	}
	// A transaction that writes nothing commits no revision.
	r, err := s.Update(context.Background(), func(tx kv.Tx) error { return tx.Delete([]byte("/m/none")) })
	if err != nil {
		t.Fatal(err)
	}
	if r != rb || revision(t, s) != rb {
		t.Fatalf("empty write moved the revision: returned %d, store at %d, want %d", r, revision(t, s), rb)
	}
}

func testReadYourWrites(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	put(t, s, "/y/1", "old", "/y/3", "gone")
	_, err := s.Update(context.Background(), func(tx kv.Tx) error {
		if err := tx.Put([]byte("/y/1"), []byte("new")); err != nil {
			return err
		}
		if err := tx.Put([]byte("/y/2"), []byte("added")); err != nil {
			return err
		}
		if err := tx.Delete([]byte("/y/3")); err != nil {
			return err
		}
		if v, err := tx.Get([]byte("/y/1")); err != nil || string(v) != "new" {
			return fmt.Errorf("get own write = %q, %v", v, err)
		}
		if _, err := tx.Get([]byte("/y/3")); !errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("get own delete: %v", err)
		}
		var got []string
		for _, reverse := range []bool{false, true} {
			err := tx.Scan([]byte("/y/"), nil, reverse, func(k, v []byte, _ int64) error {
				got = append(got, string(k)+"="+string(v))
				return nil
			})
			if err != nil {
				return err
			}
		}
		if fmt.Sprint(got) != "[/y/1=new /y/2=added /y/2=added /y/1=new]" {
			return fmt.Errorf("scan own writes = %v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// testReadModifyWrite has goroutines increment one counter and append to a set of keys in
// read-modify-write transactions; no increment may be lost and each commit's revision is
// distinct.
func testReadModifyWrite(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	revs := make(chan int64, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				rev, err := s.Update(context.Background(), func(tx kv.Tx) error {
					n := 0
					v, err := tx.Get([]byte("/rmw/counter"))
					switch {
					case errors.Is(err, kv.ErrNotFound):
					case err != nil:
						return err
					default:
						if _, err := fmt.Sscan(string(v), &n); err != nil {
							return err
						}
					}
					if err := tx.Put([]byte(fmt.Sprintf("/rmw/seen/%04d", n)), []byte(fmt.Sprint(w))); err != nil {
						return err
					}
					return tx.Put([]byte("/rmw/counter"), []byte(fmt.Sprint(n+1)))
				})
				if err != nil {
					errs <- err
					return
				}
				revs <- rev
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	close(revs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	var max, second int64
	for r := range revs {
		if seen[r] {
			t.Fatalf("two commits returned revision %d", r)
		}
		seen[r] = true
		if r > max {
			max, second = r, max
		} else if r > second {
			second = r
		}
	}
	if v, err := get(t, s, "/rmw/counter"); err != nil || v != fmt.Sprint(workers*each) {
		t.Fatalf("counter = %q, %v; want %d (an increment was lost)", v, err, workers*each)
	}
	if n := len(scan(t, s, "/rmw/seen/", "", false)); n != workers*each {
		t.Fatalf("%d distinct counter values seen, want %d", n, workers*each)
	}
	err := s.View(context.Background(), func(tx kv.Tx) error {
		// The last commit wrote the counter: its revision is above every earlier commit's and
		// at most the last one's (a backend may give each key of a commit its own revision).
		_, mod, err := tx.GetRevision([]byte("/rmw/counter"))
		if err == nil && (mod <= second || mod > max) {
			err = fmt.Errorf("counter's revision %d is not in the last commit (%d, %d]", mod, second, max)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testWatchFrom(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r1 := put(t, s, "/f/1", "a")
	put(t, s, "/g/1", "other prefix")
	r3 := put(t, s, "/f/2", "b")
	r4, err := s.Update(ctx, func(tx kv.Tx) error { return tx.Delete([]byte("/f/1")) })
	if err != nil {
		t.Fatal(err)
	}
	// From r1 replays everything under /f/ since r1, then follows new writes.
	ch, err := s.Watch(ctx, []byte("/f/"), r1)
	if err != nil {
		t.Fatal(err)
	}
	// From r3+1 skips what came before.
	late, err := s.Watch(ctx, []byte("/f/"), r3+1)
	if err != nil {
		t.Fatal(err)
	}
	r5 := put(t, s, "/f/3", "c")
	expect(t, ch, []wantEvent{{kv.EventPut, "/f/1", r1}, {kv.EventPut, "/f/2", r3}, {kv.EventDelete, "/f/1", r4}, {kv.EventPut, "/f/3", r5}})
	expect(t, late, []wantEvent{{kv.EventDelete, "/f/1", r4}, {kv.EventPut, "/f/3", r5}})
	// A watch from a revision not yet written waits for it.
	future, err := s.Watch(ctx, []byte("/f/"), r5+1)
	if err != nil {
		t.Fatal(err)
	}
	r6 := put(t, s, "/f/4", "d")
	expect(t, future, []wantEvent{{kv.EventPut, "/f/4", r6}})
	select {
	case ev := <-late:
		if string(ev.Key) != "/f/4" {
			t.Fatalf("unexpected event %v %q", ev.Type, ev.Key)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("late watcher missed /f/4")
	}
}

func testWatchCompacted(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	c, ok := s.(kv.Compactor)
	if !ok {
		t.Skip("backend has no kv.Compactor: compaction cannot be driven by the test")
	}
	r1 := put(t, s, "/c/1", "a")
	r2 := put(t, s, "/c/1", "b")
	put(t, s, "/c/2", "c")
	if err := c.Compact(context.Background(), r2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watch(context.Background(), []byte("/c/"), r1); !errors.Is(err, kv.ErrCompacted) {
		t.Fatalf("watch from compacted revision %d: error %v, want ErrCompacted", r1, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.Watch(ctx, []byte("/c/"), r2+1); err != nil {
		t.Fatalf("watch from the first kept revision: %v", err)
	}
	if v, err := get(t, s, "/c/1"); err != nil || v != "b" {
		t.Fatalf("after compaction /c/1 = %q, %v", v, err)
	}
}

func testCancellation(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.Watch(ctx, []byte("/x/"), 0)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.After(10 * time.Second)
	for closed := false; !closed; {
		select {
		case _, ok := <-ch:
			closed = !ok
		case <-deadline:
			t.Fatal("watch channel still open after its context ended")
		}
	}
	if _, err := s.Update(ctx, func(tx kv.Tx) error { return tx.Put([]byte("/x/1"), []byte("v")) }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := get(t, s, "/x/1"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("cancelled Update wrote: %v", err)
	}
	if err := s.View(ctx, func(kv.Tx) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("View with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := s.Watch(ctx, []byte("/x/"), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch with a cancelled context: %v, want context.Canceled", err)
	}
	// The store still works after cancelled calls.
	put(t, s, "/x/2", "ok")
	if v, err := get(t, s, "/x/2"); err != nil || v != "ok" {
		t.Fatalf("after cancellations: %q, %v", v, err)
	}
}

func testCopy(t *testing.T, open Factory) {
	ctx := context.Background()
	src := open(t, t.TempDir())
	defer src.Close()
	dst := open(t, t.TempDir())
	defer dst.Close()
	var kvs []string
	for i := 0; i < 1203; i++ { // more than one copy batch
		kvs = append(kvs, fmt.Sprintf("/copy/%05d", i), fmt.Sprintf("value %d", i))
	}
	kvs = append(kvs, "/bin/\x00\xff", "\x00\x01\xfe", "/empty", "")
	put(t, src, kvs...)
	want, err := kv.Digest(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if want.Keys != len(kvs)/2 {
		t.Fatalf("digest counted %d keys, want %d", want.Keys, len(kvs)/2)
	}
	got, err := kv.Copy(ctx, dst, src)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("copy summary %+v, source %+v", got, want)
	}
	if d, err := kv.Digest(ctx, dst); err != nil || d != want {
		t.Fatalf("destination digest %+v, %v; want %+v", d, err, want)
	}
	if _, err := kv.Copy(ctx, dst, src); !errors.Is(err, kv.ErrNotEmpty) {
		t.Fatalf("copy into a non-empty store: %v, want ErrNotEmpty", err)
	}
	put(t, dst, "/copy/00007", "changed")
	if d, _ := kv.Digest(ctx, dst); d.Digest == want.Digest || d.Keys != want.Keys {
		t.Fatalf("digest did not see a changed value: %+v vs %+v", d, want)
	}
}

// testSlowWatcher leaves a watcher unread while more events than any buffer holds are
// written: its channel may close early, but what it delivered is in order without gaps, and
// watching again from the last revision + 1 delivers the rest.
func testSlowWatcher(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Watch(ctx, []byte("/slow/"), 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 600
	for i := 0; i < n; i++ {
		put(t, s, fmt.Sprintf("/slow/%04d", i), "v")
	}
	next, last := 0, int64(0)
	deadline := time.After(60 * time.Second)
	for next < n {
		select {
		case ev, ok := <-ch:
			if !ok {
				// Closed for falling behind: resume after the last event seen.
				if ch, err = s.Watch(ctx, []byte("/slow/"), last+1); err != nil {
					t.Fatalf("resume from %d: %v", last+1, err)
				}
				continue
			}
			if want := fmt.Sprintf("/slow/%04d", next); string(ev.Key) != want || ev.Revision <= last {
				t.Fatalf("event %d = %q rev %d, want %q after rev %d", next, ev.Key, ev.Revision, want, last)
			}
			next, last = next+1, ev.Revision
		case <-deadline:
			t.Fatalf("only %d of %d events delivered", next, n)
		}
	}
}
