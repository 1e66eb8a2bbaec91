package objects_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/storage/objects"
	"github.com/kfp-box/kfp-box/storage/objects/local"
)

func TestDescribe(t *testing.T) {
	ls, err := local.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	ctx := context.Background()
	for k, v := range map[string]string{"imp/file.csv": "a,b\n", "imp/dir/x": "12", "imp/dir/y/z": "345"} {
		if err := ls.Put(ctx, "mlpipeline", k, strings.NewReader(v), int64(len(v))); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		uri     string
		want    objects.Entry
		wantErr error
	}{
		{"minio://mlpipeline/imp/file.csv", objects.Entry{Objects: 1, Size: 4}, nil},
		{"s3://mlpipeline/imp/dir", objects.Entry{Folder: true, Objects: 2, Size: 5}, nil},
		{"s3://mlpipeline/imp/dir/", objects.Entry{Folder: true, Objects: 2, Size: 5}, nil},
		{"minio://mlpipeline/imp/none", objects.Entry{}, objects.ErrNotFound},
		{"minio://mlpipeline", objects.Entry{}, objects.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.uri, func(t *testing.T) {
			u, err := objects.ParseURI(tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			got, err := objects.Describe(ctx, ls, u)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Describe = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
