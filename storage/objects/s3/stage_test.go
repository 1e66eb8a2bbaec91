package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kfp-box/kfp-box/storage/objects"
)

// TestStageThroughS3 is external mode's data path: a task's outputs staged out to a real
// S3 server and a consumer's inputs staged back in, byte for byte.
func TestStageThroughS3(t *testing.T) {
	s, bucket := newStore(t)
	ctx := context.Background()
	src := t.TempDir()
	want := map[string][]byte{}
	for i := range 12 {
		b := make([]byte, 100_000+i)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		rel := fmt.Sprintf("dataset/shard-%02d.bin", i)
		want[rel] = b
		if err := os.MkdirAll(filepath.Join(src, "dataset"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, rel), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := objects.URI{Scheme: objects.SchemeS3, Bucket: bucket, Key: "v2/artifacts/pipe/run-1/producer"}
	if _, err := objects.StageOut(ctx, s, []objects.Transfer{{URI: root.Join("dataset"), Path: filepath.Join(src, "dataset")}}, objects.StageOptions{}); err != nil {
		t.Fatalf("StageOut: %v", err)
	}
	dst := t.TempDir()
	st, err := objects.StageIn(ctx, s, []objects.Transfer{{URI: root.Join("dataset"), Path: filepath.Join(dst, "in")}}, objects.StageOptions{Parallel: 4})
	if err != nil {
		t.Fatalf("StageIn: %v", err)
	}
	if st.Files != 12 {
		t.Fatalf("StageIn moved %d files, want 12", st.Files)
	}
	for rel, b := range want {
		got, err := os.ReadFile(filepath.Join(dst, "in", filepath.Base(rel)))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("staged file %q differs: %v", rel, err)
		}
	}
}
