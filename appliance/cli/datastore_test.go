package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/k8s"
	"github.com/kfp-box/kfp-box/internal/mysqltest"
	"github.com/kfp-box/kfp-box/internal/pgtest"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/meta"
)

func TestDatastoreMigrateUsage(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"neither", []string{"datastore", "migrate", "--data-dir", dir}, "exactly one of"},
		{"both", []string{"datastore", "migrate", "--data-dir", dir, "--to", "postgres://a@b/c", "--from", "postgres://a@b/c"}, "exactly one of"},
		{"empty --to", []string{"datastore", "migrate", "--data-dir", dir, "--to", ""}, "exactly one of"},
		{"unsupported scheme", []string{"datastore", "migrate", "--data-dir", dir, "--to", "redis://u:hunter2@h/0"}, "want postgres://"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runCLI(t, c.args...)
			if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), c.want) || strings.Contains(fmt.Sprint(err), "hunter2") {
				t.Fatalf("exit %d, error %v; want exit 2 mentioning %q without the password", exitCode(err), err, c.want)
			}
		})
	}
	// --to with no meta.db in the data directory: a failure, not a usage error.
	if _, err := runCLI(t, "datastore", "migrate", "--data-dir", dir, "--to", "postgres://u@/db?host=/nonexistent"); exitCode(err) != 1 {
		t.Fatalf("missing meta.db: exit %d (%v), want 1", exitCode(err), err)
	}
}

// fillBox writes metadata as a box does: the meta layout (schema, Default experiment,
// indexes) with runs and an experiment, plus Kubernetes secrets.
func fillBox(t *testing.T, s kv.Store) {
	t.Helper()
	ctx := context.Background()
	m, err := meta.Open(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	exp := &meta.Experiment{ID: "e1", DisplayName: "migrated", CreatedAt: time.Unix(1700000000, 0)}
	if err := m.CreateExperiment(ctx, exp); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 250; i++ {
		r := &meta.Run{ID: fmt.Sprintf("run-%03d", i), ExperimentID: "e1", DisplayName: fmt.Sprintf("run %d", i), StorageState: "AVAILABLE", State: "SUCCEEDED", CreatedAt: time.Unix(1700000000+int64(i), 0)}
		if err := m.CreateRun(ctx, r, []byte(`{"pipelineInfo":{"name":"p"}}`)); err != nil {
			t.Fatal(err)
		}
	}
	ks := k8s.NewStore(s)
	for i := 0; i < 3; i++ {
		o := &k8s.Object{Metadata: k8s.ObjectMeta{Name: fmt.Sprintf("test-secret-%d", i+1)}, Data: map[string][]byte{"key": []byte("\x00binary\xff")}}
		if _, err := ks.Create(ctx, "secrets", "kubeflow", o); err != nil {
			t.Fatal(err)
		}
	}
}

func digestOf(t *testing.T, id, path string) kv.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := kv.Open(ctx, id, kv.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sum, err := kv.Digest(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestDatastoreMigrateRoundTrip copies a box's bbolt store to PostgreSQL and back into a new
// data directory; every key survives both ways (count and digest), the metadata opens and
// lists on each side, and a second copy into the same datastore is refused.
func TestDatastoreMigrateRoundTrip(t *testing.T) {
	pg := pgtest.Require(t)
	sum := sha256.Sum256([]byte(t.Name()))
	testMigrateRoundTrip(t, pg.DSN("migrate_"+hex.EncodeToString(sum[:6])))
}

// TestDatastoreMigrateRoundTripMySQL is the same round trip through MariaDB (mysql://).
func TestDatastoreMigrateRoundTripMySQL(t *testing.T) {
	my := mysqltest.Require(t)
	testMigrateRoundTrip(t, my.DSN("migrate"))
}

func testMigrateRoundTrip(t *testing.T, url string) {
	ctx := context.Background()

	dir := t.TempDir()
	src, err := kv.Open(ctx, "bolt", kv.Options{Path: filepath.Join(dir, "meta.db")})
	if err != nil {
		t.Fatal(err)
	}
	fillBox(t, src)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	want := digestOf(t, "bolt", filepath.Join(dir, "meta.db"))
	if want.Keys < 500 {
		t.Fatalf("source holds only %d keys", want.Keys)
	}

	out, err := runCLI(t, "datastore", "migrate", "--data-dir", dir, "--to", url)
	if err != nil {
		t.Fatalf("migrate --to: %v\n%s", err, out)
	}
	if !strings.Contains(out, fmt.Sprintf("verified: both hold %d keys, sha256 %s", want.Keys, want.Digest)) {
		t.Fatalf("migrate --to output:\n%s\nwant the verification of %d keys %s", out, want.Keys, want.Digest)
	}
	if got := digestOf(t, "kine", url); got != want {
		t.Fatalf("the datastore holds %+v, want %+v", got, want)
	}

	// The migrated metadata works on the datastore: the runs list with their filter and order.
	pgs, err := kv.Open(ctx, "kine", kv.Options{Path: url})
	if err != nil {
		t.Fatal(err)
	}
	m, err := meta.Open(ctx, pgs, nil)
	if err != nil {
		t.Fatal(err)
	}
	page, err := m.ListRuns(ctx, "e1", meta.ListOptions{PageSize: 10, SortBy: "created_at desc", Filter: `{"predicates":[{"key":"state","operation":"EQUALS","string_value":"SUCCEEDED"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	if page.TotalSize != 250 || len(page.Items) != 10 || page.Items[0].ID != "run-249" {
		t.Fatalf("runs on the datastore: total %d, page %+v", page.TotalSize, page.Items)
	}
	sec, err := k8s.NewStore(pgs).Get(ctx, "secrets", "kubeflow", "test-secret-2")
	if err != nil || string(sec.Data["key"]) != "\x00binary\xff" {
		t.Fatalf("secret on the datastore: %v, %v", sec, err)
	}
	if err := pgs.Close(); err != nil {
		t.Fatal(err)
	}

	// A second copy into the same datastore is refused.
	if _, err := runCLI(t, "datastore", "migrate", "--data-dir", dir, "--to", url); exitCode(err) != 1 || !strings.Contains(err.Error(), "already holds metadata") {
		t.Fatalf("second migrate --to: %v, want a refusal", err)
	}

	// And back, into a new data directory.
	back := t.TempDir()
	out, err = runCLI(t, "datastore", "migrate", "--data-dir", back, "--from", url)
	if err != nil {
		t.Fatalf("migrate --from: %v\n%s", err, out)
	}
	if got := digestOf(t, "bolt", filepath.Join(back, "meta.db")); got != want {
		t.Fatalf("bbolt after the round trip holds %+v, want %+v", got, want)
	}
	if !strings.Contains(out, want.Digest) {
		t.Fatalf("migrate --from output lacks the digest:\n%s", out)
	}
}
