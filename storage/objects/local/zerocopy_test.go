package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kfp-box/kfp-box/storage/objects"
)

func inode(t testing.TB, p string) (dev, ino uint64) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return uint64(st.Dev), st.Ino
}

// TestZeroCopyHandoff shows the hand-off the engine performs with this store: the
// producer writes into its bind-mounted task root, and the consumer's input binding is
// the very same file (same device and inode), reachable as an object at once; no byte is
// copied. With root and unshare(1) it also performs the real read-only bind mount in a
// private mount namespace and checks the inode seen through it.
func TestZeroCopyHandoff(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	taskRoot, err := objects.ParseURI("minio://mlpipeline/v2/artifacts/pipe/run-1/producer/5f1c")
	if err != nil {
		t.Fatal(err)
	}
	out := taskRoot.Join("model")

	// Producer: its task root is mounted read-write; the SDK writes Artifact.path there.
	prod, ok, err := objects.Bind(s, taskRoot, false)
	if err != nil || !ok {
		t.Fatalf("Bind(producer) = %v, %v", ok, err)
	}
	if err := os.MkdirAll(prod.HostPath, 0o755); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 1<<20)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	written := filepath.Join(prod.HostPath, "model")
	if err := os.WriteFile(written, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if want := "/minio/mlpipeline/v2/artifacts/pipe/run-1/producer/5f1c"; prod.ContainerPath != want {
		t.Fatalf("producer container path = %q, want %q", prod.ContainerPath, want)
	}

	// Consumer: its input artifact is bound read-only at KFP's path for the URI.
	cons, ok, err := objects.Bind(s, out, true)
	if err != nil || !ok {
		t.Fatalf("Bind(consumer) = %v, %v", ok, err)
	}
	pd, pi := inode(t, written)
	cd, ci := inode(t, cons.HostPath)
	if pd != cd || pi != ci {
		t.Fatalf("consumer binding %s is inode %d:%d, producer wrote %d:%d: a copy", cons.HostPath, cd, ci, pd, pi)
	}
	if cons.ContainerPath != "/minio/mlpipeline/v2/artifacts/pipe/run-1/producer/5f1c/model" || !cons.ReadOnly {
		t.Fatalf("consumer binding = %+v", cons)
	}

	// The same file is the object, at once.
	rc, err := s.Get(ctx, out.Bucket, out.Key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) {
		t.Fatal("object read differs from what the producer wrote")
	}

	t.Run("RealBindMount", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("bind mounts need root: run the tests as root to include this check")
		}
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skip("unshare(1) not installed (util-linux): install it to include this check")
		}
		target := filepath.Join(t.TempDir(), "minio-model")
		if err := os.WriteFile(target, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		script := fmt.Sprintf("mount --bind -o ro %q %q && mount -o remount,bind,ro %q && stat -c '%%d %%i' %q && cat %q > /dev/null && ! sh -c 'echo x >> %q' 2>/dev/null",
			cons.HostPath, target, target, target, target, target)
		cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script)
		outb, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bind mount in a private namespace: %v: %s", err, outb)
		}
		var dev, ino uint64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(outb)), "%d %d", &dev, &ino); err != nil {
			t.Fatalf("parse %q: %v", outb, err)
		}
		if dev != pd || ino != pi {
			t.Fatalf("through the bind mount the consumer sees inode %d:%d, the producer wrote %d:%d", dev, ino, pd, pi)
		}
	})
}

// BenchmarkHandoff1GiB compares the zero-copy hand-off of a 1 GiB artifact (what the
// engine does: stat the output, compute the consumer's binding) with cp of the same file.
// KFPBOX_BENCH_HANDOFF_MIB changes the size.
func BenchmarkHandoff1GiB(b *testing.B) {
	size := int64(1024) << 20
	if v := os.Getenv("KFPBOX_BENCH_HANDOFF_MIB"); v != "" {
		var mib int64
		if _, err := fmt.Sscan(v, &mib); err != nil || mib <= 0 {
			b.Fatalf("KFPBOX_BENCH_HANDOFF_MIB=%q: want a positive integer", v)
		}
		size = mib << 20
	}
	s, err := New(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	u, _ := objects.ParseURI("minio://mlpipeline/v2/artifacts/pipe/run-1/producer/5f1c/model")
	src, err := s.LocalPath(u.Bucket, u.Key)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := writeRandomFile(src, size); err != nil {
		b.Fatal(err)
	}
	var zeroNs, cpNs float64
	b.Run("zero-copy", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := s.Stat(context.Background(), u.Bucket, u.Key); err != nil {
				b.Fatal(err)
			}
			if _, ok, err := objects.Bind(s, u, true); err != nil || !ok {
				b.Fatal(err)
			}
		}
		zeroNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("cp", func(b *testing.B) {
		b.SetBytes(size)
		dst := filepath.Join(b.TempDir(), "copy")
		for b.Loop() {
			if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
				b.Fatalf("cp: %v: %s", err, out)
			}
			b.StopTimer()
			_ = os.Remove(dst)
			b.StartTimer()
		}
		cpNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	if zeroNs > 0 && cpNs > 0 {
		fmt.Printf("BENCH handoff-%dMiB zero-copy=%.1fus cp=%.1fms ratio=%.5f%% (goal < 1%%)\n",
			size>>20, zeroNs/1e3, cpNs/1e6, 100*zeroNs/cpNs)
	}
}

func writeRandomFile(p string, size int64) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	buf := make([]byte, 8<<20)
	if _, err := rand.Read(buf); err != nil {
		f.Close()
		return err
	}
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
