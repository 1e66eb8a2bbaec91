package wheelhouse_test

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/kfp-box/kfp-box/storage/wheelhouse"
)

// bigWheel is a valid wheel of about size bytes (one stored, incompressible file).
func bigWheel(b *testing.B, size int) []byte {
	b.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("big-1.0.dist-info/METADATA")
	_, _ = w.Write([]byte("Metadata-Version: 2.1\nName: big\nVersion: 1.0\n"))
	w, _ = zw.CreateHeader(&zip.FileHeader{Name: "big/blob.bin", Method: zip.Store})
	blob := make([]byte, size)
	_, _ = rand.Read(blob)
	_, _ = w.Write(blob)
	_ = zw.Close()
	return buf.Bytes()
}

// BenchmarkWheelDownload256MiB: a 256 MiB wheel downloaded from the box's index over
// loopback HTTP, against reading the same file from disk.
func BenchmarkWheelDownload256MiB(b *testing.B) {
	s, err := wheelhouse.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	data := bigWheel(b, 256<<20)
	f, err := s.Import("big-1.0-py3-none-any.whl", bytes.NewReader(data), "")
	if err != nil {
		b.Fatal(err)
	}
	srv := serveIndexB(b, s)
	b.Run("index", func(b *testing.B) {
		b.SetBytes(f.Size)
		for i := 0; i < b.N; i++ {
			resp, err := http.Get(srv + "/pypi/files/" + f.Name)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if n != f.Size {
				b.Fatalf("got %d bytes", n)
			}
		}
	})
	b.Run("raw-read", func(b *testing.B) {
		b.SetBytes(f.Size)
		for i := 0; i < b.N; i++ {
			fh, err := os.Open(s.Path(f.Name))
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, fh)
			fh.Close()
			if n != f.Size {
				b.Fatalf("got %d bytes", n)
			}
		}
	})
}
