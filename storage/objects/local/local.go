// Package local is the object store over plain files: object bucket/key is the regular
// file <root>/<bucket>/<key>, directories are key prefixes. It is the store the embedded
// S3 server (package s3server) serves, so a file a task writes under its mounted output
// directory is an S3 object the moment the task ends.
//
// Every file operation goes through an os.Root, so no key and no symlink a task leaves
// behind can reach outside the root. Writes go to a temporary file under
// <root>/<bucket>/.sgwtmp (the directory the embedded S3 server also uses and hides) and
// are renamed into place, so readers never see a partial object.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kfp-box/kfp-box/storage/objects"
)

var (
	_ objects.Store       = (*Store)(nil)
	_ objects.LocalPather = (*Store)(nil)
)

// Store is an objects.Store over the plain files below one root directory.
type Store struct {
	dir  string
	root *os.Root
	log  *slog.Logger
}

// New opens (creating it if needed) the store rooted at dir, usually $DATA/objects.
func New(dir string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("object root %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("object root %q: %w", abs, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("object root %q: %w", abs, err)
	}
	return &Store{dir: abs, root: root, log: logger.With("component", "objects.local")}, nil
}

// Close releases the root directory handle.
func (s *Store) Close() error { return s.root.Close() }

// Dir returns the absolute root directory.
func (s *Store) Dir() string { return s.dir }

// EnsureBucket creates the bucket's directory if it does not exist.
func (s *Store) EnsureBucket(bucket string) error {
	if err := objects.ValidateBucket(bucket); err != nil {
		return err
	}
	if err := s.root.MkdirAll(bucket, 0o755); err != nil {
		return fmt.Errorf("bucket %q: %w", bucket, err)
	}
	return nil
}

// LocalPath returns <root>/<bucket>/<key>; key may be empty or a prefix ending in '/'.
func (s *Store) LocalPath(bucket, key string) (string, error) {
	if err := objects.ValidateBucket(bucket); err != nil {
		return "", err
	}
	if err := objects.ValidatePrefix(key); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, bucket, filepath.FromSlash(key)), nil
}

func name(bucket, key string) (string, error) {
	if err := objects.ValidateBucket(bucket); err != nil {
		return "", err
	}
	if err := objects.ValidateKey(key); err != nil {
		return "", err
	}
	return bucket + "/" + key, nil
}

// Put writes r to a temporary file and renames it over bucket/key.
func (s *Store) Put(ctx context.Context, bucket, key string, r io.Reader, size int64) (err error) {
	n, err := name(bucket, key)
	if err != nil {
		return err
	}
	tmpDir := bucket + "/" + objects.ReservedPrefix
	if err := s.root.MkdirAll(tmpDir, 0o755); err != nil {
		return fmt.Errorf("put %q: %w", n, err)
	}
	tmpName, f, err := s.createTemp(tmpDir)
	if err != nil {
		return fmt.Errorf("put %q: %w", n, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = s.root.Remove(tmpName)
		}
	}()
	if r == nil {
		r = eofReader{}
	}
	written, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return fmt.Errorf("put %q: %w", n, err)
	}
	if size >= 0 && written != size {
		return fmt.Errorf("put %q: read %d bytes, want %d: %w", n, written, size, objects.ErrInvalid)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("put %q: %w", n, err)
	}
	// A concurrent Delete may prune the parent directory between MkdirAll and Rename;
	// try again a few times in that case.
	for attempt := 0; ; attempt++ {
		if err = s.root.MkdirAll(path.Dir(n), 0o755); err == nil {
			if err = s.root.Rename(tmpName, n); err == nil {
				return nil
			}
		}
		if attempt >= 3 || !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if fi, serr := s.root.Lstat(n); serr == nil && fi.IsDir() {
		return fmt.Errorf("put %q: key is a prefix of other objects: %w", n, objects.ErrInvalid)
	}
	return fmt.Errorf("put %q: %w", n, err)
}

func (s *Store) createTemp(dir string) (string, *os.File, error) {
	for i := 0; ; i++ {
		n := fmt.Sprintf("%s/put-%d-%d", dir, os.Getpid(), randUint())
		f, err := s.root.OpenFile(n, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return n, f, nil
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return "", nil, err
		}
	}
}

// Get opens bucket/key and returns a reader over [off, off+n).
func (s *Store) Get(ctx context.Context, bucket, key string, off, n int64) (io.ReadCloser, error) {
	nm, err := name(bucket, key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if fi, err := s.root.Lstat(nm); err != nil {
		return nil, s.mapErr(bucket, nm, err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("object %q: %w", nm, objects.ErrNotFound)
	}
	f, err := s.root.Open(nm)
	if err != nil {
		return nil, s.mapErr(bucket, nm, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("get %q: %w", nm, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("object %q: %w", nm, objects.ErrNotFound)
	}
	size := fi.Size()
	if off < 0 || off > size {
		_ = f.Close()
		return nil, fmt.Errorf("get %q: offset %d outside [0, %d]: %w", nm, off, size, objects.ErrInvalid)
	}
	if n < 0 || off+n > size {
		n = size - off
	}
	return &sectionFile{SectionReader: io.NewSectionReader(f, off, n), f: f}, nil
}

// sectionFile reads a section of a file and closes the file.
type sectionFile struct {
	*io.SectionReader
	f *os.File
}

func (s *sectionFile) Close() error { return s.f.Close() }

// Stat describes bucket/key.
func (s *Store) Stat(ctx context.Context, bucket, key string) (objects.Info, error) {
	nm, err := name(bucket, key)
	if err != nil {
		return objects.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return objects.Info{}, err
	}
	fi, err := s.root.Lstat(nm)
	if err != nil {
		return objects.Info{}, s.mapErr(bucket, nm, err)
	}
	if !fi.Mode().IsRegular() {
		return objects.Info{}, fmt.Errorf("object %q: %w", nm, objects.ErrNotFound)
	}
	return objects.Info{Bucket: bucket, Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List walks the directory that holds prefix and returns the regular files whose keys
// start with prefix. Symbolic links and other special files are not objects.
func (s *Store) List(ctx context.Context, bucket, prefix string) ([]objects.Info, error) {
	if err := objects.ValidateBucket(bucket); err != nil {
		return nil, err
	}
	if err := objects.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	if fi, err := s.root.Stat(bucket); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("bucket %q: %w", bucket, objects.ErrNotFound)
	}
	start := bucket
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = bucket + "/" + prefix[:i]
	}
	out := []objects.Info{}
	fsys := s.root.FS()
	err := fs.WalkDir(fsys, start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || (p == start && errors.Is(err, fs.ErrInvalid)) {
				return nil
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		key := strings.TrimPrefix(p, bucket+"/")
		if d.IsDir() {
			if p == bucket+"/"+objects.ReservedPrefix {
				return fs.SkipDir
			}
			// Prune directories that cannot contain a match.
			if p != start && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while walking
			}
			return err
		}
		out = append(out, objects.Info{Bucket: bucket, Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %q prefix %q: %w", bucket, prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes bucket/key and then any parent directories it left empty.
func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	nm, err := name(bucket, key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := s.root.Lstat(nm)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %q: %w", nm, err)
	}
	if err := s.root.Remove(nm); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %q: %w", nm, err)
	}
	for dir := path.Dir(nm); dir != bucket && dir != "."; dir = path.Dir(dir) {
		if s.root.Remove(dir) != nil { // not empty, or gone: stop pruning
			break
		}
	}
	return nil
}

func (s *Store) mapErr(bucket, nm string, err error) error {
	// ENOTDIR (a path component is a file) reads as fs.ErrInvalid or a PathError; both
	// mean the object does not exist.
	var pe *fs.PathError
	if errors.Is(err, fs.ErrNotExist) || errors.As(err, &pe) && isNotDir(pe.Err) {
		if _, berr := s.root.Stat(bucket); berr != nil {
			return fmt.Errorf("bucket %q: %w", bucket, objects.ErrNotFound)
		}
		return fmt.Errorf("object %q: %w", nm, objects.ErrNotFound)
	}
	return fmt.Errorf("object %q: %w", nm, err)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
