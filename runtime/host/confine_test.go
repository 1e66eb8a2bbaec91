package host

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/runtime"
)

// TestHiddenDataDir runs a task the way kfp-box runs one on the host: as an unprivileged
// user, with the data directory hidden and only a directory inside it given as a mount.
// The task must not read the data directory's files (the metadata with every secret, the
// S3 credentials), must not write there or to the host's system paths, and must still
// reach what it was given. The layouts cover a task chrooted into a copy of / (a new
// top-level target), one whose target sits in a tmpfs copy of an existing directory, and
// one without mounts.
func TestHiddenDataDir(t *testing.T) {
	requireNamespaces(t)
	dir := t.TempDir()
	r, err := Open(testCtx(t), runtime.Options{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	nobody := int64(65534)
	tmpTop := "/tmp/kfp-hide-" + strconv.Itoa(os.Getpid())
	tests := []struct {
		name   string
		target string // "" for no mount
		user   *int64
	}{
		{"chroot into a copy of /", "/kfp-hide-given", &nobody},
		{"under a copy of /tmp", tmpTop + "/given", &nobody},
		{"no mounts", "", &nobody},
		{"root task", "/kfp-hide-given", nil},
		{"given where it lies in the hidden directory", "DATA/objects/bucket", &nobody},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// It stands for $DATA, readable by all so that only the hiding keeps it from
			// the unprivileged task.
			data := t.TempDir()
			for _, d := range []string{filepath.Dir(data), data} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for name, body := range map[string]string{"meta.db": "SECRET-META", "s3-credentials.json": "SECRET-S3"} {
				if err := os.WriteFile(filepath.Join(data, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			given := filepath.Join(data, "objects", "bucket")
			if err := os.MkdirAll(given, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(given, "in"), []byte("given-input\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.user != nil {
				if err := os.Chown(given, int(*tt.user), int(*tt.user)); err != nil {
					t.Fatal(err)
				}
			}
			etc := fmt.Sprintf("/etc/kfp-hide-%d-%d", os.Getpid(), i)
			script := fmt.Sprintf(`id -u
cat %[1]s/meta.db && echo LEAK-meta
cat %[1]s/s3-credentials.json && echo LEAK-creds
echo "entries=$(ls -A %[1]s | wc -l)"
touch %[1]s/planted && echo LEAK-write-data
cat %[1]s/objects/bucket/in && echo LEAK-given-by-host-path
`, data)
			if tt.user != nil {
				script += fmt.Sprintf("touch %s && echo LEAK-write-etc\n", etc)
			}
			spec := runtime.TaskSpec{
				ID: fmt.Sprintf("hide-%d", i), User: tt.user, Group: tt.user, Hide: []string{data},
				LogPath: filepath.Join(dir, fmt.Sprintf("hide-%d.log", i)),
			}
			want := []string{"entries=0"}
			if strings.HasPrefix(tt.target, "DATA/") {
				want[0] = "entries=1" // the way to the given directory, and nothing else
			}
			if tt.user != nil {
				want = append(want, strconv.FormatInt(*tt.user, 10))
			} else {
				want = append(want, "0")
			}
			target := strings.Replace(tt.target, "DATA", data, 1)
			if target == given {
				// Reading the given directory by its own path is what this case is for.
				script = strings.Replace(script, "&& echo LEAK-given-by-host-path", "", 1)
			}
			if tt.target != "" {
				spec.Mounts = []runtime.Mount{{Source: given, Target: target}}
				script += fmt.Sprintf("cat %[1]s/in && echo written > %[1]s/out && echo wrote-given\n", target)
				want = append(want, "given-input", "wrote-given")
			}
			spec.Args = []string{"sh", "-c", script + "exit 0\n"}
			tk, err := r.Start(testCtx(t), spec)
			if err != nil {
				t.Fatal(err)
			}
			st, err := tk.Wait(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			log := readLog(t, spec.LogPath)
			if st.Code != 0 {
				t.Fatalf("exit %+v; log:\n%s", st, log)
			}
			if strings.Contains(log, "LEAK") || strings.Contains(log, "SECRET") {
				t.Errorf("the task reached the hidden data directory or wrote outside its mounts:\n%s", log)
			}
			for _, w := range want {
				if !strings.Contains(log, "stdout "+w+"\n") {
					t.Errorf("log lacks %q:\n%s", w, log)
				}
			}
			if _, err := os.Stat(filepath.Join(data, "planted")); !os.IsNotExist(err) {
				t.Errorf("the task created a file in the hidden directory: %v", err)
			}
			if _, err := os.Stat(etc); !os.IsNotExist(err) {
				os.Remove(etc)
				t.Errorf("an unprivileged task created %s: %v", etc, err)
			}
			if tt.target != "" {
				if got, _ := os.ReadFile(filepath.Join(given, "out")); string(got) != "written\n" {
					t.Errorf("the task's write through its mount = %q", got)
				}
			}
			if err := tk.Delete(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
