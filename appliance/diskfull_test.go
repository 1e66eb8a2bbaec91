package appliance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance"
)

// smallFS mounts a tmpfs of size bytes on dir (made if missing), unmounted lazily at the
// end of the test: the host runtime's shim may hold a file there for a moment longer.
func smallFS(t *testing.T, dir string, size int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=700", size)); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
}

// fill writes a file in dir until its file system is full and returns the file's path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "filler-")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for n := len(buf); n > 0; {
		if _, err := f.Write(buf[:n]); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			n /= 2 // the last partial blocks
		}
	}
	return f.Name()
}

// rpcError is KFP's error body.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// TestBoxRestartOnFullDisk stops a box, fills its disk and starts it again: it must start
// and serve reads; writes fail with 507 and a message that says the disk is full, until
// space is freed, when they work again without a restart.
func TestBoxRestartOnFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small file system to fill needs root")
	}
	data := filepath.Join(t.TempDir(), "data")
	smallFS(t, data, 32<<20)
	mutate := func(c *appliance.Config) { c.Runtime, c.DataDir = "host", data }
	b := startBox(t, mutate)
	r := b.runPipeline(b.upload(filepath.Join(testdata, "limits.yaml"), "limits-probe"), map[string]any{})
	if r.State != "SUCCEEDED" {
		t.Fatalf("run ended %s", r.State)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	filler := fill(t, data)
	b2 := startBox(t, mutate)
	var got run
	if code := b2.do("GET", "/runs/"+r.RunID, nil, "", &got); code != http.StatusOK || got.State != "SUCCEEDED" {
		t.Fatalf("GET the run on a full disk: HTTP %d, %+v", code, got)
	}
	var list struct {
		Runs []run `json:"runs"`
	}
	if code := b2.do("GET", "/runs", nil, "", &list); code != http.StatusOK || len(list.Runs) != 1 {
		t.Fatalf("list runs on a full disk: HTTP %d, %d runs", code, len(list.Runs))
	}

	// Writes go on while the store finds room in its file, then fail, each clearly.
	desc := strings.Repeat("x", 8<<10)
	failed := false
	for i := 0; i < 2000 && !failed; i++ {
		body, _ := json.Marshal(map[string]string{"display_name": fmt.Sprintf("full-%d", i), "description": desc})
		resp, err := b2.post(b2.base+"/experiments", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var e rpcError
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusInsufficientStorage:
			if e.Code != 8 || !strings.Contains(e.Message, "no space left on device") {
				t.Fatalf("a write on a full disk answered %+v; want code 8 (RESOURCE_EXHAUSTED) saying no space left on device", e)
			}
			failed = true
		default:
			t.Fatalf("a write on a full disk answered HTTP %d %+v; want 507", resp.StatusCode, e)
		}
	}
	if !failed {
		t.Fatal("2000 experiments of 8 KiB fitted on a full disk")
	}
	if code := b2.do("GET", "/runs/"+r.RunID, nil, "", &got); code != http.StatusOK {
		t.Fatalf("GET after a failed write: HTTP %d", code)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"display_name": "after-space-freed"})
	if code := b2.do("POST", "/experiments", bytes.NewReader(body), "application/json", nil); code != http.StatusOK {
		t.Fatalf("a write once space is free again: HTTP %d", code)
	}
}

// TestBoxTasksOnFullDisk fills the disk that holds the host runtime's task state while a
// task runs: that task's exit is still recorded (it succeeds, rather than being reported
// as a dead shim's unknown state), and a task that cannot start fails saying that the disk
// is full.
func TestBoxTasksOnFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small file system to fill needs root")
	}
	data := filepath.Join(t.TempDir(), "data")
	smallFS(t, filepath.Join(data, "host"), 4<<20)
	ctl := filepath.Join(t.TempDir(), "ctl")
	openToAll(t, ctl) // the task, an unprivileged user, looks for a file there
	b := startBox(t, func(c *appliance.Config) { c.Runtime, c.DataDir = "host", data })
	pid := b.upload(filepath.Join(testdata, "wait_file.yaml"), "wait-file")

	body, _ := json.Marshal(map[string]any{
		"display_name":               "waits",
		"pipeline_version_reference": map[string]string{"pipeline_id": pid},
		"runtime_config":             map[string]any{"parameters": map[string]any{"path": filepath.Join(ctl, "go")}},
	})
	var waiting run
	if code := b.do("POST", "/runs", bytes.NewReader(body), "application/json", &waiting); code != http.StatusOK {
		t.Fatalf("create run: HTTP %d", code)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var got run
		b.do("GET", "/runs/"+waiting.RunID, nil, "", &got)
		if len(got.RunDetails.TaskDetails) > 0 && got.task(t, "wait").State == "RUNNING" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task did not start: %+v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fill(t, filepath.Join(data, "host"))

	r := b.runPipeline(pid, map[string]any{"path": "/"})
	d := r.task(t, "wait")
	if r.State != "FAILED" || d.Error == nil || !strings.Contains(d.Error.Message, "no space left on device") {
		t.Errorf("a task started on a full disk: run %s, task %+v (error %+v); want it failed saying no space left on device", r.State, d, d.Error)
	}

	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(time.Minute)
	for {
		var got run
		b.do("GET", "/runs/"+waiting.RunID, nil, "", &got)
		if got.State == "SUCCEEDED" {
			break
		}
		if got.State == "FAILED" || time.Now().After(deadline) {
			d := got.task(t, "wait")
			t.Fatalf("the task that ended on a full disk: run %s, task %s, error %+v; want it succeeded", got.State, d.State, d.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
