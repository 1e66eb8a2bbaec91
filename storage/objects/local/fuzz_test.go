package local

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLocalPath checks that every bucket and key LocalPath accepts maps below the bucket's
// directory, never onto the root, another bucket's reserved area or outside.
func FuzzLocalPath(f *testing.F) {
	for _, k := range []string{"a/b", "../x", "a/../../x", "/abs", "a//b", "a\x00", ".sgwtmp/x", "a/.", "..", "dir/"} {
		f.Add("mlpipeline", k)
	}
	f.Add("..", "x")
	s, err := New(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, bucket, key string) {
		p, err := s.LocalPath(bucket, key)
		if err != nil {
			return
		}
		rel, err := filepath.Rel(filepath.Join(s.Dir(), bucket), p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
			t.Fatalf("LocalPath(%q, %q) = %q escapes the bucket (rel %q)", bucket, key, p, rel)
		}
		if key != "" && (rel == "." || rel == ".sgwtmp" || strings.HasPrefix(rel, ".sgwtmp/")) {
			t.Fatalf("LocalPath(%q, %q) = %q is the bucket itself or its reserved area", bucket, key, p)
		}
	})
}
