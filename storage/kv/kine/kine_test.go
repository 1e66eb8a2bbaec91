package kine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
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

// TestOpenUnreachableEndsWithContext opens a datastore nothing serves: Open gives up when its
// context ends (kine alone would retry for minutes) and says why, without the password.
func TestOpenUnreachableEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := kine.Open(ctx, kine.Options{Endpoint: "postgres://kfp:hunter2@/kfp?host=" + t.TempDir() + "&sslmode=disable"})
	if err == nil {
		t.Fatal("Open of an unreachable datastore succeeded")
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("Open took %v after its 2 s context", took)
	}
	t.Logf("error: %v", err)
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "kfp:xxxxx@") {
		t.Fatalf("error does not name the (redacted) datastore: %v", err)
	}
}
