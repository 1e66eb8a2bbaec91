package s3

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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

// server describes the S3 server all tests in this package share. It runs in another
// process (this test binary re-executed with KFPBOX_S3_TEST_SERVER=1): external mode
// talks to a separate server, and the gateway's process-wide state (one instance, its
// working directory) stays out of the tests' process.
var server struct {
	endpoint, access, secret string
}

const infoPrefix = "KFPBOX_S3_TEST_SERVER "

type serverInfo struct {
	Endpoint string `json:"endpoint"`
	Access   string `json:"access"`
	Secret   string `json:"secret"`
}

func TestMain(m *testing.M) {
	if os.Getenv("KFPBOX_S3_TEST_SERVER") == "1" {
		os.Exit(serveChild())
	}
	os.Exit(runMain(m))
}

// serveChild runs the embedded server, prints its endpoint and credentials as one JSON
// line, and stops when stdin closes (the parent exited or is done).
func serveChild() int {
	dir, err := os.MkdirTemp("", "kfpbox-s3-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	srv, err := s3server.New(s3server.Options{
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
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	access, secret := srv.Credentials()
	b, err := json.Marshal(serverInfo{srv.Endpoint(), access, secret})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The gateway prints its own lines to stdout; ours carries a prefix.
	fmt.Printf("%s%s\n", infoPrefix, b)
	_, _ = io.Copy(io.Discard, os.Stdin)
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer stopCancel()
	_ = srv.Stop(stopCtx)
	return 0
}

func runMain(m *testing.M) int {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KFPBOX_S3_TEST_SERVER=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	var info serverInfo
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), infoPrefix); ok {
			if err := json.Unmarshal([]byte(line), &info); err != nil {
				fmt.Fprintln(os.Stderr, "S3 server process:", err)
				return 1
			}
			break
		}
	}
	if info.Endpoint == "" {
		fmt.Fprintln(os.Stderr, "S3 server process exited without an endpoint")
		return 1
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	server.endpoint, server.access, server.secret = info.Endpoint, info.Access, info.Secret
	return m.Run()
}

var bucketSeq atomic.Int64

// newStore opens the store the way serve does, from an --object-store URL, and makes a
// fresh bucket.
func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	bucket := fmt.Sprintf("test-%d", bucketSeq.Add(1))
	raw := fmt.Sprintf("s3://%s?endpoint=%s&access_key=%s&secret_key=%s", bucket, server.endpoint, server.access, server.secret)
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
	s, err := Open(fmt.Sprintf("s3://%s?endpoint=%s&access_key=x&secret_key=y", bucket, server.endpoint), nil)
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
	s, err := Open(fmt.Sprintf("s3://%s?endpoint=%s&access_key=%s&secret_key=%s&sign_payload=true", bucket, server.endpoint, server.access, server.secret), nil)
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

// TestConformanceExternal runs the suite against any S3 server, e.g. SeaweedFS:
//
//	weed server -dir=D -ip=127.0.0.1 -s3 -s3.port=8333
//	KFPBOX_TEST_S3_URL='s3://ignored?endpoint=http://127.0.0.1:8333' go test ./storage/objects/s3
//
// Each subtest creates its own bucket on that server.
func TestConformanceExternal(t *testing.T) {
	raw := os.Getenv("KFPBOX_TEST_S3_URL")
	if raw == "" {
		t.Skip("no external S3 server: set KFPBOX_TEST_S3_URL='s3://any?endpoint=URL[&access_key=..&secret_key=..]' to run the suite against one")
	}
	cfg, err := ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	run := time.Now().UnixNano() % 1_000_000
	objectstoretest.Run(t, func(t *testing.T) (objects.Store, string) {
		s, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		bucket := fmt.Sprintf("kfpbox-%d-%d", run, bucketSeq.Add(1))
		if err := s.Client().MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
			t.Fatal(err)
		}
		return s, bucket
	})
}
