package objects_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"

	"github.com/kfp-box/kfp-box/storage/objects"
	"github.com/kfp-box/kfp-box/storage/objects/local"
)

// countingStore wraps a Store, counts concurrent Gets and Puts and fails chosen keys.
type countingStore struct {
	objects.Store
	mu        sync.Mutex
	inflight  int
	maxFlight int
	gate      chan struct{} // when set, each transfer waits for a token
	failKey   string
}

func (c *countingStore) enter() {
	c.mu.Lock()
	c.inflight++
	c.maxFlight = max(c.maxFlight, c.inflight)
	c.mu.Unlock()
}

func (c *countingStore) leave() {
	c.mu.Lock()
	c.inflight--
	c.mu.Unlock()
}

func (c *countingStore) Put(ctx context.Context, bucket, key string, r io.Reader, size int64) error {
	c.enter()
	defer c.leave()
	if c.gate != nil {
		<-c.gate
	}
	if key == c.failKey {
		return fmt.Errorf("injected failure for %q", key)
	}
	return c.Store.Put(ctx, bucket, key, r, size)
}

func (c *countingStore) Get(ctx context.Context, bucket, key string, off, n int64) (io.ReadCloser, error) {
	c.enter()
	defer c.leave()
	if c.gate != nil {
		<-c.gate
	}
	if key == c.failKey {
		return nil, fmt.Errorf("injected failure for %q", key)
	}
	return c.Store.Get(ctx, bucket, key, off, n)
}

func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for rel, b := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, got, want map[string][]byte) {
	t.Helper()
	var gk, wk []string
	for k := range got {
		gk = append(gk, k)
	}
	for k := range want {
		wk = append(wk, k)
	}
	sort.Strings(gk)
	sort.Strings(wk)
	if fmt.Sprint(gk) != fmt.Sprint(wk) {
		t.Fatalf("tree has %v, want %v", gk, wk)
	}
	for k, w := range want {
		if !bytes.Equal(got[k], w) {
			t.Fatalf("file %q differs", k)
		}
	}
}

func TestStageRoundTrip(t *testing.T) {
	ls, err := local.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	store := &countingStore{Store: ls}
	ctx := context.Background()

	src := t.TempDir()
	tree := map[string][]byte{}
	for i := range 40 {
		tree[fmt.Sprintf("model/part-%02d/w.bin", i)] = bytes.Repeat([]byte{byte(i)}, 1000+i)
	}
	writeTree(t, src, tree)
	writeTree(t, src, map[string][]byte{"metrics.json": []byte(`{"a":1}`)})
	// A symlink inside an output folder is not published.
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "model", "link")); err != nil {
		t.Fatal(err)
	}

	root, _ := objects.ParseURI("minio://mlpipeline/v2/artifacts/p/run/task")
	out := []objects.Transfer{
		{URI: root.Join("model"), Path: filepath.Join(src, "model")},
		{URI: root.Join("metrics"), Path: filepath.Join(src, "metrics.json")},
	}
	st, err := objects.StageOut(ctx, store, out, objects.StageOptions{Parallel: 4})
	if err != nil {
		t.Fatalf("StageOut: %v", err)
	}
	if st.Files != 41 {
		t.Fatalf("StageOut moved %d files, want 41", st.Files)
	}
	if store.maxFlight > 4 {
		t.Fatalf("StageOut ran %d transfers at once, limit 4", store.maxFlight)
	}
	if _, err := ls.Stat(ctx, "mlpipeline", "v2/artifacts/p/run/task/model/link"); !errors.Is(err, objects.ErrNotFound) {
		t.Fatalf("symlink was uploaded: %v", err)
	}

	dst := t.TempDir()
	in := []objects.Transfer{
		{URI: root.Join("model"), Path: filepath.Join(dst, "model")},
		{URI: root.Join("metrics"), Path: filepath.Join(dst, "metrics.json")},
	}
	st, err = objects.StageIn(ctx, store, in, objects.StageOptions{Parallel: 4})
	if err != nil {
		t.Fatalf("StageIn: %v", err)
	}
	if st.Files != 41 {
		t.Fatalf("StageIn moved %d files, want 41", st.Files)
	}
	tree["metrics.json"] = []byte(`{"a":1}`)
	sameTree(t, readTree(t, dst), tree)
}

func TestStageParallelism(t *testing.T) {
	ls, err := local.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	ctx := context.Background()
	for i := range 6 {
		if err := ls.Put(ctx, "bkt", fmt.Sprintf("d/f%d", i), bytes.NewReader([]byte("x")), 1); err != nil {
			t.Fatal(err)
		}
	}
	// Transfers block until a token arrives; release one token per transfer only once
	// three are waiting together, which proves they run in parallel.
	store := &countingStore{Store: ls, gate: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		u, _ := objects.ParseURI("s3://bkt/d")
		_, err := objects.StageIn(ctx, store, []objects.Transfer{{URI: u, Path: t.TempDir()}}, objects.StageOptions{Parallel: 3})
		done <- err
	}()
	for released := 0; released < 6; {
		store.mu.Lock()
		waiting := store.inflight
		store.mu.Unlock()
		if waiting == 3 || (released >= 3 && waiting > 0) {
			store.gate <- struct{}{}
			released++
			continue
		}
		runtime.Gosched()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if store.maxFlight != 3 {
		t.Fatalf("max transfers in flight = %d, want 3", store.maxFlight)
	}
}

func TestStageErrors(t *testing.T) {
	ls, err := local.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	ctx := context.Background()
	for i := range 20 {
		if err := ls.Put(ctx, "bkt", fmt.Sprintf("d/f%02d", i), bytes.NewReader([]byte("x")), 1); err != nil {
			t.Fatal(err)
		}
	}
	store := &countingStore{Store: ls, failKey: "d/f07"}
	u, _ := objects.ParseURI("s3://bkt/d")
	if _, err := objects.StageIn(ctx, store, []objects.Transfer{{URI: u, Path: t.TempDir()}}, objects.StageOptions{Parallel: 2}); err == nil {
		t.Fatal("StageIn with a failing object succeeded")
	}
	missing, _ := objects.ParseURI("s3://bkt/nothing")
	if _, err := objects.StageIn(ctx, ls, []objects.Transfer{{URI: missing, Path: t.TempDir()}}, objects.StageOptions{}); !errors.Is(err, objects.ErrNotFound) {
		t.Fatalf("StageIn of a missing URI error = %v, want ErrNotFound", err)
	}
	if _, err := objects.StageOut(ctx, ls, []objects.Transfer{{URI: missing, Path: filepath.Join(t.TempDir(), "nope")}}, objects.StageOptions{}); !errors.Is(err, objects.ErrNotFound) {
		t.Fatalf("StageOut of a missing path error = %v, want ErrNotFound", err)
	}
	bad := objects.URI{Scheme: "s3", Bucket: "bkt", Key: "../escape"}
	if _, err := objects.StageIn(ctx, ls, []objects.Transfer{{URI: bad, Path: t.TempDir()}}, objects.StageOptions{}); !errors.Is(err, objects.ErrInvalid) {
		t.Fatalf("StageIn of a bad key error = %v, want ErrInvalid", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := objects.StageIn(canceled, ls, []objects.Transfer{{URI: u, Path: t.TempDir()}}, objects.StageOptions{}); err == nil {
		t.Fatal("StageIn with a canceled context succeeded")
	}
}
