package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kfp-box/kfp-box/storage/objects"
	"github.com/kfp-box/kfp-box/storage/objects/objectstoretest"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	objectstoretest.Run(t, func(t *testing.T) (objects.Store, string) {
		s := newStore(t)
		if err := s.EnsureBucket("test-bucket"); err != nil {
			t.Fatal(err)
		}
		return s, "test-bucket"
	})
}

// TestSymlinksAreNotObjects checks that a symlink a task leaves in its output directory
// cannot expose a file outside the store.
func TestSymlinksAreNotObjects(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.EnsureBucket("bkt"); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	bucketDir := filepath.Join(s.Dir(), "bkt")
	if err := os.Symlink(secret, filepath.Join(bucketDir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(secret), filepath.Join(bucketDir, "dirlink")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"link", "dirlink/secret"} {
		if _, err := s.Get(ctx, "bkt", key, 0, -1); err == nil {
			t.Errorf("Get(%q) through a symlink succeeded", key)
		}
		if _, err := s.Stat(ctx, "bkt", key); err == nil {
			t.Errorf("Stat(%q) through a symlink succeeded", key)
		}
	}
	infos, err := s.List(ctx, "bkt", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 0 {
		t.Errorf("List = %+v, want no objects (symlinks are not objects)", infos)
	}
	if err := s.Put(ctx, "bkt", "dirlink/new", nil, 0); err == nil {
		t.Error("Put through a directory symlink out of the root succeeded")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(secret), "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Put wrote outside the root: %v", err)
	}
}
