package appliance_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kfp-box/kfp-box/appliance"
)

// openToAll makes dir and the test's directories above it readable by every user, as
// /var/lib is, so that only the box's own modes can keep other users out.
func openToAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := dir; d != "/" && d != filepath.Clean(os.TempDir()); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// asNobody runs a shell command as the user nobody and returns its combined output and
// whether it succeeded.
func asNobody(t *testing.T, script string) (string, bool) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// TestBoxDataDirPrivate starts a box on a data directory open to all (as a package or a
// umask of 022 leaves it) and checks that another local user can read nothing in it
// afterwards: not the metadata, the S3 credentials, the task logs nor the artifacts.
func TestBoxDataDirPrivate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("reading the data directory as another user needs root to switch users")
	}
	data := filepath.Join(t.TempDir(), "kfp-box")
	openToAll(t, data)
	b := startBox(t, func(c *appliance.Config) { c.Runtime, c.DataDir = "host", data })
	r := b.runPipeline(b.upload(filepath.Join(testdata, "limits.yaml"), "limits-probe"), map[string]any{})
	if r.State != "SUCCEEDED" {
		t.Fatalf("run ended %s", r.State)
	}
	modes := map[string]os.FileMode{
		data:                           0o700,
		filepath.Join(data, "meta.db"): 0o600,
		filepath.Join(data, appliance.S3CredentialsFile): 0o600,
	}
	specs, _ := filepath.Glob(filepath.Join(data, "host", "tasks", "*", "spec.json"))
	for _, s := range specs {
		modes[s] = 0o600 // a task's environment, secrets included
	}
	for p, want := range modes {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %#o, want %#o", p, got, want)
		}
	}
	logs, _ := filepath.Glob(filepath.Join(data, "logs", "*", "*"))
	if len(logs) == 0 {
		t.Fatal("no task log written")
	}
	script := fmt.Sprintf(`for f in %s/meta.db %s/%s %s; do cat "$f" >/dev/null 2>&1 && echo "READ $f"; done
ls %s/objects/mlpipeline >/dev/null 2>&1 && echo "LISTED objects"
true`, data, data, appliance.S3CredentialsFile, logs[0], data)
	if out, _ := asNobody(t, script); strings.Contains(out, "READ") || strings.Contains(out, "LISTED") {
		t.Errorf("another local user reached the data directory:\n%s", out)
	}
}
