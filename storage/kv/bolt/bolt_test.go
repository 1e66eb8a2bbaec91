package bolt_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/bolt"
	"github.com/kfp-box/kfp-box/storage/kv/kvtest"
)

func TestConformance(t *testing.T) {
	kvtest.Run(t, func(t *testing.T, dir string) kv.Store {
		s, err := bolt.Open(context.Background(), kv.Options{Path: filepath.Join(dir, "meta.db")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestOpenAddsModificationRevisions opens a file written before keys carried revisions: each
// existing key gets the file's revision, and later writes get their own.
func TestOpenAddsModificationRevisions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("kv"))
		if err != nil {
			return err
		}
		if err := b.Put([]byte("old"), []byte("v")); err != nil {
			return err
		}
		sys, err := tx.CreateBucket([]byte("sys"))
		if err != nil {
			return err
		}
		return sys.Put([]byte("revision"), binary.BigEndian.AppendUint64(nil, 7))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := bolt.Open(ctx, kv.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rev, err := s.Update(ctx, func(tx kv.Tx) error { return tx.Put([]byte("new"), []byte("w")) })
	if err != nil {
		t.Fatal(err)
	}
	if rev != 8 {
		t.Fatalf("first write after the upgrade has revision %d, want 8", rev)
	}
	got := map[string]int64{}
	err = s.View(ctx, func(tx kv.Tx) error {
		return tx.Scan(nil, nil, false, func(k, _ []byte, rev int64) error {
			got[string(k)] = rev
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got["old"] != 7 || got["new"] != 8 || len(got) != 2 {
		t.Fatalf("revisions after upgrade = %v, want old=7 new=8", got)
	}
}
