package s3server

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

const benchSize = 256 << 20

// BenchmarkS3PutGet256MiB measures S3 PUT and GET of a 256 MiB object through the
// embedded server with minio-go, against raw disk write and read of the same bytes in the
// same directory in the same run. Every write ends with an fsync of the resulting file
// (the gateway does not sync by itself), so PUT and write both measure bytes on disk and
// the page cache's dirty-page throttling does not make either look better than it is.
// "s3-put" is minio-go's default (signed payload, 64 MiB parts); "s3-put-unsigned" is a
// single unsigned PUT, as clients on a trusted loopback can choose.
func BenchmarkS3PutGet256MiB(b *testing.B) {
	data := b.TempDir()
	srv, err := New(Options{
		Root:            filepath.Join(data, "objects"),
		Listen:          "127.0.0.1:0",
		CredentialsFile: filepath.Join(data, "s3-credentials.json"),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer srv.Stop(context.Background())
	cl, err := srv.Client()
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, benchSize)
	if _, err := rand.Read(payload); err != nil {
		b.Fatal(err)
	}
	bucketDir := filepath.Join(data, "objects", DefaultBucket)
	rawPath := filepath.Join(bucketDir, "raw.bin")
	res := map[string]float64{} // MB/s

	mbps := func(b *testing.B) float64 {
		return float64(benchSize) * float64(b.N) / b.Elapsed().Seconds() / 1e6
	}
	syncFile := func(b *testing.B, p string) {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	puts := map[string]minio.PutObjectOptions{
		"s3-put":          {PartSize: 64 << 20},
		"s3-put-unsigned": {DisableMultipart: true, DisableContentSha256: true},
	}
	for _, name := range []string{"s3-put", "s3-put-unsigned"} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				if _, err := cl.PutObject(context.Background(), DefaultBucket, "bench.bin", bytes.NewReader(payload), benchSize, puts[name]); err != nil {
					b.Fatal(err)
				}
				syncFile(b, filepath.Join(bucketDir, "bench.bin"))
			}
			res[name] = mbps(b)
		})
	}
	b.Run("disk-write", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			f, err := os.Create(rawPath)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Write(payload); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		res["disk-write"] = mbps(b)
	})
	b.Run("s3-get", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			obj, err := cl.GetObject(context.Background(), DefaultBucket, "bench.bin", minio.GetObjectOptions{})
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, obj)
			obj.Close()
			if err != nil || n != benchSize {
				b.Fatalf("GET read %d bytes: %v", n, err)
			}
		}
		res["s3-get"] = mbps(b)
	})
	b.Run("disk-read", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			f, err := os.Open(rawPath)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, f)
			f.Close()
			if err != nil || n != benchSize {
				b.Fatalf("read %d bytes: %v", n, err)
			}
		}
		res["disk-read"] = mbps(b)
	})
	if len(res) == 5 {
		fmt.Printf("BENCH s3-put-256MiB s3=%.0fMB/s s3-unsigned=%.0fMB/s disk-write=%.0fMB/s ratio=%.2f ratio-unsigned=%.2f\n",
			res["s3-put"], res["s3-put-unsigned"], res["disk-write"], res["s3-put"]/res["disk-write"], res["s3-put-unsigned"]/res["disk-write"])
		fmt.Printf("BENCH s3-get-256MiB s3=%.0fMB/s disk-read=%.0fMB/s ratio=%.2f (both from the page cache)\n",
			res["s3-get"], res["disk-read"], res["s3-get"]/res["disk-read"])
	}
}
