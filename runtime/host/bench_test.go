package host

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
)

// benchShimEnv names another shim binary for the benchmarks, for example bin/kfp-box.
const benchShimEnv = "KFPBOX_BENCH_SHIM"

func benchOptions(dir string) (runtime.Options, *Settings) {
	s := NewSettings()
	s.Shim = os.Getenv(benchShimEnv)
	return runtime.Options{DataDir: dir}, s
}

// BenchmarkHostTask compares one task start+wait+delete of `true` through the host
// runtime (shim, private mount namespace, log file, exit record) with a bare fork+exec.
func BenchmarkHostTask(b *testing.B) {
	b.Run("exec", func(b *testing.B) {
		cpu := startCPU(0)
		for b.Loop() {
			if err := exec.Command("true").Run(); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b)
	})
	noMounts := func(string) []runtime.Mount { return nil }
	minio := func(dir string) []runtime.Mount {
		return []runtime.Mount{{Source: dir, Target: "/minio/mlpipeline"}}
	}
	// confined is what kfp-box gives a host task that writes artifacts: the bucket
	// read-only, its own root writable over it, the data directory hidden, another user.
	confined := func(dir string) []runtime.Mount {
		root := filepath.Join(dir, "bucket", "root")
		if err := os.MkdirAll(root, 0o755); err != nil {
			b.Fatal(err)
		}
		return []runtime.Mount{
			{Source: filepath.Join(dir, "bucket"), Target: "/minio/mlpipeline", ReadOnly: true},
			{Source: root, Target: "/minio/mlpipeline/root"},
		}
	}
	// confinedToken adds the run token kfp-box mounts at KFP's service-account token path.
	confinedToken := func(dir string) []runtime.Mount {
		tok := filepath.Join(dir, "token")
		if err := os.WriteFile(tok, []byte("kfpbox-run.x.y"), 0o444); err != nil {
			b.Fatal(err)
		}
		return append(confined(dir), runtime.Mount{Source: tok, Target: "/var/run/secrets/kubeflow/pipelines/token", ReadOnly: true})
	}
	nobody := int64(65534)
	for _, bc := range []struct {
		name   string
		mounts func(dir string) []runtime.Mount
		hide   bool
	}{
		{"host", noMounts, false},
		{"host-minio-mount", minio, false},
		{"host-confined", confined, true},
		{"host-confined-token", confinedToken, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			opts, s := benchOptions(dir)
			r, err := Open(ctx, opts, s)
			if err != nil {
				b.Fatal(err)
			}
			mounts := bc.mounts(dir)
			i := 0
			shim, _ := r.currentShim()
			cpu := startCPU(shim)
			var startD, waitD time.Duration
			for b.Loop() {
				i++
				spec := runtime.TaskSpec{
					ID:      fmt.Sprintf("bench-%d", i),
					Args:    []string{"true"},
					LogPath: filepath.Join(dir, "logs", fmt.Sprintf("%d.log", i)),
					Mounts:  mounts,
				}
				if bc.hide {
					spec.Hide, spec.User, spec.Group = []string{dir}, &nobody, &nobody
				}
				t0 := time.Now()
				tk, err := r.Start(ctx, spec)
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				st, err := tk.Wait(ctx)
				startD, waitD = startD+t1.Sub(t0), waitD+time.Since(t1)
				if err != nil || st.Code != 0 {
					b.Fatalf("wait: %+v %v", st, err)
				}
				if err := tk.Delete(ctx); err != nil {
					b.Fatal(err)
				}
			}
			r.Close()
			cpu.report(b)
			b.ReportMetric(float64(startD)/float64(b.N)/1e6, "start-ms/op")
			b.ReportMetric(float64(waitD)/float64(b.N)/1e6, "wait-ms/op")
		})
	}
}

// cpuMeter measures the CPU time of this process and its reaped descendants, plus the
// shim's and its reaped tasks' (the shim is not reaped while it runs), which unlike wall
// time does not depend on what else the machine runs.
type cpuMeter struct {
	shim  int // the shim's pid, or 0
	start time.Duration
}

func (c cpuMeter) now() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime) + procCPU(c.shim)
}

// procCPU is the CPU time of pid and its reaped children from /proc/<pid>/stat (fields
// 14–17, in clock ticks of 10 ms), 0 for pid 0 or a process that is gone.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(data[i+1:])) // from field 3
	var ticks int64
	for _, f := range fields[11:15] {
		n, _ := strconv.ParseInt(f, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// startCPU starts measuring; shim is the pid of a shim to include, or 0.
func startCPU(shim int) cpuMeter {
	c := cpuMeter{shim: shim}
	c.start = c.now()
	return c
}

func (c cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(c.now()-c.start)/float64(b.N)/1e6, "cpu-ms/op")
}
