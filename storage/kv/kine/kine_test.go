package kine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/internal/pgtest"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/kv/kine"
	"github.com/kfp-box/kfp-box/storage/kv/kvtest"
)

// TestConformancePostgres runs the kv suite against PostgreSQL; each store is its own
// database, named after the suite's directory so that reopening finds the same data.
func TestConformancePostgres(t *testing.T) {
	pg := pgtest.Require(t)
	kvtest.Run(t, func(t *testing.T, dir string) kv.Store {
		sum := sha256.Sum256([]byte(dir))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := kine.Open(ctx, kine.Options{
			Endpoint:        pg.DSN("kv_" + hex.EncodeToString(sum[:8])),
			CompactInterval: -1, // the suite compacts on demand
			PollInterval:    100 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
