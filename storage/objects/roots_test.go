package objects_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/kfp-box/kfp-box/storage/objects"
	"github.com/kfp-box/kfp-box/storage/objects/local"
)

func TestPipelineRoot(t *testing.T) {
	ls, err := local.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	r := objects.Resolver{Store: ls}
	tests := []struct {
		name, runtime, spec, want string
		wantErr                   error
	}{
		{"box default", "", "", "minio://mlpipeline/v2/artifacts", nil},
		{"spec default", "", "s3://bkt/roots/", "s3://bkt/roots", nil},
		{"runtime wins", "minio://other/x", "s3://bkt/roots", "minio://other/x", nil},
		{"query kept", "minio://mlpipeline/v2?region=us-east-1", "", "minio://mlpipeline/v2?region=us-east-1", nil},
		{"gs refused", "gs://my-gcs/root", "", "", objects.ErrUnsupported},
		{"traversal", "minio://mlpipeline/../x", "", "", objects.ErrInvalid},
		{"http", "http://example.com/x", "", "", objects.ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := r.PipelineRoot(tc.runtime, tc.spec)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || u.String() != tc.want {
				t.Fatalf("PipelineRoot = %q, %v; want %q", u.String(), err, tc.want)
			}
		})
	}
	gcs, err := local.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gcs.Close()
	r.GCS = gcs
	if s, _, err := r.Resolve("gs://my-gcs/root"); err != nil || s != objects.Store(gcs) {
		t.Fatalf("configured gs:// root: %v", err)
	}
}

func TestBind(t *testing.T) {
	ls, err := local.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	u, _ := objects.ParseURI("s3://mlpipeline/v2/artifacts/p/r/t/model")
	b, ok, err := objects.Bind(ls, u, true)
	if err != nil || !ok {
		t.Fatalf("Bind = %v, %v", ok, err)
	}
	want := objects.Binding{HostPath: filepath.Join(ls.Dir(), "mlpipeline/v2/artifacts/p/r/t/model"), ContainerPath: "/s3/mlpipeline/v2/artifacts/p/r/t/model", ReadOnly: true}
	if b != want {
		t.Fatalf("Bind = %+v, want %+v", b, want)
	}
	// The same bucket under minio:// is the same file.
	m, _ := objects.ParseURI("minio://mlpipeline/v2/artifacts/p/r/t/model")
	if bm, _, _ := objects.Bind(ls, m, false); bm.HostPath != b.HostPath || bm.ContainerPath != "/minio/mlpipeline/v2/artifacts/p/r/t/model" {
		t.Fatalf("minio Bind = %+v", bm)
	}
	if _, ok, err := objects.Bind(remoteOnly{ls}, u, true); ok || err != nil {
		t.Fatalf("Bind on a store without LocalPath = %v, %v; want false, nil", ok, err)
	}
}

// remoteOnly hides LocalPath, as a remote store would.
type remoteOnly struct{ objects.Store }
