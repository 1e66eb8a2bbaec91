package objects_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/storage/objects"
	"github.com/kfp-box/kfp-box/storage/objects/local"
)

func TestReclaim(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) *local.Store {
		ls, err := local.New(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ls.Close() })
		for key, size := range map[string]int{
			"v2/artifacts/p/run-1/train/uuid1/model/w.bin":         1000,
			"v2/artifacts/p/run-1/train/uuid1/metrics":             10,
			"v2/artifacts/p/run-1/prep/uuid2/data.csv":             300,
			"v2/artifacts/p/run-1/prep/uuid2/output_metadata.json": 5,
			"v2/artifacts/p/run-2/train/uuid3/model/w.bin":         2000,
		} {
			if err := ls.Put(ctx, "mlpipeline", key, bytes.NewReader(make([]byte, size)), int64(size)); err != nil {
				t.Fatal(err)
			}
		}
		return ls
	}
	run1 := "minio://mlpipeline/v2/artifacts/p/run-1"
	// run-2 hit the cache of run-1's prep task, so its cache entry still points there.
	keep := []string{"minio://mlpipeline/v2/artifacts/p/run-1/prep/uuid2/data.csv"}

	t.Run("DryRun", func(t *testing.T) {
		ls := setup(t)
		rep, err := objects.Reclaim(ctx, ls, []string{run1}, keep, true)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Objects != 3 || rep.Bytes != 1015 || rep.Items[0].Kept != 1 {
			t.Fatalf("dry run report = %+v, want 3 objects, 1015 bytes, 1 kept", rep)
		}
		all, _ := ls.List(ctx, "mlpipeline", "")
		if len(all) != 5 {
			t.Fatalf("dry run deleted something: %d objects left", len(all))
		}
	})
	t.Run("Delete", func(t *testing.T) {
		ls := setup(t)
		rep, err := objects.Reclaim(ctx, ls, []string{run1, run1 + "/train"}, keep, false)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Objects != 3 || rep.Bytes != 1015 {
			t.Fatalf("report = %+v, want 3 objects and 1015 bytes (overlaps counted once)", rep)
		}
		all, _ := ls.List(ctx, "mlpipeline", "")
		var keys []string
		for _, in := range all {
			keys = append(keys, in.Key)
		}
		if strings.Join(keys, ",") != "v2/artifacts/p/run-1/prep/uuid2/data.csv,v2/artifacts/p/run-2/train/uuid3/model/w.bin" {
			t.Fatalf("left %v", keys)
		}
	})
	t.Run("Refusals", func(t *testing.T) {
		ls := setup(t)
		for _, drop := range []string{"minio://mlpipeline", "minio://mlpipeline/", "minio://mlpipeline/../x"} {
			if _, err := objects.Reclaim(ctx, ls, []string{drop}, nil, false); !errors.Is(err, objects.ErrInvalid) {
				t.Errorf("Reclaim(%q) error = %v, want ErrInvalid", drop, err)
			}
		}
		all, _ := ls.List(ctx, "mlpipeline", "")
		if len(all) != 5 {
			t.Fatalf("a refused reclaim deleted objects: %d left", len(all))
		}
	})
}
