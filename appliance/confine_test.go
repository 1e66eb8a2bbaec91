package appliance_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		useContainerd(c, ctd.address)
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

// TestBoxCustomPathConfined has a host task name custom paths for its output artifact,
// which the box copies with more rights than the task had: only a file the task made
// itself may be copied, never the box's secrets or another user's files.
func TestBoxCustomPathConfined(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("tasks run as another user only when kfp-box runs as root")
	}
	b := startBox(t, func(c *appliance.Config) { c.Runtime = "host" })
	pid := b.upload(filepath.Join(testdata, "custom_path.yaml"), "custom-path")

	made := fmt.Sprintf("/tmp/kfpbox-custom-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() { _ = os.Remove(made) })
	r := b.runPipeline(pid, map[string]any{"src": "made:" + made})
	if r.State != "SUCCEEDED" {
		t.Fatalf("a custom path the task made: run %s: %+v", r.State, r.RunDetails.TaskDetails)
	}
	if got := b.artifactText(t, r.RunID, "out"); got != "made by the task\n" {
		t.Errorf("the artifact copied from the task's own file = %q", got)
	}
	for _, src := range []string{
		filepath.Join(b.data, "meta.db"),
		filepath.Join(b.data, appliance.S3CredentialsFile),
		"/etc/passwd",
	} {
		r := b.runPipeline(pid, map[string]any{"src": src})
		d := r.task(t, "custom")
		if r.State != "FAILED" || d.Error == nil || !strings.Contains(d.Error.Message, "custom path") {
			t.Errorf("custom path %s: run %s, task %s (%+v); want the task failed over its custom path", src, r.State, d.State, d.Error)
		}
	}
}

// artifactText downloads the run's artifact called name through the API.
func (b *box) artifactText(t *testing.T, runID, name string) string {
	t.Helper()
	var arts struct {
		Artifacts []struct {
			ArtifactID string `json:"artifact_id"`
			Name       string `json:"name"`
		} `json:"artifacts"`
	}
	b.do("GET", "/runs/"+runID+"/artifacts", nil, "", &arts)
	for _, a := range arts.Artifacts {
		if a.Name == name {
			resp, err := b.get(b.base + "/artifacts/" + a.ArtifactID + "/download")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return string(body)
		}
	}
	t.Fatalf("run %s has no artifact %q: %+v", runID, name, arts)
	return ""
}

// TestBoxOutputLinkRefused has a host task leave its output parameter as a link to the
// box's S3 credentials: the box must not read it with its own rights.
func TestBoxOutputLinkRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("tasks run as another user only when kfp-box runs as root")
	}
	b := startBox(t, func(c *appliance.Config) { c.Runtime = "host" })
	pid := b.upload(filepath.Join(testdata, "link_output.yaml"), "link-output")
	r := b.runPipeline(pid, map[string]any{"target": filepath.Join(b.data, appliance.S3CredentialsFile)})
	d := r.task(t, "link")
	if r.State != "FAILED" || d.Error == nil || !strings.Contains(d.Error.Message, "symbolic link") {
		t.Errorf("run %s, task %s %+v (error %+v); want the task failed over its linked output", r.State, d.State, d.OutputParameters, d.Error)
	}
	if v := fmt.Sprint(d.OutputParameters["value"]); strings.Contains(v, "secret_key") {
		t.Errorf("the box read the credentials through the task's link: %s", v)
	}
}
