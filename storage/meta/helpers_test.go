package meta

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
)

// openTest opens a store over a fresh bbolt file (fsync off: tests of logic, not durability).
func openTest(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "meta.db"))
}

func openAt(t testing.TB, path string) *Store {
	t.Helper()
	ctx := context.Background()
	kvs, err := bolt.Open(ctx, kv.Options{Path: path, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, kvs, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kvs.Close() })
	return s
}
