package objects

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors. Backends wrap them with %w and quote the bucket and key.
var (
	// ErrNotFound reports a missing bucket or object.
	ErrNotFound = errors.New("not found")
	// ErrInvalid reports a malformed bucket, key, URI or range.
	ErrInvalid = errors.New("invalid argument")
	// ErrUnsupported reports a URI scheme or operation the configured store cannot serve,
	// for example a gs:// pipeline root without a GCS store.
	ErrUnsupported = errors.New("unsupported")
)

// Info describes one stored object.
type Info struct {
	// Bucket is the bucket holding the object.
	Bucket string
	// Key is the object's full key inside the bucket.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ModTime is the object's last modification time.
	ModTime time.Time
	// ETag is the backend's entity tag, empty when the backend has none.
	ETag string
}

// Store is an object store: buckets of keyed byte streams. Keys use '/' as separator;
// a "folder" is simply a key prefix ending in '/'. Implementations are safe for
// concurrent use.
type Store interface {
	// Put stores r as the object bucket/key, replacing any previous object atomically:
	// readers see either the old or the new bytes, never a mix. size is the exact length
	// of r, or -1 when unknown (the backend then streams in parts).
	Put(ctx context.Context, bucket, key string, r io.Reader, size int64) error
	// Get opens the object for reading from byte off. n is the number of bytes to read,
	// or -1 for everything up to the end; a range past the end is shortened. off must lie
	// within [0, size]; otherwise Get returns ErrInvalid.
	Get(ctx context.Context, bucket, key string, off, n int64) (io.ReadCloser, error)
	// Stat describes the object bucket/key; a missing object (or a key that is only a
	// prefix of other objects) yields ErrNotFound.
	Stat(ctx context.Context, bucket, key string) (Info, error)
	// List returns every object whose key starts with prefix, recursively, sorted by key.
	// A missing bucket yields ErrNotFound; no match yields an empty slice.
	List(ctx context.Context, bucket, prefix string) ([]Info, error)
	// Delete removes the object bucket/key. Deleting a missing object is not an error,
	// as in S3.
	Delete(ctx context.Context, bucket, key string) error
}

// LocalPather is the optional ability of stores whose objects are plain local files:
// the engine bind-mounts the returned path into a task instead of copying bytes.
type LocalPather interface {
	// LocalPath returns the absolute file path of bucket/key (which need not exist yet;
	// for a prefix it is the directory holding the prefix's objects). It validates bucket
	// and key and never returns a path outside the store's root.
	LocalPath(bucket, key string) (string, error)
}

// DeletePrefix deletes every object whose key starts with prefix and returns how many
// objects and bytes were removed. It is what retention uses to drop a folder artifact.
func DeletePrefix(ctx context.Context, s Store, bucket, prefix string) (objects int, bytes int64, err error) {
	infos, err := s.List(ctx, bucket, prefix)
	if err != nil {
		return 0, 0, err
	}
	for _, in := range infos {
		if err := s.Delete(ctx, bucket, in.Key); err != nil {
			return objects, bytes, err
		}
		objects++
		bytes += in.Size
	}
	return objects, bytes, nil
}
