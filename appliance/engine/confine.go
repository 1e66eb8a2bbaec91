package engine

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kfp-box/kfp-box/runtime"
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
