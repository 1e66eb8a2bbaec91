package containerd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kfp-box/kfp-box/runtime"
)

// BenchmarkPerTask measures one kfp-box task (Start, Wait, Delete of `true`) and, as its
// baseline in the same run, raw containerd create+start+wait+delete of the same container.
// `make bench` puts BenchmarkPerTask/kfp-box next to BenchmarkPerTask/raw-containerd (goal:
// at most 1.3×). BenchmarkPerTaskInterleaved measures the same ratio with the two
// interleaved, which is steadier on a loaded machine.
func BenchmarkPerTask(b *testing.B) {
	requireContainerd(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := client.New(env.daemon.Address(), client.WithDefaultNamespace("kfp-box"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	nctx := namespaces.WithNamespace(ctx, "kfp-box")
	img, err := c.GetImage(nctx, testImage)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("raw-containerd", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			rawTask(nctx, b, c, img, fmt.Sprintf("raw-%d-%d", os.Getpid(), i))
		}
	})
	b.Run("kfp-box", func(b *testing.B) {
		r := newRuntime(b, b.TempDir())
		defer r.Close()
		logs := b.TempDir()
		for i := 0; b.Loop(); i++ {
			boxTask(ctx, b, r, logs, fmt.Sprintf("kb-%d-%d", os.Getpid(), i))
		}
	})
}

// boxTask is one kfp-box task of `true`: Start, Wait, Delete.
func boxTask(ctx context.Context, b *testing.B, r runtime.Runtime, logs, id string) {
	tk, err := r.Start(ctx, runtime.TaskSpec{ID: id, Image: testImage, Args: []string{"true"}, LogPath: filepath.Join(logs, id+".log")})
	if err != nil {
		b.Fatal(err)
	}
	if st, err := tk.Wait(ctx); err != nil || st.Code != 0 {
		b.Fatalf("wait: %+v %v", st, err)
	}
	if err := tk.Delete(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPerTaskInterleaved compares one kfp-box task (Start, Wait, Delete: image check, log binary,
// init as PID 1, recorded exit) with raw containerd create+start+wait+delete of the same
// container (same image, argv and host network, output discarded). Each iteration runs one
// of each, interleaved, so load on the machine hits both alike. It reports both per-task
// times and their ratio (goal: x-raw at most 1.3).
func BenchmarkPerTaskInterleaved(b *testing.B) {
	requireContainerd(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := client.New(env.daemon.Address(), client.WithDefaultNamespace("kfp-box"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	nctx := namespaces.WithNamespace(ctx, "kfp-box")
	img, err := c.GetImage(nctx, testImage)
	if err != nil {
		b.Fatal(err)
	}
	r := newRuntime(b, b.TempDir())
	defer r.Close()
	logs := b.TempDir()
	var rawT, boxT time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		rawTask(nctx, b, c, img, fmt.Sprintf("rawi-%d-%d", os.Getpid(), i))
		t1 := time.Now()
		boxTask(ctx, b, r, logs, fmt.Sprintf("kbi-%d-%d", os.Getpid(), i))
		rawT += t1.Sub(t0)
		boxT += time.Since(t1)
		n++
	}
	b.ReportMetric(float64(rawT.Milliseconds())/float64(n), "raw-ms/task")
	b.ReportMetric(float64(boxT.Milliseconds())/float64(n), "kfpbox-ms/task")
	b.ReportMetric(float64(boxT)/float64(rawT), "x-raw")
}

// rawTask is containerd's own create+start+wait+delete of `true`.
func rawTask(ctx context.Context, b *testing.B, c *client.Client, img client.Image, id string) {
	ctr, err := c.NewContainer(ctx, id, client.WithImage(img), client.WithSnapshotter("overlayfs"),
		client.WithNewSnapshot(id, img), client.WithRuntime("io.containerd.runc.v2", nil),
		client.WithNewSpec(oci.WithImageConfig(img), oci.WithHostNamespace(specs.NetworkNamespace), oci.WithProcessArgs("true")))
	if err != nil {
		b.Fatal(err)
	}
	tk, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		b.Fatal(err)
	}
	ch, err := tk.Wait(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := tk.Start(ctx); err != nil {
		b.Fatal(err)
	}
	<-ch
	if _, err := tk.Delete(ctx); err != nil {
		b.Fatal(err)
	}
	if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil {
		b.Fatal(err)
	}
}
