package s3server

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kfp-box/kfp-box/storage/objects"
)

func startServer(t *testing.T, data string) *Server {
	t.Helper()
	srv, err := New(Options{
		Root:            filepath.Join(data, "objects"),
		Listen:          "127.0.0.1:0",
		CredentialsFile: filepath.Join(data, "s3-credentials.json"),
		EndpointFile:    filepath.Join(data, "s3-endpoint"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return srv
}

func client(t *testing.T, srv *Server) *minio.Client {
	t.Helper()
	cl, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func readObject(t *testing.T, cl *minio.Client, bucket, key string, opts minio.GetObjectOptions) []byte {
	t.Helper()
	obj, err := cl.GetObject(context.Background(), bucket, key, opts)
	if err != nil {
		t.Fatalf("GetObject(%q): %v", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("GetObject(%q) read: %v", key, err)
	}
	return b
}

// TestEmbeddedS3 is the acceptance test of the embedded server with a real S3 client:
// put, get, multipart, list, range, delete, wrong credentials, and files written straight
// to disk served at once.
func TestEmbeddedS3(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, data)
	cl := client(t, srv)
	ctx := context.Background()

	t.Run("DefaultBucketExists", func(t *testing.T) {
		ok, err := cl.BucketExists(ctx, DefaultBucket)
		if err != nil || !ok {
			t.Fatalf("BucketExists(%q) = %v, %v", DefaultBucket, ok, err)
		}
		if fi, err := os.Stat(filepath.Join(data, "objects", DefaultBucket)); err != nil || !fi.IsDir() {
			t.Fatalf("bucket directory: %v", err)
		}
	})

	t.Run("CredentialsFile", func(t *testing.T) {
		path := filepath.Join(data, "s3-credentials.json")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("credentials file mode = %v, want 0600", fi.Mode().Perm())
		}
		c, err := LoadCredentials(path)
		if err != nil {
			t.Fatal(err)
		}
		access, secret := srv.Credentials()
		if c.AccessKey != access || c.SecretKey != secret || len(secret) < 32 {
			t.Fatalf("stored credentials %+v do not match the server's (%s)", c, access)
		}
		if ep, err := LoadEndpoint(filepath.Join(data, "s3-endpoint")); err != nil || ep != srv.Endpoint() {
			t.Fatalf("recorded endpoint = %q, %v; want %s", ep, err, srv.Endpoint())
		}
	})

	t.Run("PutGetStat", func(t *testing.T) {
		body := randBytes(t, 100_000)
		if _, err := cl.PutObject(ctx, DefaultBucket, "a/b/obj.bin", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{ContentType: "application/octet-stream"}); err != nil {
			t.Fatalf("PutObject: %v", err)
		}
		if got := readObject(t, cl, DefaultBucket, "a/b/obj.bin", minio.GetObjectOptions{}); !bytes.Equal(got, body) {
			t.Fatalf("GetObject returned %d bytes, want %d", len(got), len(body))
		}
		st, err := cl.StatObject(ctx, DefaultBucket, "a/b/obj.bin", minio.StatObjectOptions{})
		if err != nil || st.Size != int64(len(body)) {
			t.Fatalf("StatObject = %d, %v", st.Size, err)
		}
		// It is a plain file at the expected place.
		disk, err := os.ReadFile(filepath.Join(data, "objects", DefaultBucket, "a", "b", "obj.bin"))
		if err != nil || !bytes.Equal(disk, body) {
			t.Fatalf("file on disk: %v", err)
		}
	})

	t.Run("Range", func(t *testing.T) {
		body := []byte("0123456789abcdefghij")
		if _, err := cl.PutObject(ctx, DefaultBucket, "range.txt", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		var opts minio.GetObjectOptions
		if err := opts.SetRange(5, 9); err != nil {
			t.Fatal(err)
		}
		if got := string(readObject(t, cl, DefaultBucket, "range.txt", opts)); got != "56789" {
			t.Fatalf("range 5-9 = %q", got)
		}
	})

	t.Run("Multipart", func(t *testing.T) {
		body := randBytes(t, 12<<20+5)
		// Unknown size with a 5 MiB part size forces a three-part multipart upload.
		info, err := cl.PutObject(ctx, DefaultBucket, "multi/part.bin", bytes.NewReader(body), -1, minio.PutObjectOptions{PartSize: 5 << 20})
		if err != nil {
			t.Fatalf("multipart PutObject: %v", err)
		}
		if !strings.HasSuffix(strings.Trim(info.ETag, "\""), "-3") {
			t.Errorf("ETag %q does not name 3 parts; was it a multipart upload?", info.ETag)
		}
		if got := readObject(t, cl, DefaultBucket, "multi/part.bin", minio.GetObjectOptions{}); !bytes.Equal(got, body) {
			t.Fatalf("multipart object read back %d bytes, want %d", len(got), len(body))
		}
	})

	t.Run("ListAndDelete", func(t *testing.T) {
		for _, k := range []string{"list/x", "list/y/z", "list/y/w"} {
			if _, err := cl.PutObject(ctx, DefaultBucket, k, strings.NewReader(k), int64(len(k)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for o := range cl.ListObjects(ctx, DefaultBucket, minio.ListObjectsOptions{Prefix: "list/", Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			got = append(got, o.Key)
		}
		if strings.Join(got, ",") != "list/x,list/y/w,list/y/z" {
			t.Fatalf("ListObjects = %v", got)
		}
		if err := cl.RemoveObject(ctx, DefaultBucket, "list/y/z", minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.StatObject(ctx, DefaultBucket, "list/y/z", minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
			t.Fatalf("StatObject after delete: %v, want NoSuchKey", err)
		}
		if _, err := os.Stat(filepath.Join(data, "objects", DefaultBucket, "list", "y", "z")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("file still on disk after delete: %v", err)
		}
	})

	t.Run("WrongCredentialsRefused", func(t *testing.T) {
		access, _ := srv.Credentials()
		for name, creds := range map[string]*credentials.Credentials{
			"wrong secret": credentials.NewStaticV4(access, "not-the-secret-not-the-secret-000000", ""),
			"wrong key":    credentials.NewStaticV4("NOSUCHKEY", "whatever-whatever-whatever", ""),
			"anonymous":    credentials.NewStaticV4("", "", ""),
		} {
			bad, err := minio.New(strings.TrimPrefix(srv.Endpoint(), "http://"), &minio.Options{Creds: creds, Region: srv.Region()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bad.PutObject(ctx, DefaultBucket, "evil", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err == nil {
				t.Errorf("%s: PutObject succeeded", name)
			}
			if _, err := bad.StatObject(ctx, DefaultBucket, "a/b/obj.bin", minio.StatObjectOptions{}); err == nil {
				t.Errorf("%s: StatObject succeeded", name)
			}
			if _, err := bad.ListBuckets(ctx); err == nil {
				t.Errorf("%s: ListBuckets succeeded", name)
			}
		}
		if _, err := os.Stat(filepath.Join(data, "objects", DefaultBucket, "evil")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused PUT left a file: %v", err)
		}
	})

	t.Run("FilesWrittenOnDiskAreObjects", func(t *testing.T) {
		// What a task does: write into its mounted output directory, no S3 involved.
		dir := filepath.Join(data, "objects", DefaultBucket, "v2", "artifacts", "p", "run", "task")
		if err := os.MkdirAll(filepath.Join(dir, "model"), 0o755); err != nil {
			t.Fatal(err)
		}
		body := randBytes(t, 70_000)
		if err := os.WriteFile(filepath.Join(dir, "model", "weights.bin"), body, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "metrics.json"), []byte(`{"acc":0.9}`), 0o644); err != nil {
			t.Fatal(err)
		}
		// An in-flight write of the local store is not an object.
		tmp := filepath.Join(data, "objects", DefaultBucket, objects.ReservedPrefix)
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, "put-1-2"), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		key := "v2/artifacts/p/run/task/model/weights.bin"
		if got := readObject(t, cl, DefaultBucket, key, minio.GetObjectOptions{}); !bytes.Equal(got, body) {
			t.Fatalf("GetObject of a file written on disk returned %d bytes, want %d", len(got), len(body))
		}
		st, err := cl.StatObject(ctx, DefaultBucket, key, minio.StatObjectOptions{})
		if err != nil || st.Size != int64(len(body)) {
			t.Fatalf("StatObject = %+v, %v", st, err)
		}
		var got []string
		for o := range cl.ListObjects(ctx, DefaultBucket, minio.ListObjectsOptions{Prefix: "v2/artifacts/p/run/task/", Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			got = append(got, o.Key)
		}
		if strings.Join(got, ",") != "v2/artifacts/p/run/task/metrics.json,"+key {
			t.Fatalf("ListObjects = %v", got)
		}
		for o := range cl.ListObjects(ctx, DefaultBucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			if strings.HasPrefix(o.Key, objects.ReservedPrefix) {
				t.Fatalf("ListObjects shows the temporary file %q", o.Key)
			}
		}
	})

	t.Run("PlainDirectoryIsABucket", func(t *testing.T) {
		// The local store (or an operator) may create a bucket as a plain directory.
		dir := filepath.Join(data, "objects", "made-on-disk", "k")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte("on disk"), 0o644); err != nil {
			t.Fatal(err)
		}
		if ok, err := cl.BucketExists(ctx, "made-on-disk"); err != nil || !ok {
			t.Fatalf("BucketExists = %v, %v", ok, err)
		}
		if got := string(readObject(t, cl, "made-on-disk", "k/f.txt", minio.GetObjectOptions{})); got != "on disk" {
			t.Fatalf("GetObject = %q", got)
		}
		buckets, err := cl.ListBuckets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, b := range buckets {
			names = append(names, b.Name)
		}
		if !strings.Contains(strings.Join(names, ","), "made-on-disk") {
			t.Fatalf("ListBuckets = %v, want made-on-disk among them", names)
		}
	})

	t.Run("TraversalRejected", func(t *testing.T) {
		secret := filepath.Join(data, "outside.txt")
		if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"../../outside.txt", "../outside.txt", "a/../../../outside.txt"} {
			obj, err := cl.GetObject(ctx, DefaultBucket, key, minio.GetObjectOptions{})
			if err == nil {
				b, rerr := io.ReadAll(obj)
				obj.Close()
				if rerr == nil && bytes.Contains(b, []byte("secret")) {
					t.Fatalf("GetObject(%q) read a file outside the root", key)
				}
			}
		}
	})
}

func TestRestartKeepsCredentials(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, data)
	a1, s1 := srv.Credentials()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	srv2 := startServer(t, data)
	a2, s2 := srv2.Credentials()
	if a1 != a2 || s1 != s2 {
		t.Fatalf("credentials changed across restarts: %s -> %s", a1, a2)
	}
	if ok, err := client(t, srv2).BucketExists(ctx, DefaultBucket); err != nil || !ok {
		t.Fatalf("BucketExists after restart = %v, %v", ok, err)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"no root", Options{CredentialsFile: "/x/c.json"}},
		{"public without credentials", Options{Root: "/tmp/o", Listen: "0.0.0.0:9000", CredentialsFile: "/x/c.json"}},
		{"half credentials", Options{Root: "/tmp/o", AccessKey: "a"}},
		{"bad listen", Options{Root: "/tmp/o", Listen: "nonsense", CredentialsFile: "/x/c.json"}},
		{"no credentials at all", Options{Root: "/tmp/o"}},
		{"bad bucket", Options{Root: "/tmp/o", CredentialsFile: "/x/c.json", Buckets: []string{"../x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts); !errors.Is(err, objects.ErrInvalid) {
				t.Fatalf("New(%+v) error = %v, want ErrInvalid", tc.opts, err)
			}
		})
	}
	if _, err := New(Options{Root: "/tmp/o", Listen: "0.0.0.0:9000", AccessKey: "admin", SecretKey: "a-long-secret-key"}); err != nil {
		t.Fatalf("public address with explicit credentials: %v", err)
	}
}

func TestStartFailsOnBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := t.TempDir()
	srv, err := New(Options{
		Root:            filepath.Join(data, "objects"),
		Listen:          ln.Addr().String(),
		CredentialsFile: filepath.Join(data, "s3-credentials.json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Start on a busy port = %v (context %v), want a prompt bind error", err, ctx.Err())
	}
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("Stop after a failed Start: %v", err)
	}
	// The gateway slot is free again: a server on a free port starts.
	startServer(t, t.TempDir())
}

// TestCredentialsWrittenOnce restarts a server on another port: the credentials file is
// read, never rewritten (a rewrite on a full disk kept the box from starting), and only
// the endpoint file follows the new port.
func TestCredentialsWrittenOnce(t *testing.T) {
	data := t.TempDir()
	path := filepath.Join(data, "s3-credentials.json")
	first := startServer(t, data)
	stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := first.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi1, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	second := startServer(t, data)
	after, _ := os.ReadFile(path)
	fi2, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(fi1, fi2) || !fi1.ModTime().Equal(fi2.ModTime()) || !bytes.Equal(before, after) {
		t.Errorf("a restart rewrote the credentials file:\n%s\n→\n%s", before, after)
	}
	if a1, _ := first.Credentials(); a1 == "" {
		t.Fatal("no access key")
	} else if a2, _ := second.Credentials(); a2 != a1 {
		t.Errorf("access key changed across a restart: %s → %s", a1, a2)
	}
	if ep, err := LoadEndpoint(filepath.Join(data, "s3-endpoint")); err != nil || ep != second.Endpoint() {
		t.Errorf("recorded endpoint = %q, %v; want the restarted server's %s", ep, err, second.Endpoint())
	}
}

// TestSymlinkOutOfRootNotServed plants the links a task could leave in its outputs,
// pointing out of the object root (at the box's credentials, at a system file), and reads
// them over S3: the server must not serve what they point at.
func TestSymlinkOutOfRootNotServed(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, data)
	cl := client(t, srv)
	outside := filepath.Join(t.TempDir(), "outside-secret")
	if err := os.WriteFile(outside, []byte("OUTSIDE-SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(data, "objects", DefaultBucket, "run", "task")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"file":  outside,
		"dir":   filepath.Dir(outside),
		"creds": filepath.Join(data, "s3-credentials.json"),
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, key := range []string{"run/task/file", "run/task/dir/outside-secret", "run/task/creds"} {
		obj, err := cl.GetObject(ctx, DefaultBucket, key, minio.GetObjectOptions{})
		if err != nil {
			continue
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err == nil && (bytes.Contains(b, []byte("OUTSIDE-SECRET")) || bytes.Contains(b, []byte("secret_key"))) {
			t.Errorf("GET %s served what the link points at, out of the root: %q", key, b)
		}
	}
	for obj := range cl.ListObjects(ctx, DefaultBucket, minio.ListObjectsOptions{Prefix: "run/", Recursive: true}) {
		if obj.Err == nil && strings.Contains(obj.Key, "outside-secret") {
			t.Errorf("listing followed a link out of the root: %s", obj.Key)
		}
	}
	// Writes and deletes through a link must not reach out of the root either.
	if _, err := cl.PutObject(ctx, DefaultBucket, "run/task/dir/planted", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err == nil {
		t.Error("PUT through a link out of the root succeeded")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(outside), "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a PUT wrote out of the root (%v)", err)
	}
	_ = cl.RemoveObject(ctx, DefaultBucket, "run/task/dir/outside-secret", minio.RemoveObjectOptions{})
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("a DELETE removed a file out of the root: %v", err)
	}
	// A link inside the root is served.
	if _, err := cl.PutObject(ctx, DefaultBucket, "run/real", strings.NewReader("inside"), 6, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../real", filepath.Join(dir, "inside")); err != nil {
		t.Fatal(err)
	}
	if got := readObject(t, cl, DefaultBucket, "run/task/inside", minio.GetObjectOptions{}); string(got) != "inside" {
		t.Errorf("a link inside the root served %q", got)
	}
}

// TestNULKeyRefused: a key with a NUL byte, which no file can be named after, answers 400,
// not 500, for reads and writes.
func TestNULKeyRefused(t *testing.T) {
	srv := startServer(t, t.TempDir())
	cl := client(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := cl.PutObject(ctx, DefaultBucket, "run/a\x00b", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	if resp := minio.ToErrorResponse(err); err == nil || resp.StatusCode != 400 {
		t.Fatalf("PUT of a NUL key: %v (HTTP %d), want 400", err, resp.StatusCode)
	}
	_, err = cl.StatObject(ctx, DefaultBucket, "run/a\x00b", minio.StatObjectOptions{})
	if resp := minio.ToErrorResponse(err); err == nil || resp.StatusCode != 400 {
		t.Fatalf("HEAD of a NUL key: %v (HTTP %d), want 400", err, resp.StatusCode)
	}
}
