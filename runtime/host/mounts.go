package host

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kfp-box/kfp-box/runtime"
)

// mounter builds a task's view of the filesystem inside the shim's private mount
// namespace. Bind mounts need their targets to exist; a target that does not exist on the
// host (/minio/<bucket>/... in KFP) must not be created there. So the directory that would
// receive the new entry is replaced, in the namespace only, by a tmpfs "copy": a tmpfs whose
// entries are bind mounts of the original's entries. New directories are then made on the
// tmpfs. For a missing top-level directory the copy is of "/" itself and the task is
// chrooted into it; deeper copies are moved over the original directory.
//
// Everything the mounter does vanishes with the namespace when the shim exits; on the
// host only the empty directories under scratch remain, inside the task's state directory.
type mounter struct {
	// scratch is where tmpfs copies are mounted before use (the state dir's mnt/).
	scratch string
	// log receives diagnostics (the shim's stderr).
	log io.Writer

	// root is "" or the tmpfs copy of "/" the task is chrooted into.
	root string
	// copies are directories replaced by a tmpfs copy: new entries can be made in them.
	copies []string
	// created are directories made on a tmpfs: anything below them is tmpfs too.
	created []string
	// targets are bind mounts done so far; a directory inside one is made in its source,
	// as container runtimes do for nested mounts.
	targets []string
	n       int
}

// setup performs mounts and makes sure workDir exists, in the shim's view. Afterwards
// m.root is the directory to chroot the task into ("" for none).
func (m *mounter) setup(mounts []runtime.Mount, workDir string) error {
	needRoot := false
	for _, p := range append(mountTargets(mounts), workDir) {
		if p == "" {
			continue
		}
		if _, err := os.Stat("/" + firstComponent(p)); err != nil {
			needRoot = true
		}
	}
	if needRoot {
		c, err := m.copyDir("/")
		if err != nil {
			return fmt.Errorf("copy of /: %w", err)
		}
		m.root = c
		m.copies = append(m.copies, c)
	}
	for _, mt := range mounts {
		fi, err := os.Stat(mt.Source)
		if err != nil {
			return fmt.Errorf("mount source: %w", err)
		}
		dst := m.root + filepath.Clean(mt.Target)
		if err := m.ensure(dst, fi.IsDir()); err != nil {
			return fmt.Errorf("mount target %s: %w", mt.Target, err)
		}
		if err := unix.Mount(mt.Source, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", mt.Source, mt.Target, err)
		}
		if mt.ReadOnly {
			flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
			if err := unix.Mount("", dst, "", flags, ""); err != nil {
				return fmt.Errorf("remount %s read-only: %w", mt.Target, err)
			}
		}
		m.targets = append(m.targets, dst)
	}
	if workDir != "" {
		if err := m.ensure(m.root+filepath.Clean(workDir), true); err != nil {
			return fmt.Errorf("work dir %s: %w", workDir, err)
		}
	}
	return nil
}

// hide covers each of paths, in the task's view, with an empty read-only tmpfs. It runs
// after setup: the bind mounts made from sources inside a hidden path stay at their
// targets, and only the paths themselves go dark. Mounts whose targets lie inside a hidden
// path (a Python environment mounted where it lives in the data directory) are made again
// on the tmpfs, from the mount already made (held open across the covering), so the task
// sees exactly the paths it was given there. A path that does not exist has nothing to hide.
func (m *mounter) hide(paths []string, mounts []runtime.Mount) error {
	for _, p := range paths {
		dst := m.root + filepath.Clean(p)
		if _, err := os.Stat(dst); err != nil {
			continue
		}
		var inner []runtime.Mount
		for _, mt := range mounts {
			if within(mt.Target, p) && filepath.Clean(mt.Target) != filepath.Clean(p) {
				inner = append(inner, mt)
			}
		}
		// Hold each inner mount open before the tmpfs covers it.
		fds := make([]int, len(inner))
		for i, mt := range inner {
			fd, err := unix.Open(m.root+filepath.Clean(mt.Target), unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				for _, f := range fds[:i] {
					unix.Close(f)
				}
				return fmt.Errorf("hide %s: keep %s: %w", p, mt.Target, err)
			}
			fds[i] = fd
		}
		err := m.cover(p, dst, inner, fds)
		for _, f := range fds {
			unix.Close(f)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// cover mounts the hiding tmpfs at dst and puts the inner mounts (held by fds) back on it.
func (m *mounter) cover(p, dst string, inner []runtime.Mount, fds []int) error {
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	opts := "size=4k,nr_inodes=1,mode=755"
	if len(inner) > 0 {
		opts = "size=64k,nr_inodes=4096,mode=755" // room for the inner targets' directories
	} else {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("tmpfs", dst, "tmpfs", flags, opts); err != nil {
		return fmt.Errorf("hide %s: %w", p, err)
	}
	if len(inner) == 0 {
		return nil
	}
	for i, mt := range inner {
		t := m.root + filepath.Clean(mt.Target)
		var st unix.Stat_t
		if err := unix.Fstat(fds[i], &st); err != nil {
			return fmt.Errorf("hide %s: %s: %w", p, mt.Target, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := os.MkdirAll(t, 0o755); err != nil {
				return fmt.Errorf("hide %s: %s: %w", p, mt.Target, err)
			}
		} else {
			if err := os.MkdirAll(filepath.Dir(t), 0o755); err != nil {
				return fmt.Errorf("hide %s: %s: %w", p, mt.Target, err)
			}
			f, err := os.OpenFile(t, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return fmt.Errorf("hide %s: %s: %w", p, mt.Target, err)
			}
			f.Close()
		}
		src := "/proc/self/fd/" + strconv.Itoa(fds[i])
		if err := unix.Mount(src, t, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("hide %s: bind %s again: %w", p, mt.Target, err)
		}
		if mt.ReadOnly {
			if err := unix.Mount("", t, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				return fmt.Errorf("hide %s: remount %s read-only: %w", p, mt.Target, err)
			}
		}
	}
	// The tmpfs itself goes read-only; the mounts on it keep their own modes.
	if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_RDONLY|flags, ""); err != nil {
		return fmt.Errorf("hide %s: make it read-only: %w", p, err)
	}
	return nil
}

func mountTargets(mounts []runtime.Mount) []string {
	out := make([]string, len(mounts))
	for i, mt := range mounts {
		out[i] = mt.Target
	}
	return out
}

// firstComponent returns "minio" for "/minio/mlpipeline/x".
func firstComponent(p string) string {
	p = strings.TrimLeft(filepath.Clean(p), "/")
	first, _, _ := strings.Cut(p, "/")
	return first
}

// ensure makes p exist as a directory (dir) or an empty file, without creating anything on
// the host's filesystems.
func (m *mounter) ensure(p string, dir bool) error {
	if fi, err := os.Stat(p); err == nil {
		if fi.IsDir() != dir {
			return fmt.Errorf("%s exists with the wrong type (directory: %v)", p, fi.IsDir())
		}
		return nil
	}
	a := filepath.Dir(p)
	for {
		if _, err := os.Stat(a); err == nil {
			break
		}
		a = filepath.Dir(a)
	}
	if !m.writable(a) {
		c, err := m.copyDir(a)
		if err != nil {
			return fmt.Errorf("copy of %s: %w", a, err)
		}
		if err := unix.Mount(c, a, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move copy over %s: %w", a, err)
		}
		m.copies = append(m.copies, a)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if dir {
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
	} else {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		f.Close()
	}
	// The first new component below a: everything from there on is on a tmpfs.
	rel, _ := filepath.Rel(a, p)
	m.created = append(m.created, filepath.Join(a, firstComponent("/"+rel)))
	return nil
}

// writable reports whether new entries may be made in directory a: it is a tmpfs copy, lies
// in a directory made on one, or lies inside a bind mount done for the task.
func (m *mounter) writable(a string) bool {
	for _, c := range m.copies {
		if a == c {
			return true
		}
	}
	for _, list := range [][]string{m.created, m.targets} {
		for _, d := range list {
			if a == d || strings.HasPrefix(a, d+"/") {
				return true
			}
		}
	}
	return false
}

// copyDir mounts a tmpfs under scratch holding a bind mount (or symlink) for each entry of
// dir and returns its path. The tmpfs is unbindable so that recursive binds of its
// ancestors (the copy of "/" binds /var, which holds the scratch directory) skip it.
func (m *mounter) copyDir(dir string) (string, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return "", err
	}
	c := filepath.Join(m.scratch, strconv.Itoa(m.n))
	m.n++
	if err := os.MkdirAll(c, 0o755); err != nil {
		return "", err
	}
	if err := unix.Mount("tmpfs", c, "tmpfs", 0, "mode=755"); err != nil {
		return "", fmt.Errorf("tmpfs: %w", err)
	}
	if err := unix.Mount("", c, "", unix.MS_UNBINDABLE, ""); err != nil {
		return "", fmt.Errorf("make unbindable: %w", err)
	}
	if err := os.Chmod(c, fi.Mode()&(os.ModePerm|os.ModeSticky|os.ModeSetuid|os.ModeSetgid)); err != nil {
		return "", err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if err := os.Lchown(c, int(st.Uid), int(st.Gid)); err != nil {
			return "", err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		src, dst := filepath.Join(dir, e.Name()), filepath.Join(c, e.Name())
		if e.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err == nil {
				err = os.Symlink(target, dst)
			}
			if err != nil {
				fmt.Fprintf(m.log, "copy of %s: symlink %s: %v\n", dir, e.Name(), err)
			}
			continue
		}
		if e.IsDir() {
			err = os.Mkdir(dst, 0o755)
		} else {
			var f *os.File
			if f, err = os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				f.Close()
			}
		}
		if err == nil {
			err = unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, "")
		}
		if err != nil {
			// An entry that cannot be bound (it vanished, or is the unbindable scratch
			// of another task) is left out of the copy rather than failing the task.
			fmt.Fprintf(m.log, "copy of %s: bind %s: %v\n", dir, e.Name(), err)
			_ = os.Remove(dst)
		}
	}
	return c, nil
}
