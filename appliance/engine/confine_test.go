package engine

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kfp-box/kfp-box/runtime"
)

// TestConfine checks what confine does to a task's spec: the default user unless the
// platform spec names one, the hidden paths, object buckets read-only with the task root
// writable over them, and the directories the task writes given to its user.
func TestConfine(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving directories to another user needs root")
	}
	data := t.TempDir()
	bucket := filepath.Join(data, "objects", "mlpipeline")
	hostRoot := filepath.Join(bucket, "v2", "artifacts", "p", "run", "task", "uuid")
	work := filepath.Join(data, "work", "run", "1", "0")
	outputs, secret := filepath.Join(work, "outputs"), filepath.Join(work, "secrets", "s")
	workspace, volume := filepath.Join(data, "workspaces", "run"), filepath.Join(data, "volumes", "v")
	for _, d := range []string{hostRoot, outputs, secret, workspace, volume} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(secret, "key"), []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	mounts := func() []runtime.Mount {
		return []runtime.Mount{
			{Source: bucket, Target: "/minio/mlpipeline"},
			{Source: outputs, Target: OutputParamsDir},
			{Source: secret, Target: "/etc/secret", ReadOnly: true},
			{Source: workspace, Target: WorkspacePath},
			{Source: volume, Target: "/data"},
		}
	}
	tio := &preparedIO{root: "minio://mlpipeline/v2/artifacts/p/run/task/uuid", hostRoot: hostRoot}
	e := &Engine{cfg: Config{DataDir: data, TaskUser: &TaskUser{UID: 999, GID: 995}, Hide: []string{data}}}

	ts := runtime.TaskSpec{Mounts: mounts(), Env: []string{"HOME=/root"}}
	if err := e.confine(&ts, tio, work); err != nil {
		t.Fatal(err)
	}
	if ts.User == nil || *ts.User != 999 || ts.Group == nil || *ts.Group != 995 {
		t.Errorf("user = %v:%v, want the default 999:995", ts.User, ts.Group)
	}
	if !reflect.DeepEqual(ts.Hide, []string{data}) {
		t.Errorf("hide = %v", ts.Hide)
	}
	if envValue(ts.Env, "HOME") != "/" {
		t.Errorf("HOME = %q for a user without a home", envValue(ts.Env, "HOME"))
	}
	want := append(mounts(), runtime.Mount{Source: hostRoot, Target: "/minio/mlpipeline/v2/artifacts/p/run/task/uuid"})
	want[0].ReadOnly = true
	if !reflect.DeepEqual(ts.Mounts, want) {
		t.Errorf("mounts =\n%+v\nwant\n%+v", ts.Mounts, want)
	}
	for p, owner := range map[string]int{
		hostRoot: 999, outputs: 999, secret: 999, filepath.Join(secret, "key"): 999, workspace: 999, volume: 999,
		bucket: 0, filepath.Dir(hostRoot): 0,
	} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != owner {
			t.Errorf("%s is owned by %d, want %d", p, uid, owner)
		}
	}

	// The platform spec's user wins, and the default's HOME is left alone.
	uid, gid := int64(4242), int64(4343)
	ts = runtime.TaskSpec{Mounts: mounts(), User: &uid, Group: &gid, Env: []string{"HOME=/root"}}
	if err := e.confine(&ts, tio, work); err != nil {
		t.Fatal(err)
	}
	if *ts.User != 4242 || *ts.Group != 4343 || envValue(ts.Env, "HOME") != "/root" {
		t.Errorf("user %d:%d, HOME %q; want the platform spec's 4242:4343 and HOME untouched", *ts.User, *ts.Group, envValue(ts.Env, "HOME"))
	}
	if fi, _ := os.Stat(outputs); int(fi.Sys().(*syscall.Stat_t).Uid) != 4242 {
		t.Errorf("outputs not given to the platform spec's user")
	}

	// Without a default user (a containerd box), nothing is given away.
	e.cfg.TaskUser = nil
	ts = runtime.TaskSpec{Mounts: mounts()}
	if err := e.confine(&ts, tio, work); err != nil {
		t.Fatal(err)
	}
	if ts.User != nil || ts.Group != nil {
		t.Errorf("user = %v:%v without a default, want the image's", ts.User, ts.Group)
	}
}

// TestCopyOwned copies what belongs to the task's user and refuses the rest: a file of
// another owner anywhere in the tree, a symbolic link, a FIFO.
func TestCopyOwned(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("files of another owner need root")
	}
	const uid = 4242
	open := func(p string) int {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	mk := func(p string, dir bool, owner int) {
		var err error
		if dir {
			err = os.MkdirAll(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte("data of "+filepath.Base(p)), 0o644)
		}
		if err == nil {
			err = os.Lchown(p, owner, owner)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	src := t.TempDir()
	good := filepath.Join(src, "good")
	mk(good, true, uid)
	mk(filepath.Join(good, "sub"), true, uid)
	mk(filepath.Join(good, "sub", "f"), false, uid)
	outDir := t.TempDir()
	root, err := os.OpenRoot(outDir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	dst := filepath.Join(outDir, "out")
	if err := copyOwned(open(good), good, root, "out", uid); err != nil {
		t.Fatalf("copy of the task's own tree: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "sub", "f")); string(b) != "data of f" {
		t.Errorf("copied file = %q", b)
	}

	foreign := filepath.Join(src, "foreign")
	mk(foreign, true, uid)
	mk(filepath.Join(foreign, "secret"), false, 0)
	if err := copyOwned(open(foreign), foreign, root, "x1", uid); err == nil || !strings.Contains(err.Error(), "not to the task's user") {
		t.Errorf("a root file inside the task's tree: %v", err)
	}
	linked := filepath.Join(src, "linked")
	mk(linked, true, uid)
	if err := os.Symlink("/etc/passwd", filepath.Join(linked, "l")); err != nil {
		t.Fatal(err)
	}
	if err := copyOwned(open(linked), linked, root, "x2", uid); err == nil {
		t.Error("a symbolic link inside the task's tree was followed")
	}
	fifo := filepath.Join(src, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Lchown(fifo, uid, uid)
	if err := copyOwned(open(fifo), fifo, root, "x3", uid); err == nil {
		t.Error("a FIFO was copied")
	}
	// Where the copy goes, a link the task left leads nowhere out of the root.
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.Symlink(victim, filepath.Join(outDir, "trap")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(victim), filepath.Join(outDir, "trapdir")); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(good, "sub", "f")
	if err := copyOwned(open(f), f, root, "trap", uid); err == nil {
		t.Error("a copy onto a link that leads out of the root succeeded")
	}
	if err := copyOwned(open(f), f, root, "trapdir/victim", uid); err == nil {
		t.Error("a copy through a linked directory that leads out of the root succeeded")
	}
	if _, err := os.Lstat(victim); !os.IsNotExist(err) {
		t.Errorf("the copy wrote out of the root: %v", err)
	}
}
