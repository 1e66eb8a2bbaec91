package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kfp-box/kfp-box/runtime"
)

// smallFS mounts a tmpfs of size bytes on a new directory and returns it. It is unmounted
// lazily at the end of the test (a shim may still hold its lock file for a moment).
func smallFS(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small file system to fill needs root")
	}
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=700", size)); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes to a file in dir until the file system is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.CreateTemp(dir, "filler-")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	// Odd bytes left by the last partial block.
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			return
		}
	}
}

// TestFullDiskStart fills the data dir's file system between two kfp-box processes: the
// runtime must still open (kfp-box starts and serves reads) and a task that cannot be
// started must say that the disk is full.
func TestFullDiskStart(t *testing.T) {
	requireNamespaces(t)
	data := smallFS(t, 4<<20)
	r1, err := Open(testCtx(t), runtime.Options{DataDir: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	startWait(t, r1, runtime.TaskSpec{ID: "before", Args: []string{"true"}, LogPath: filepath.Join(data, "before.log")}, 0)
	pid := shimPID(t, r1)
	r1.Close()
	waitFor(t, "the first shim to exit", func() bool { return processGone(pid) })

	fill(t, data)
	r2, err := Open(testCtx(t), runtime.Options{DataDir: data}, nil)
	if err != nil {
		t.Fatalf("open on a full disk: %v", err)
	}
	defer r2.Close()
	if tk, err := r2.Lookup(testCtx(t), "before"); err != nil {
		t.Errorf("lookup of a task from before the disk filled: %v", err)
	} else if st, err := tk.Wait(testCtx(t)); err != nil || st.Code != 0 {
		t.Errorf("its exit = %+v, %v", st, err)
	}
	_, err = r2.Start(testCtx(t), runtime.TaskSpec{ID: "after", Args: []string{"true"}, LogPath: filepath.Join(data, "after.log")})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("start on a full disk: %v; want an error saying no space left on device", err)
	}
	if _, err := r2.Lookup(testCtx(t), "after"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("lookup after the failed start: %v, want not found", err)
	}
}

// TestFullDiskExitRecorded lets the disk fill while tasks run. Their exits must still be
// recorded, with their real codes, never as a dead shim's unknown state; a task that
// writes output on the full disk must not block on it, and its exit says its log is
// incomplete.
func TestFullDiskExitRecorded(t *testing.T) {
	requireNamespaces(t)
	data := smallFS(t, 4<<20)
	ctl := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wait := `echo before; while [ ! -e /ctl/go ]; do sleep 0.02; done; `
	specs := []runtime.TaskSpec{
		{ID: "quiet", Args: []string{"sh", "-c", wait + "exit 3"}},
		{ID: "chatty", Args: []string{"sh", "-c", wait + "yes kfp-box-output | head -c 4000000; exit 4"}},
	}
	var tasks []runtime.Task
	for i := range specs {
		specs[i].LogPath = filepath.Join(data, "logs", specs[i].ID)
		specs[i].Mounts = []runtime.Mount{{Source: ctl, Target: "/ctl"}}
		tk, err := r.Start(testCtx(t), specs[i])
		if err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, tk)
		waitFor(t, specs[i].ID+" to log", func() bool { return strings.Contains(readLog(t, specs[i].LogPath), "before") })
	}
	fill(t, data)
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, tk := range tasks {
		st, err := tk.Wait(testCtx(t))
		if err != nil || st.Code != 3+i || st.Message == unknownExit {
			t.Errorf("%s: exit on a full disk = %+v, %v; want code %d", specs[i].ID, st, err, 3+i)
		}
		if specs[i].ID == "chatty" && (!strings.Contains(st.Message, "task log incomplete") || !strings.Contains(st.Message, "no space left on device")) {
			t.Errorf("%s: exit message %q does not say the log is incomplete for lack of space", specs[i].ID, st.Message)
		}
	}
	// A later kfp-box reads the same exits.
	r2, err := Open(testCtx(t), runtime.Options{DataDir: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	for i, s := range specs {
		tk, err := r2.Lookup(testCtx(t), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := tk.Wait(testCtx(t)); err != nil || st.Code != 3+i {
			t.Errorf("%s after a restart: %+v, %v", s.ID, st, err)
		}
	}
}
