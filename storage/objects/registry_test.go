package objects_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/internal/registry"
	"github.com/kfp-box/kfp-box/storage/objects"
	_ "github.com/kfp-box/kfp-box/storage/objects/local"
	_ "github.com/kfp-box/kfp-box/storage/objects/s3"
)

// TestRegistry opens the registered backends by id: the embedded store keeps its buckets
// under DataDir/objects; an s3 URL is parsed by the s3 backend; an unknown id names the
// registered ones.
func TestRegistry(t *testing.T) {
	ctx := context.Background()
	if got := objects.Registered(); !reflect.DeepEqual(got, []string{"embedded", "s3"}) {
		t.Fatalf("Registered() = %v", got)
	}
	dir := t.TempDir()
	st, err := objects.Open(ctx, "embedded", objects.Options{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "mlpipeline", "a/b.txt", bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "objects", "mlpipeline", "a", "b.txt")); err != nil {
		t.Errorf("the embedded store did not write under DataDir/objects: %v", err)
	}
	sec := func(raw string) registry.Section {
		s := objects.Backends().NewSection("s3").(registry.URLSection)
		if err := s.FromURL(raw); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, err := objects.Open(ctx, "s3", objects.Options{}, sec("s3://bkt?endpoint=http://127.0.0.1:9&access_key=a&secret_key=b")); err != nil {
		t.Errorf("s3 backend: %v", err)
	}
	if _, err := objects.Open(ctx, "s3", objects.Options{}, sec("s3://bkt?endpoint=http://h/with/path&secret_key=hunter2")); !errors.Is(err, objects.ErrInvalid) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("s3 backend with a bad endpoint: %v, want ErrInvalid without the secret", err)
	}
	if _, err := objects.Open(ctx, "s3", objects.Options{}, nil); !errors.Is(err, objects.ErrInvalid) || !strings.Contains(err.Error(), "bucket is empty") {
		t.Errorf("s3 backend without a bucket: %v, want ErrInvalid", err)
	}
	if objects.Backends().NewSection("embedded") != nil {
		t.Error("the embedded store has a settings section")
	}
	_, err = objects.Open(ctx, "gs", objects.Options{}, nil)
	if !errors.Is(err, objects.ErrUnsupported) || !strings.Contains(err.Error(), "[embedded s3]") {
		t.Errorf("unknown backend: %v", err)
	}
}
