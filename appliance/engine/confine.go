package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// TaskUser is a user and group to run tasks as.
type TaskUser struct {
	UID, GID int64
}

// confine applies the box's isolation to a task whose mounts are built and whose task
// root exists: who it runs as (the platform spec's runAsUser/runAsGroup, else
// Config.TaskUser), what it must not see (Config.Hide), and what it may write. The object
// buckets it mounts become read-only and its own task root is mounted writable over them,
// so a task writes its outputs and nothing else in the object store. When the task runs
// as a known non-root user, what it must write (its task root, output parameter, emptyDir,
// workspace and volume directories) is given to that user, and so are its secret and
// configmap files, which stay unreadable to anyone else.
func (e *Engine) confine(ts *runtime.TaskSpec, tio *preparedIO, workDir string) error {
	if ts.User == nil && ts.Group == nil && e.cfg.TaskUser != nil {
		uid, gid := e.cfg.TaskUser.UID, e.cfg.TaskUser.GID
		ts.User, ts.Group = &uid, &gid
		if uid != 0 && envValue(ts.Env, "HOME") == "/root" {
			ts.Env = append(ts.Env, "HOME=/") // as a container gives a user without a home
		}
	}
	ts.Hide = append(ts.Hide, e.cfg.Hide...)

	objectsDir := filepath.Join(e.cfg.DataDir, "objects")
	var rootMount *runtime.Mount
	for i := range ts.Mounts {
		m := &ts.Mounts[i]
		if filepath.Dir(m.Source) != objectsDir {
			continue
		}
		m.ReadOnly = true
		if within(tio.hostRoot, m.Source) {
			rootMount = &runtime.Mount{Source: tio.hostRoot, Target: containerPath(tio.root)}
		}
	}
	if rootMount != nil {
		ts.Mounts = append(ts.Mounts, *rootMount)
	}

	if ts.User == nil || *ts.User == 0 {
		return nil
	}
	uid, gid := int(*ts.User), 0
	if ts.Group != nil {
		gid = int(*ts.Group)
	}
	if rootMount != nil {
		if err := chownTree(tio.hostRoot, uid, gid); err != nil {
			return err
		}
	}
	for _, m := range ts.Mounts {
		switch {
		case within(m.Source, workDir): // this attempt's own files
			if err := chownTree(m.Source, uid, gid); err != nil {
				return err
			}
		case !m.ReadOnly && within(m.Source, e.cfg.DataDir) && filepath.Dir(m.Source) != objectsDir:
			// Workspaces and volumes are shared with other tasks: their directory only.
			if err := chownDir(m.Source, uid, gid); err != nil {
				return err
			}
		}
	}
	return nil
}

// chownTree gives dir and everything in it to uid:gid.
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// chownDir gives dir to uid:gid unless it has that owner already.
func chownDir(dir string, uid, gid int) error {
	if fi, err := os.Stat(dir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
			return nil
		}
	}
	return os.Chown(dir, uid, gid)
}

// within reports whether path p is dir or lies below it.
func within(p, dir string) bool {
	p, dir = filepath.Clean(p), filepath.Clean(dir)
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// envValue returns the last value of key in env ("" when absent).
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// errNotTaskFile marks a file a task left that is not a regular file (a link to a file
// of the host, which the engine would read with more rights than the task had).
var errNotTaskFile = errors.New("not a regular file")

// readTaskFile reads a file a task wrote (an output parameter, its executor output)
// without following a symbolic link in its last component; the directories above it are
// the engine's own.
func readTaskFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link: %w", filepath.Base(path), errNotTaskFile)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), errNotTaskFile)
	}
	return io.ReadAll(f)
}

// copyHostCustomPath copies what a host task left at a custom path (its executor output
// names it for an output artifact) to the artifact's object, as KFP's launcher uploads it.
// The engine reads with more rights than the task had, so it copies only what the task
// could have handed over itself: files and directories owned by the task's user, reached
// without following symbolic links, outside the data directory, into the task's own root.
func (e *Engine) copyHostCustomPath(rs *runState, x *meta.Execution, src, uri string) error {
	if !strings.HasPrefix(uri, strings.TrimSuffix(x.TaskRoot, "/")+"/") {
		return fmt.Errorf("artifact %s does not lie below the task's root %s, and a custom path is copied only into the task's own outputs", uri, x.TaskRoot)
	}
	hostRoot, err := e.objectPath(x.TaskRoot)
	if err != nil {
		return err
	}
	dst, err := e.objectPath(uri)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(hostRoot, dst)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("artifact %s does not lie below the task's root %s", uri, x.TaskRoot)
	}
	if !filepath.IsAbs(src) {
		return fmt.Errorf("%q is not an absolute path", src)
	}
	src = filepath.Clean(src)
	if within(src, e.cfg.DataDir) {
		return fmt.Errorf("%s lies in kfp-box's data directory, which tasks do not see", src)
	}
	fd, err := unix.Open(src, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil // the task wrote nothing there
	}
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	// The task root is the task's: what it left there (a link where the artifact goes)
	// must not lead the copy elsewhere.
	root, err := os.OpenRoot(hostRoot)
	if err != nil {
		unix.Close(fd)
		return err
	}
	defer root.Close()
	if err := root.RemoveAll(rel); err != nil {
		unix.Close(fd)
		return err
	}
	return copyOwned(fd, src, root, rel, e.taskUID(rs, x))
}

// taskUID is the uid a host task ran as: the platform spec's runAsUser, else
// Config.TaskUser, else kfp-box's own.
func (e *Engine) taskUID(rs *runState, x *meta.Execution) int {
	if _, comp := e.taskOf(rs, x); comp != nil {
		if k := rs.pipe.Platform.Kubernetes(comp.ExecutorLabel); k != nil {
			if sc := k.SecurityContext; sc != nil && sc.RunAsUser != nil {
				return int(*sc.RunAsUser)
			}
		}
	}
	if e.cfg.TaskUser != nil {
		return int(e.cfg.TaskUser.UID)
	}
	return os.Geteuid()
}

// copyOwned copies the file or directory open as fd (named src in errors) to dst inside
// root, which must not exist. It takes ownership of fd. Every file must be a regular file
// or a directory owned by uid; entries are opened relative to their directory without
// following symbolic links, so a path swapped meanwhile cannot lead elsewhere.
func copyOwned(fd int, src string, root *os.Root, dst string, uid int) error {
	f := os.NewFile(uintptr(fd), src)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("%s belongs to uid %d, not to the task's user %d", src, st.Uid, uid)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if err := root.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		out, err := root.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, f); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	case unix.S_IFDIR:
		if err := root.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		for _, n := range names {
			cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(src, n), err)
			}
			if err := copyOwned(cfd, filepath.Join(src, n), root, filepath.Join(dst, n), uid); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%s is neither a regular file nor a directory", src)
}
