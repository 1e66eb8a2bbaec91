package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
)

// benchShimEnv names another shim binary for the benchmarks, for example a kfp-box built
// with host.ShimMain in main, to measure the real binary's start-up.
const benchShimEnv = "KFPBOX_BENCH_SHIM"

func benchOptions(dir string) runtime.Options {
	opts := runtime.Options{DataDir: dir}
	if shim := os.Getenv(benchShimEnv); shim != "" {
		opts.Config = map[string]string{ConfigShim: shim}
	}
	return opts
}

// BenchmarkShimSpawn measures making a shim until it reports ready: the exec and Go
// start-up of the binary, with and without the spare's warm-up. Spares pay it off the
// start path; a burst of starts with no spare left pays the direct one.
func BenchmarkShimSpawn(b *testing.B) {
	for _, mode := range []shimMode{shimDirect, shimSpare} {
		b.Run("mode="+string(mode), func(b *testing.B) {
			r, err := Open(context.Background(), benchOptions(b.TempDir()))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			cpu := startCPU()
			for b.Loop() {
				sp, err := r.spawnShim(mode)
				if err != nil {
					b.Fatal(err)
				}
				sp.discard()
				<-sp.reaped
			}
			cpu.report(b)
		})
	}
}

// BenchmarkHostTask compares one task start+wait+delete of `true` through the host
// runtime (shim, private mount namespace, log file, exit record) with a bare fork+exec.
func BenchmarkHostTask(b *testing.B) {
	b.Run("exec", func(b *testing.B) {
		cpu := startCPU()
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
	for _, bc := range []struct {
		name   string
		mounts func(dir string) []runtime.Mount
		// warm makes the spare shim off the clock before each start: the steady state of
		// tasks that run longer than a spare takes to make. Without it the next spare is
		// made while the timed task runs, and competes with it.
		warm bool
	}{
		{"host", noMounts, false},
		{"host-warm", noMounts, true},
		{"host-minio-mount-warm", minio, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			r, err := Open(ctx, benchOptions(dir))
			if err != nil {
				b.Fatal(err)
			}
			r.manualSpare = bc.warm
			mounts := bc.mounts(dir)
			i := 0
			cpu := startCPU()
			var startD, waitD time.Duration
			for b.Loop() {
				if bc.warm {
					b.StopTimer()
					r.refill()
					r.waitSpare()
					b.StartTimer()
				}
				i++
				spec := runtime.TaskSpec{
					ID:      fmt.Sprintf("bench-%d", i),
					Args:    []string{"true"},
					LogPath: filepath.Join(dir, "logs", fmt.Sprintf("%d.log", i)),
					Mounts:  mounts,
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
			r.waitSpare()
			cpu.report(b)
			b.ReportMetric(float64(startD)/float64(b.N)/1e6, "start-ms/op")
			b.ReportMetric(float64(waitD)/float64(b.N)/1e6, "wait-ms/op")
		})
	}
}

// waitSpare blocks until the spare shim being made is ready (benchmarks only).
func (r *Runtime) waitSpare() {
	r.mu.Lock()
	w := r.spareWait
	r.mu.Unlock()
	if w != nil {
		<-w
	}
}

// cpuMeter measures the CPU time of this process and its reaped descendants, which unlike
// wall time does not depend on what else the machine runs.
type cpuMeter struct{ start time.Duration }

func cpuNow() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

func startCPU() cpuMeter { return cpuMeter{start: cpuNow()} }

func (c cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(cpuNow()-c.start)/float64(b.N)/1e6, "cpu-ms/op")
}
