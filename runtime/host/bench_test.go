package host

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kfp-box/kfp-box/runtime"
)

// BenchmarkHostTask compares one task start+wait+delete of `true` through the host
// runtime (shim, private mount namespace, log file, exit record) with a bare fork+exec.
func BenchmarkHostTask(b *testing.B) {
	b.Run("exec", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command("true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	noMounts := func(string) []runtime.Mount { return nil }
	minio := func(dir string) []runtime.Mount {
		return []runtime.Mount{{Source: dir, Target: "/minio/mlpipeline"}}
	}
	for _, bc := range []struct {
		name   string
		mounts func(dir string) []runtime.Mount
		// warm waits, off the clock, for the spare shim before each start: tasks that are
		// not back to back. Without it the spare is made while the timed task runs.
		warm bool
	}{
		{"host", noMounts, false},
		{"host-warm", noMounts, true},
		{"host-minio-mount-warm", minio, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			r, err := Open(ctx, runtime.Options{DataDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			mounts := bc.mounts(dir)
			i := 0
			for b.Loop() {
				if bc.warm {
					b.StopTimer()
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
				tk, err := r.Start(ctx, spec)
				if err != nil {
					b.Fatal(err)
				}
				st, err := tk.Wait(ctx)
				if err != nil || st.Code != 0 {
					b.Fatalf("wait: %+v %v", st, err)
				}
				if err := tk.Delete(ctx); err != nil {
					b.Fatal(err)
				}
			}
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
