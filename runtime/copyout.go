package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FileCopier is an optional ability of a Runtime, found by type assertion: CopyOut copies
// what an exited task left at path in its own file system (a file or a directory tree) to
// dst on the host, before the task is deleted, as `docker cp` does. Files the task wrote into
// its mounts are not covered (they already are on the host).
type FileCopier interface {
	// CopyOut copies path of task taskID to dst, replacing dst. Errors wrap ErrNotFound when
	// the task or the path does not exist.
	CopyOut(ctx context.Context, taskID, path, dst string) error
}

// CopyOut copies path, resolved inside the directory root so that neither ".." nor symbolic
// links lead out of it, to dst: a regular file, or a directory tree whose entries are
// directories and regular files (symbolic links in it are refused). dst is replaced. A path
// that does not exist wraps ErrNotFound.
func CopyOut(root, path, dst string) error {
	rel := strings.TrimLeft(filepath.Clean("/"+path), "/")
	if rel == "" {
		rel = "."
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("copy %q: %w", path, err)
	}
	defer r.Close()
	fi, err := r.Stat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("copy %q: %w", path, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("copy %q: %w", path, err)
	}
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		sub, err := fs.Sub(r.FS(), rel)
		if err != nil {
			return fmt.Errorf("copy %q: %w", path, err)
		}
		if err := os.CopyFS(dst, sub); err != nil {
			return fmt.Errorf("copy %q: %w", path, err)
		}
		return nil
	case fi.Mode().IsRegular():
		in, err := r.Open(rel)
		if err != nil {
			return fmt.Errorf("copy %q: %w", path, err)
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return fmt.Errorf("copy %q: %w", path, err)
		}
		return out.Close()
	}
	return fmt.Errorf("copy %q: not a regular file or a directory: %w", path, ErrInvalid)
}
