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
}

func put(t *testing.T, s kv.Store, kvs ...string) {
	t.Helper()
	err := s.Update(context.Background(), func(tx kv.Tx) error {
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
	err := s.Update(context.Background(), func(tx kv.Tx) error {
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
		return tx.Scan([]byte(prefix), f, reverse, func(k, _ []byte) error {
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
		return tx.Scan([]byte("/a/"), nil, false, func(_, _ []byte) error {
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
	put(t, s, "k", "old")
	rev := s.Revision()
	boom := errors.New("boom")
	err := s.Update(context.Background(), func(tx kv.Tx) error {
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
	if s.Revision() != rev {
		t.Fatalf("revision moved on rollback: %d -> %d", rev, s.Revision())
	}
}

func testWatch(t *testing.T, open Factory) {
	s := open(t, t.TempDir())
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Watch(ctx, []byte("/w/"))
	if err != nil {
		t.Fatal(err)
	}
	r0 := s.Revision()
	put(t, s, "/w/1", "x", "/other", "y")
	put(t, s, "/w/2", "z")
	if err := s.Update(ctx, func(tx kv.Tx) error { return tx.Delete([]byte("/w/1")) }); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ kv.EventType
		key string
		rev int64
	}{{kv.EventPut, "/w/1", r0 + 1}, {kv.EventPut, "/w/2", r0 + 2}, {kv.EventDelete, "/w/1", r0 + 3}}
	for i, w := range want {
		select {
		case ev := <-ch:
			if ev.Type != w.typ || string(ev.Key) != w.key || ev.Revision != w.rev {
				t.Fatalf("event %d = %v %q rev %d, want %v %q rev %d", i, ev.Type, ev.Key, ev.Revision, w.typ, w.key, w.rev)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not delivered", i)
		}
	}
	if s.Revision() != r0+3 {
		t.Fatalf("revision = %d, want %d", s.Revision(), r0+3)
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
			errs <- s.Batch(context.Background(), func(tx kv.Tx) error {
				return tx.Put([]byte(fmt.Sprintf("/batch/%03d", i)), []byte("v"))
			})
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
	put(t, s, "durable", "yes")
	rev := s.Revision()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if v, err := get(t, s, "durable"); err != nil || v != "yes" {
		t.Fatalf("after reopen: %q %v", v, err)
	}
	if s.Revision() != rev {
		t.Fatalf("revision after reopen = %d, want %d", s.Revision(), rev)
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
