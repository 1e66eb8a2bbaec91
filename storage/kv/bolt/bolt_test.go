package bolt_test

import (
	"context"
	"path/filepath"
	"testing"

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
