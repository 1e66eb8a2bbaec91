// Package objectstoretest is the conformance suite every objects.Store passes. A backend's
// own tests call Run with a factory that returns a fresh store and an existing, empty
// bucket.
package objectstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/kfp-box/kfp-box/storage/objects"
)

// Factory returns a store under test and the name of an existing, empty bucket in it.
type Factory func(t *testing.T) (objects.Store, string)

// Run runs the whole suite against stores made by factory.
func Run(t *testing.T, factory Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s objects.Store, bucket string)
	}{
		{"PutGetRoundTrip", testPutGet},
		{"PutUnknownSize", testPutUnknownSize},
		{"Overwrite", testOverwrite},
		{"Ranges", testRanges},
		{"NotFound", testNotFound},
		{"List", testList},
		{"Delete", testDelete},
		{"DeletePrefix", testDeletePrefix},
		{"InvalidKeys", testInvalidKeys},
		{"ConcurrentPuts", testConcurrentPuts},
		{"CanceledPut", testCanceledPut},
		{"LocalPath", testLocalPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, bucket := factory(t)
			tc.fn(t, s, bucket)
		})
	}
}

func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, s objects.Store, bucket, key string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, s objects.Store, bucket, key string, off, n int64) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), bucket, key, off, n)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d) read: %v", key, off, n, err)
	}
	return b
}

func testPutGet(t *testing.T, s objects.Store, bucket string) {
	for _, size := range []int{0, 1, 4096, 6<<20 + 17} {
		key := fmt.Sprintf("round/trip-%d.bin", size)
		data := randBytes(t, size)
		put(t, s, bucket, key, data)
		if got := get(t, s, bucket, key, 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("Get(%q) returned %d bytes, want the %d put", key, len(got), size)
		}
		info, err := s.Stat(context.Background(), bucket, key)
		if err != nil {
			t.Fatalf("Stat(%q): %v", key, err)
		}
		if info.Size != int64(size) || info.Key != key || info.Bucket != bucket || info.ModTime.IsZero() {
			t.Fatalf("Stat(%q) = %+v, want size %d", key, info, size)
		}
	}
}

func testPutUnknownSize(t *testing.T, s objects.Store, bucket string) {
	data := randBytes(t, 5<<20+3)
	r := io.MultiReader(bytes.NewReader(data[:100]), bytes.NewReader(data[100:]))
	if err := s.Put(context.Background(), bucket, "unknown/size", r, -1); err != nil {
		t.Fatalf("Put size -1: %v", err)
	}
	if got := get(t, s, bucket, "unknown/size", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("Get returned %d bytes, want %d", len(got), len(data))
	}
}

func testOverwrite(t *testing.T, s objects.Store, bucket string) {
	put(t, s, bucket, "over/write", []byte("first version, longer"))
	put(t, s, bucket, "over/write", []byte("second"))
	if got := string(get(t, s, bucket, "over/write", 0, -1)); got != "second" {
		t.Fatalf("after overwrite Get = %q, want %q", got, "second")
	}
}

func testRanges(t *testing.T, s objects.Store, bucket string) {
	data := []byte("0123456789abcdef")
	put(t, s, bucket, "range", data)
	tests := []struct {
		off, n int64
		want   string
	}{
		{0, -1, "0123456789abcdef"},
		{0, 4, "0123"},
		{10, 3, "abc"},
		{10, -1, "abcdef"},
		{14, 100, "ef"},
		{16, -1, ""},
		{16, 5, ""},
		{3, 0, ""},
	}
	for _, tc := range tests {
		if got := string(get(t, s, bucket, "range", tc.off, tc.n)); got != tc.want {
			t.Errorf("Get(off=%d, n=%d) = %q, want %q", tc.off, tc.n, got, tc.want)
		}
	}
	for _, off := range []int64{-1, 17} {
		rc, err := s.Get(context.Background(), bucket, "range", off, -1)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, objects.ErrInvalid) {
			t.Errorf("Get(off=%d) error = %v, want ErrInvalid", off, err)
		}
	}
}

func testNotFound(t *testing.T, s objects.Store, bucket string) {
	ctx := context.Background()
	put(t, s, bucket, "dir/child", []byte("x"))
	for _, key := range []string{"missing", "dir", "dir/missing", "dir/child/deeper"} {
		if _, err := s.Stat(ctx, bucket, key); !errors.Is(err, objects.ErrNotFound) {
			t.Errorf("Stat(%q) error = %v, want ErrNotFound", key, err)
		}
		rc, err := s.Get(ctx, bucket, key, 0, -1)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, objects.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound", key, err)
		}
	}
	if _, err := s.List(ctx, "kfpbox-no-such-bucket", ""); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("List(missing bucket) error = %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, "kfpbox-no-such-bucket", "k"); !errors.Is(err, objects.ErrNotFound) {
		t.Errorf("Stat(missing bucket) error = %v, want ErrNotFound", err)
	}
}

func keys(infos []objects.Info) []string {
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.Key
	}
	return out
}

func testList(t *testing.T, s objects.Store, bucket string) {
	ctx := context.Background()
	all := []string{"a-c", "a/b", "a/c/d", "a/c/e.txt", "ab", "z/y/x"}
	for i, k := range all {
		put(t, s, bucket, k, bytes.Repeat([]byte{'x'}, i+1))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"a", []string{"a-c", "a/b", "a/c/d", "a/c/e.txt", "ab"}},
		{"a/", []string{"a/b", "a/c/d", "a/c/e.txt"}},
		{"a/c/", []string{"a/c/d", "a/c/e.txt"}},
		{"a/c/e", []string{"a/c/e.txt"}},
		{"z/y/x", []string{"z/y/x"}},
		{"nothing/", []string{}},
		{"a/b/", []string{}},
	}
	for _, tc := range tests {
		got, err := s.List(ctx, bucket, tc.prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", tc.prefix, err)
		}
		if strings.Join(keys(got), ",") != strings.Join(tc.want, ",") {
			t.Errorf("List(%q) = %v, want %v", tc.prefix, keys(got), tc.want)
		}
	}
	got, err := s.List(ctx, bucket, "a/c/")
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Size != 3 || got[1].Size != 4 || got[0].Bucket != bucket {
		t.Errorf("List sizes = %+v, want 3 and 4", got)
	}
}

func testDelete(t *testing.T, s objects.Store, bucket string) {
	ctx := context.Background()
	put(t, s, bucket, "del/one/two", []byte("x"))
	put(t, s, bucket, "del/keep", []byte("y"))
	if err := s.Delete(ctx, bucket, "del/one/two"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(ctx, bucket, "del/one/two"); !errors.Is(err, objects.ErrNotFound) {
		t.Fatalf("Stat after Delete error = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, bucket, "del/one/two"); err != nil {
		t.Fatalf("second Delete: %v, want nil", err)
	}
	if err := s.Delete(ctx, bucket, "del/never"); err != nil {
		t.Fatalf("Delete(missing): %v, want nil", err)
	}
	got, err := s.List(ctx, bucket, "del/")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys(got), ",") != "del/keep" {
		t.Fatalf("List after Delete = %v, want [del/keep]", keys(got))
	}
	// The key of a deleted object can become a prefix again.
	put(t, s, bucket, "del/one/two/three", []byte("z"))
}

func testDeletePrefix(t *testing.T, s objects.Store, bucket string) {
	ctx := context.Background()
	put(t, s, bucket, "tree/a", []byte("12"))
	put(t, s, bucket, "tree/b/c", []byte("345"))
	put(t, s, bucket, "treehouse", []byte("6"))
	n, size, err := objects.DeletePrefix(ctx, s, bucket, "tree/")
	if err != nil || n != 2 || size != 5 {
		t.Fatalf("DeletePrefix = %d, %d, %v; want 2, 5, nil", n, size, err)
	}
	got, err := s.List(ctx, bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys(got), ",") != "treehouse" {
		t.Fatalf("List after DeletePrefix = %v", keys(got))
	}
}

func testInvalidKeys(t *testing.T, s objects.Store, bucket string) {
	ctx := context.Background()
	for _, key := range []string{"", "../escape", "a/../../escape", "/abs", "a\x00b", "a//b", "./a", "dir/", objects.ReservedPrefix + "/x"} {
		if err := s.Put(ctx, bucket, key, strings.NewReader("x"), 1); !errors.Is(err, objects.ErrInvalid) {
			t.Errorf("Put(%q) error = %v, want ErrInvalid", key, err)
		}
		if _, err := s.Stat(ctx, bucket, key); !errors.Is(err, objects.ErrInvalid) {
			t.Errorf("Stat(%q) error = %v, want ErrInvalid", key, err)
		}
		if _, err := s.Get(ctx, bucket, key, 0, -1); !errors.Is(err, objects.ErrInvalid) {
			t.Errorf("Get(%q) error = %v, want ErrInvalid", key, err)
		}
		if err := s.Delete(ctx, bucket, key); !errors.Is(err, objects.ErrInvalid) {
			t.Errorf("Delete(%q) error = %v, want ErrInvalid", key, err)
		}
	}
	for _, prefix := range []string{"../", "/", "a\x00"} {
		if _, err := s.List(ctx, bucket, prefix); !errors.Is(err, objects.ErrInvalid) {
			t.Errorf("List(%q) error = %v, want ErrInvalid", prefix, err)
		}
	}
	if _, err := s.List(ctx, "../etc", ""); !errors.Is(err, objects.ErrInvalid) {
		t.Errorf("List(bucket ../etc) error = %v, want ErrInvalid", err)
	}
}

func testConcurrentPuts(t *testing.T, s objects.Store, bucket string) {
	const writers = 8
	versions := make([][]byte, writers)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 256<<10)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Put(context.Background(), bucket, "race/key", bytes.NewReader(versions[i]), int64(len(versions[i])))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Put: %v", err)
		}
	}
	got := get(t, s, bucket, "race/key", 0, -1)
	for _, v := range versions {
		if bytes.Equal(got, v) {
			return
		}
	}
	t.Fatalf("after concurrent Puts the object (%d bytes) matches no single writer", len(got))
}

// failingReader returns some bytes and then an error, like a broken upload.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("source broke")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func testCanceledPut(t *testing.T, s objects.Store, bucket string) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, bucket, "canceled", strings.NewReader("x"), 1); err == nil {
		t.Fatal("Put with a canceled context succeeded")
	}
	if err := s.Put(context.Background(), bucket, "broken", &failingReader{n: 1000}, 2000); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	for _, key := range []string{"canceled", "broken"} {
		if _, err := s.Stat(context.Background(), bucket, key); !errors.Is(err, objects.ErrNotFound) {
			t.Errorf("Stat(%q) after failed Put error = %v, want ErrNotFound", key, err)
		}
	}
	got, err := s.List(context.Background(), bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("List after failed Puts = %v, want nothing (no temporary files visible)", keys(got))
	}
}

func testLocalPath(t *testing.T, s objects.Store, bucket string) {
	lp, ok := s.(objects.LocalPather)
	if !ok {
		t.Skip("store has no LocalPath (only local stores do); nothing to check")
	}
	data := []byte("zero copy")
	put(t, s, bucket, "local/path.txt", data)
	p, err := lp.LocalPath(bucket, "local/path.txt")
	if err != nil {
		t.Fatalf("LocalPath: %v", err)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file at LocalPath = %q, %v; want %q", got, err, data)
	}
	// A file written straight to the local path is an object at once.
	dir, err := lp.LocalPath(bucket, "local/written/")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/out.bin", []byte("task output"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, s, bucket, "local/written/out.bin", 0, -1)); got != "task output" {
		t.Fatalf("Get of a directly written file = %q", got)
	}
	for _, key := range []string{"../x", "/etc", "a\x00"} {
		if _, err := lp.LocalPath(bucket, key); !errors.Is(err, objects.ErrInvalid) {
			t.Errorf("LocalPath(%q) error = %v, want ErrInvalid", key, err)
		}
	}
}
