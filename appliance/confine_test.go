package appliance_test

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"testing"

	"github.com/kfp-box/kfp-box/appliance"
)

// TestBoxHostTasksConfined runs, on a box with the host runtime and default settings,
// tasks that try to read the box's secrets and to write where they must not. They run as
// the dedicated unprivileged user (the platform spec's runAsUser/runAsGroup winning where
// given), see an empty data directory, write only their own outputs, and read their input
// artifacts.
func TestBoxHostTasksConfined(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("tasks run as another user only when kfp-box runs as root")
	}
	b := startBox(t, func(c *appliance.Config) { c.Runtime = "host" })
	u, err := user.Lookup(appliance.DefaultHostUser)
	if err != nil {
		t.Fatalf("the box did not create its task user %s: %v", appliance.DefaultHostUser, err)
	}
	pid := b.upload(filepath.Join(testdata, "confined.yaml"), "confined")
	r := b.runPipeline(pid, map[string]any{"data_dir": b.data})
	if r.State != "SUCCEEDED" {
		t.Fatalf("run ended %s: %+v", r.State, r.RunDetails.TaskDetails)
	}
	want := map[string]string{
		"probe":   fmt.Sprintf("uid=%s:%s wrote-artifact", u.Uid, u.Gid),
		"consume": fmt.Sprintf("uid=%s read=artifact from the probe", u.Uid),
		"custom":  "uid=4242:4343",
	}
	for task, w := range want {
		if got := r.task(t, task).OutputParameters["report"]; got != w {
			t.Errorf("task %s reported %q, want %q", task, got, w)
		}
	}
	for _, p := range []string{
		filepath.Join(b.data, "planted"),
		filepath.Join(b.data, "objects", "mlpipeline", "v2", "planted"),
		"/etc/kfp-box-planted",
	} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a task created %s (%v)", p, err)
		}
	}
}

// TestBoxHostUserRoot runs tasks as root when asked to, with the data directory still
// hidden from them.
func TestBoxHostUserRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("--host-user root means something only when kfp-box runs as root")
	}
	b := startBox(t, func(c *appliance.Config) { c.Runtime, c.HostUser = "host", "root" })
	pid := b.upload(filepath.Join(testdata, "confined.yaml"), "confined")
	r := b.runPipeline(pid, map[string]any{"data_dir": b.data})
	if got := r.task(t, "probe").OutputParameters["report"]; got != "uid=0:0 LEAK-write-etc wrote-artifact" {
		t.Errorf("probe as root reported %q; want uid 0, no access to the data directory, /etc writable", got)
	}
	_ = os.Remove("/etc/kfp-box-planted")
}

// TestBoxContainerdTasksConfined runs the same tasks in containers: they keep the image's
// user (root in busybox) rather than the host runtime's task user, the platform spec's
// runAsUser/runAsGroup is honoured with its outputs writable, the data directory does not
// exist for them, and the object store is read-only outside their own task root. Root in
// a container writes the container's own /etc, which is no leak.
func TestBoxContainerdTasksConfined(t *testing.T) {
	if ctd.skip != "" {
		t.Skip(ctd.skip)
	}
	b := startBox(t, func(c *appliance.Config) {
		c.Runtime = "containerd"
		c.ContainerdAddress = ctd.address
	})
	pid := b.upload(filepath.Join(testdata, "confined.yaml"), "confined")
	r := b.runPipeline(pid, map[string]any{"data_dir": b.data})
	if r.State != "SUCCEEDED" {
		t.Fatalf("run ended %s: %+v", r.State, r.RunDetails.TaskDetails)
	}
	want := map[string]string{
		"probe":   "uid=0:0 LEAK-write-etc wrote-artifact",
		"consume": "uid=0 read=artifact from the probe",
		"custom":  "uid=4242:4343",
	}
	for task, w := range want {
		if got := r.task(t, task).OutputParameters["report"]; got != w {
			t.Errorf("task %s reported %q, want %q", task, got, w)
		}
	}
	if _, err := os.Stat(filepath.Join(b.data, "objects", "mlpipeline", "v2", "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a task wrote into the bucket outside its task root (%v)", err)
	}
}
