package cli

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/runtime/containerd/containerdtest"
)

// TestImageCommands imports a docker-archive and an OCI layout tarball with the box
// stopped (each command starts a child containerd under the data directory), lists them,
// and removes them.
func TestImageCommands(t *testing.T) {
	if why := containerdtest.Prerequisites(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("containerd tests cannot run in CI: " + why)
		}
		t.Skip("needs containerd (CI=true turns this skip into a failure): " + why)
	}
	data, err := os.MkdirTemp("", "kfpbox-cli-") // short: the socket path must fit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { containerdtest.Unmount(data); _ = os.RemoveAll(data) })
	t.Setenv("KFPBOX_CONTAINERD_ADDRESS", "")
	docker := filepath.Join(t.TempDir(), "docker.tar")
	oci := filepath.Join(t.TempDir(), "oci.tar")
	for path, write := range map[string]func(*bytes.Buffer) error{
		docker: func(b *bytes.Buffer) error { return containerdtest.WriteDockerArchive(b, "busybox:cli") },
		oci:    func(b *bytes.Buffer) error { return containerdtest.WriteOCIArchive(b, "example.com/team/bb:oci") },
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := containerdtest.Registry()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	registry := strings.TrimPrefix(srv.URL, "http://")
	kfpbox := func(args ...string) (string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		root := NewRoot(&out, &errOut)
		root.SetArgs(append(args, "--data-dir", data))
		err := root.Execute()
		code := 0
		if err != nil {
			code = 1
			var ee *ExitError
			if ok := asExit(err, &ee); ok {
				code = ee.Code
			}
			errOut.WriteString(err.Error())
		}
		return out.String() + errOut.String(), code
	}
	steps := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"image", "import", docker}, 0, []string{"imported docker.io/library/busybox:cli"}},
		{[]string{"image", "import", oci}, 0, []string{"imported example.com/team/bb:oci"}},
		{[]string{"image", "ls"}, 0, []string{"NAME", "docker.io/library/busybox:cli", "example.com/team/bb:oci", "MiB"}},
		{[]string{"image", "rm", "busybox:cli"}, 0, []string{"removed busybox:cli"}},
		{[]string{"image", "rm", "busybox:cli"}, 1, []string{"image not present"}},
		{[]string{"image", "ls", "-o", "json"}, 0, []string{`"name": "example.com/team/bb:oci"`}},
		{[]string{"image", "import", filepath.Join(data, "absent.tar")}, 2, []string{"no such file"}},
		{[]string{"image", "pull", registry + "/team/bb:cli"}, 0, []string{"pulled " + registry + "/team/bb:cli", "] 1.9 MiB / 1.9 MiB"}},
		{[]string{"image", "pull", "127.0.0.1:1/none:1"}, 1, []string{"kfp-box image import"}},
	}
	for _, s := range steps {
		out, code := kfpbox(s.args...)
		if code != s.code {
			t.Fatalf("kfp-box %s: exit %d, want %d:\n%s", strings.Join(s.args, " "), code, s.code, out)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("kfp-box %s: output lacks %q:\n%s", strings.Join(s.args, " "), w, out)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(data, "containerd", "containerd.pid")); !os.IsNotExist(err) {
		t.Errorf("the child containerd was not stopped after the command (pid file: %v)", err)
	}
}

func asExit(err error, target **ExitError) bool {
	return errors.As(err, target)
}

// TestImageCommandsFindTheRunningBox: without --server, the image commands go through a box
// answering at the default address and say so; this box runs the host runtime, so its
// answer (it keeps no images) proves the request reached it rather than a containerd.
func TestImageCommandsFindTheRunningBox(t *testing.T) {
	b := startServe(t)
	saved := defaultServer
	defaultServer = "http://" + b.api
	t.Cleanup(func() { defaultServer = saved })
	t.Setenv("KFPBOX_SERVER", "")
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"image", "ls", "--token-file", filepath.Join(b.dir, "auth", "admin-token")})
	err := root.Execute()
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "keeps no images") {
		t.Fatalf("image ls: exit %d (%v)\n%s", exitCode(err), err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "using the box running at http://"+b.api) {
		t.Errorf("image ls does not say which box it used:\n%s", errOut.String())
	}
}
