package s3

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/kfp-box/kfp-box/storage/objects"
	"github.com/kfp-box/kfp-box/storage/objects/objectstoretest"
	"github.com/kfp-box/kfp-box/storage/objects/s3server"
)

// server is the embedded S3 server all tests in this package share: versitygw allows one
// per process.
var server *s3server.Server

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kfpbox-s3-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	server, err = s3server.New(s3server.Options{
		Root:            filepath.Join(dir, "objects"),
		Listen:          "127.0.0.1:0",
		CredentialsFile: filepath.Join(dir, "s3-credentials.json"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := server.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	// An upload the tests broke on purpose may hold a connection open; do not wait for
	// the gateway's 10 s drain at exit.
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer stopCancel()
	start := time.Now()
	if err := server.Stop(stopCtx); err != nil {
		fmt.Fprintf(os.Stderr, "stop after %v: %v\n", time.Since(start), err)
	}
	return code
}

var bucketSeq atomic.Int64

// newStore opens the store the way serve does, from an --object-store URL, and makes a
// fresh bucket.
func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	access, secret := server.Credentials()
	bucket := fmt.Sprintf("test-%d", bucketSeq.Add(1))
	raw := fmt.Sprintf("s3://%s?endpoint=%s&access_key=%s&secret_key=%s", bucket, server.Endpoint(), access, secret)
	s, err := Open(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Client().MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	return s, bucket
}

func TestConformance(t *testing.T) {
	objectstoretest.Run(t, func(t *testing.T) (objects.Store, string) { return newStore(t) })
}

func TestWrongCredentials(t *testing.T) {
	_, bucket := newStore(t)
	s, err := Open(fmt.Sprintf("s3://%s?endpoint=%s&access_key=x&secret_key=y", bucket, server.Endpoint()), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Put(context.Background(), bucket, "k", strings.NewReader("x"), 1)
	if err == nil || errors.Is(err, objects.ErrNotFound) {
		t.Fatalf("Put with wrong credentials error = %v, want an access error", err)
	}
}

func TestParseURL(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "envkey")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
	tests := []struct {
		raw  string
		want Config
		ok   bool
	}{
		{"s3://mlpipeline?endpoint=http://127.0.0.1:8333", Config{Endpoint: "127.0.0.1:8333", Bucket: "mlpipeline", AccessKey: "envkey", SecretKey: "envsecret"}, true},
		{"s3://mlpipeline?endpoint=http://seaweed.lan:8333", Config{Endpoint: "seaweed.lan:8333", Bucket: "mlpipeline", AccessKey: "envkey", SecretKey: "envsecret", SignPayload: true}, true},
		{"s3://mlpipeline?endpoint=http://seaweed.lan:8333&sign_payload=false", Config{Endpoint: "seaweed.lan:8333", Bucket: "mlpipeline", AccessKey: "envkey", SecretKey: "envsecret"}, true},
		{"s3://mlpipeline?endpoint=http://127.0.0.1:1&sign_payload=true", Config{Endpoint: "127.0.0.1:1", Bucket: "mlpipeline", AccessKey: "envkey", SecretKey: "envsecret", SignPayload: true}, true},
		{"s3://mlpipeline?endpoint=http://127.0.0.1:1&sign_payload=maybe", Config{}, false},
		{"s3://bkt?endpoint=https://s3.example.com&region=eu-west-1&access_key=a&secret_key=b", Config{Endpoint: "s3.example.com", Secure: true, Bucket: "bkt", Region: "eu-west-1", AccessKey: "a", SecretKey: "b"}, true},
		{"s3://bkt?endpoint=minio.local:9000", Config{Endpoint: "minio.local:9000", Secure: true, Bucket: "bkt", AccessKey: "envkey", SecretKey: "envsecret"}, true},
		{"s3://bkt", Config{Endpoint: "s3.amazonaws.com", Secure: true, Bucket: "bkt", AccessKey: "envkey", SecretKey: "envsecret"}, true},
		{"s3://bkt?endpoint=http://h:1&part_size=8388608", Config{Endpoint: "h:1", Bucket: "bkt", AccessKey: "envkey", SecretKey: "envsecret", PartSize: 8 << 20, SignPayload: true}, true},
		{"minio://bkt?endpoint=http://h:1", Config{}, false},
		{"s3://../x?endpoint=http://h:1", Config{}, false},
		{"s3://bkt?endpoint=http://h:1/path", Config{}, false},
		{"s3://bkt?endpoint=http://h:1&part_size=10", Config{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := ParseURL(tc.raw)
			if !tc.ok {
				if !errors.Is(err, objects.ErrInvalid) {
					t.Fatalf("ParseURL error = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseURL = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://mlpipeline?endpoint=http://127.0.0.1:9000", "s3://b/x?endpoint=h:1&part_size=99999999", "s3://a..b", "s3://bkt?endpoint=http://[::1]:9000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		cfg, err := ParseURL(raw)
		if err != nil {
			return
		}
		if objects.ValidateBucket(cfg.Bucket) != nil || cfg.Endpoint == "" || strings.Contains(cfg.Endpoint, "/") {
			t.Fatalf("ParseURL(%q) accepted %+v", raw, cfg)
		}
	})
}

func TestSignedPayload(t *testing.T) {
	_, bucket := newStore(t)
	access, secret := server.Credentials()
	s, err := Open(fmt.Sprintf("s3://%s?endpoint=%s&access_key=%s&secret_key=%s&sign_payload=true", bucket, server.Endpoint(), access, secret), nil)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("signed ", 100_000)
	if err := s.Put(context.Background(), bucket, "signed.txt", strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatalf("signed Put: %v", err)
	}
	info, err := s.Stat(context.Background(), bucket, "signed.txt")
	if err != nil || info.Size != int64(len(body)) {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
}
