package objects

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultParallel is how many objects StageIn and StageOut move at once by default.
const DefaultParallel = 8

// Transfer pairs an artifact URI with a local path: a single object and a file, or a
// folder (key prefix) and a directory.
type Transfer struct {
	// URI is the artifact's remote location; its bucket and key are used, its scheme is
	// not (the store decides where it lives).
	URI URI
	// Path is the local file or directory.
	Path string
}

// StageOptions tune StageIn and StageOut.
type StageOptions struct {
	// Parallel bounds concurrent object transfers; DefaultParallel when zero.
	Parallel int
	// Logger receives one debug line per transfer; nil discards.
	Logger *slog.Logger
}

// StageStats counts what a stage moved.
type StageStats struct {
	Files int64
	Bytes int64
}

type job struct {
	bucket, key string
	path        string
	size        int64
}

// StageIn downloads every transfer before a task runs, as KFP's launcher does: a URI
// naming an object becomes the file Path, a URI naming a folder (objects below key + "/")
// becomes the directory Path with the same tree. Files are written to a temporary name and
// renamed, streamed without buffering whole objects, at most opts.Parallel at a time. The
// first failure cancels the rest.
func StageIn(ctx context.Context, s Store, ts []Transfer, opts StageOptions) (StageStats, error) {
	var jobs []job
	for _, t := range ts {
		if err := ValidateKey(strings.TrimSuffix(t.URI.Key, "/")); err != nil {
			return StageStats{}, fmt.Errorf("stage in %q: %w", t.URI.String(), err)
		}
		key := strings.TrimSuffix(t.URI.Key, "/")
		info, err := s.Stat(ctx, t.URI.Bucket, key)
		if err == nil {
			jobs = append(jobs, job{bucket: t.URI.Bucket, key: key, path: t.Path, size: info.Size})
			continue
		}
		if !errors.Is(err, ErrNotFound) {
			return StageStats{}, fmt.Errorf("stage in %q: %w", t.URI.String(), err)
		}
		infos, err := s.List(ctx, t.URI.Bucket, key+"/")
		if err != nil {
			return StageStats{}, fmt.Errorf("stage in %q: %w", t.URI.String(), err)
		}
		if len(infos) == 0 {
			return StageStats{}, fmt.Errorf("stage in %q: no object or folder: %w", t.URI.String(), ErrNotFound)
		}
		if err := os.MkdirAll(t.Path, 0o755); err != nil {
			return StageStats{}, fmt.Errorf("stage in %q: %w", t.URI.String(), err)
		}
		for _, in := range infos {
			rel := strings.TrimPrefix(in.Key, key+"/")
			jobs = append(jobs, job{bucket: in.Bucket, key: in.Key, path: filepath.Join(t.Path, filepath.FromSlash(rel)), size: in.Size})
		}
	}
	return run(ctx, jobs, opts, download(s))
}

func download(s Store) func(ctx context.Context, j job) (int64, error) {
	return func(ctx context.Context, j job) (int64, error) {
		if err := os.MkdirAll(filepath.Dir(j.path), 0o755); err != nil {
			return 0, err
		}
		rc, err := s.Get(ctx, j.bucket, j.key, 0, -1)
		if err != nil {
			return 0, err
		}
		defer rc.Close()
		f, err := os.CreateTemp(filepath.Dir(j.path), ".stage-*")
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(f, rc)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && n != j.size {
			err = fmt.Errorf("read %d bytes, want %d: object changed while staging", n, j.size)
		}
		if err == nil {
			err = os.Chmod(f.Name(), 0o644)
		}
		if err == nil {
			err = os.Rename(f.Name(), j.path)
		}
		if err != nil {
			_ = os.Remove(f.Name())
			return 0, err
		}
		return n, nil
	}
}

// StageOut uploads every transfer after a task succeeds: a file Path becomes the object
// URI, a directory Path becomes objects below URI's key + "/", one per regular file.
// Symbolic links and special files are skipped (a task must not publish files it merely
// points at). A missing Path yields ErrNotFound.
func StageOut(ctx context.Context, s Store, ts []Transfer, opts StageOptions) (StageStats, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var jobs []job
	for _, t := range ts {
		key := strings.TrimSuffix(t.URI.Key, "/")
		if err := ValidateKey(key); err != nil {
			return StageStats{}, fmt.Errorf("stage out %q: %w", t.URI.String(), err)
		}
		fi, err := os.Lstat(t.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return StageStats{}, fmt.Errorf("stage out %q: local path %q: %w", t.URI.String(), t.Path, ErrNotFound)
		}
		if err != nil {
			return StageStats{}, fmt.Errorf("stage out %q: %w", t.URI.String(), err)
		}
		if fi.Mode().IsRegular() {
			jobs = append(jobs, job{bucket: t.URI.Bucket, key: key, path: t.Path, size: fi.Size()})
			continue
		}
		if !fi.IsDir() {
			return StageStats{}, fmt.Errorf("stage out %q: %q is not a file or directory: %w", t.URI.String(), t.Path, ErrInvalid)
		}
		err = filepath.WalkDir(t.Path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			if !d.Type().IsRegular() {
				log.Warn("stage out: skipping a file that is not regular", "path", p, "type", d.Type().String())
				return nil
			}
			rel, err := filepath.Rel(t.Path, p)
			if err != nil {
				return err
			}
			k := key + "/" + filepath.ToSlash(rel)
			if err := ValidateKey(k); err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			jobs = append(jobs, job{bucket: t.URI.Bucket, key: k, path: p, size: fi.Size()})
			return nil
		})
		if err != nil {
			return StageStats{}, fmt.Errorf("stage out %q: %w", t.URI.String(), err)
		}
	}
	return run(ctx, jobs, opts, upload(s))
}

func upload(s Store) func(ctx context.Context, j job) (int64, error) {
	return func(ctx context.Context, j job) (int64, error) {
		f, err := os.Open(j.path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return 0, err
		}
		if err := s.Put(ctx, j.bucket, j.key, f, fi.Size()); err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
}

// run executes jobs with at most opts.Parallel in flight; the first error cancels the
// others and is returned.
func run(ctx context.Context, jobs []job, opts StageOptions, do func(context.Context, job) (int64, error)) (StageStats, error) {
	par := opts.Parallel
	if par <= 0 {
		par = DefaultParallel
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		files, bytes atomic.Int64
		once         sync.Once
		firstErr     error
		wg           sync.WaitGroup
	)
	sem := make(chan struct{}, par)
	for _, j := range jobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n, err := do(ctx, j)
			if err != nil {
				once.Do(func() {
					firstErr = fmt.Errorf("%q <-> %q: %w", j.bucket+"/"+j.key, j.path, err)
					cancel()
				})
				return
			}
			log.Debug("staged", "object", j.bucket+"/"+j.key, "path", j.path, "bytes", n)
			files.Add(1)
			bytes.Add(n)
		}()
	}
	wg.Wait()
	st := StageStats{Files: files.Load(), Bytes: bytes.Load()}
	if firstErr != nil {
		return st, firstErr
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	return st, nil
}
