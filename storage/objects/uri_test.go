package objects

import (
	"errors"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    URI
		wantErr error
	}{
		{"minio object", "minio://mlpipeline/v2/artifacts/p/r/t/model", URI{Scheme: "minio", Bucket: "mlpipeline", Key: "v2/artifacts/p/r/t/model"}, nil},
		{"s3 object", "s3://my-bucket/a/b.csv", URI{Scheme: "s3", Bucket: "my-bucket", Key: "a/b.csv"}, nil},
		{"gs object", "gs://bkt/k", URI{Scheme: "gs", Bucket: "bkt", Key: "k"}, nil},
		{"bucket only", "minio://mlpipeline", URI{Scheme: "minio", Bucket: "mlpipeline"}, nil},
		{"trailing slash kept", "minio://mlpipeline/v2/", URI{Scheme: "minio", Bucket: "mlpipeline", Key: "v2/"}, nil},
		{"root with query", "minio://mlpipeline/v2/artifacts?region=us-east-1", URI{Scheme: "minio", Bucket: "mlpipeline", Key: "v2/artifacts", Query: "region=us-east-1"}, nil},
		{"dotdot", "minio://mlpipeline/a/../../etc/passwd", URI{}, ErrInvalid},
		{"dotdot only", "minio://mlpipeline/..", URI{}, ErrInvalid},
		{"dot segment", "minio://mlpipeline/a/./b", URI{}, ErrInvalid},
		{"absolute key", "minio://mlpipeline//etc/passwd", URI{}, ErrInvalid},
		{"empty segment", "minio://mlpipeline/a//b", URI{}, ErrInvalid},
		{"nul", "minio://mlpipeline/a\x00b", URI{}, ErrInvalid},
		{"bad utf8", "minio://mlpipeline/a\xffb", URI{}, ErrInvalid},
		{"reserved", "minio://mlpipeline/.sgwtmp/x", URI{}, ErrInvalid},
		{"bucket dotdot", "minio://../x", URI{}, ErrInvalid},
		{"bucket upper", "minio://Bucket/x", URI{}, ErrInvalid},
		{"bucket short", "minio://ab/x", URI{}, ErrInvalid},
		{"no scheme", "/tmp/x", URI{}, ErrInvalid},
		{"file scheme", "file:///etc/passwd", URI{}, ErrUnsupported},
		{"http scheme", "http://host/x", URI{}, ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseURI(tc.raw)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ParseURI(%q) error = %v, want %v", tc.raw, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURI(%q): %v", tc.raw, err)
			}
			if got != tc.want {
				t.Fatalf("ParseURI(%q) = %+v, want %+v", tc.raw, got, tc.want)
			}
			if got.String() != tc.raw {
				t.Fatalf("String() = %q, want %q", got.String(), tc.raw)
			}
		})
	}
}

func TestContainerPath(t *testing.T) {
	tests := []struct {
		uri, path string
	}{
		{"gs://b-1/k/x", "/gcs/b-1/k/x"},
		{"minio://mlpipeline/v2/artifacts/a", "/minio/mlpipeline/v2/artifacts/a"},
		{"s3://bkt/k", "/s3/bkt/k"},
		{"minio://mlpipeline", "/minio/mlpipeline"},
	}
	for _, tc := range tests {
		t.Run(tc.uri, func(t *testing.T) {
			u, err := ParseURI(tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ContainerPath(u)
			if err != nil || p != tc.path {
				t.Fatalf("ContainerPath(%q) = %q, %v; want %q", tc.uri, p, err, tc.path)
			}
			back, err := ParseContainerPath(p)
			if err != nil || back.String() != tc.uri {
				t.Fatalf("ParseContainerPath(%q) = %q, %v; want %q", p, back.String(), err, tc.uri)
			}
		})
	}
	for _, bad := range []string{"/tmp/x", "/minio/../etc", "/minio/mlpipeline/a/../b", "relative/minio/b/k", "/minio/mlpipeline/a\x00"} {
		if _, err := ParseContainerPath(bad); err == nil {
			t.Errorf("ParseContainerPath(%q) succeeded, want an error", bad)
		}
	}
	if _, err := ContainerPath(URI{Scheme: "oci", Bucket: "reg", Key: "x"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ContainerPath(oci) error = %v, want ErrUnsupported", err)
	}
}

func TestJoin(t *testing.T) {
	u := URI{Scheme: "minio", Bucket: "mlpipeline", Key: "v2/artifacts/"}
	if got := u.Join("pipe", "run-1/", "/task").String(); got != "minio://mlpipeline/v2/artifacts/pipe/run-1/task" {
		t.Fatalf("Join = %q", got)
	}
	if got := (URI{Scheme: "s3", Bucket: "bkt"}).Join("a").String(); got != "s3://bkt/a" {
		t.Fatalf("Join on bucket = %q", got)
	}
}

// FuzzParseURI checks that whatever ParseURI accepts is safe to turn into a file path:
// no escaping segment, no NUL, and a stable round trip.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"minio://mlpipeline/v2/a", "s3://b-b/../x", "gs://bkt/a//b", "minio://mlpipeline/a?x=1", "minio://mlpipeline/\x00", "s3://x.y.z/./a/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := ParseURI(raw)
		if err != nil {
			return
		}
		for _, seg := range strings.Split(u.Key, "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("accepted %q with segment %q", raw, seg)
			}
		}
		if strings.ContainsRune(u.Key, 0) || strings.HasPrefix(u.Key, "/") {
			t.Fatalf("accepted unsafe key %q", u.Key)
		}
		again, err := ParseURI(u.String())
		if err != nil || again != u {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", raw, again, err, u)
		}
		p, err := ContainerPath(u)
		if err != nil {
			t.Fatalf("ContainerPath(%+v): %v", u, err)
		}
		back, err := ParseContainerPath(p)
		if err != nil {
			t.Fatalf("ParseContainerPath(%q): %v", p, err)
		}
		if back.Bucket != u.Bucket || back.Key != strings.TrimSuffix(u.Key, "/") {
			t.Fatalf("container path round trip %q -> %q -> %+v", raw, p, back)
		}
	})
}
