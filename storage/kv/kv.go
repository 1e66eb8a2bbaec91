// Package kv is kfp-box's ordered key-value store: a flat, etcd-like keyspace of byte keys,
// serialisable transactions, increasing revisions (each key remembers the revision of its last
// write; Update returns the revision it committed at), and prefix watches that can start from
// a past revision. The metadata repositories (storage/meta) and the Kubernetes-compatible
// subset (resourceVersion, watch) share it.
//
// Backends register themselves with Register and are opened by Open: the bbolt file
// (storage/kv/bolt, the default) and PostgreSQL or MySQL through kine (storage/kv/kine),
// chosen by EndpointBackend. Every backend passes kvtest.Run. Copy and Digest move and verify
// a whole keyspace between backends (kfp-box datastore migrate).
package kv

import (
	"context"
	"errors"
	"log/slog"

	"github.com/kfp-box/kfp-box/internal/registry"
)

// Sentinel errors.
var (
	// ErrNotFound is returned by Get for a missing key.
	ErrNotFound = errors.New("key not found")
	// ErrReadOnly is returned when a read-only transaction tries to write.
	ErrReadOnly = errors.New("read-only transaction")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("store closed")
	// ErrCompacted is returned by Watch when the events from the requested revision are no
	// longer kept; the watcher must list again (the Kubernetes layer answers 410 Gone).
	ErrCompacted = errors.New("revision compacted")
)

// Store is an ordered key-value store.
//
// Revisions: every committed write carries a revision greater than every revision committed
// before it, and every key remembers the revision of its last write (its modification
// revision). A transaction does not know the revision its writes will carry until it has
// committed: Update returns it. Backends differ in how revisions advance (bbolt gives a whole
// transaction one revision; kine gives each written key its own), so callers compare
// revisions but never compute them.
type Store interface {
	// View runs fn in a read-only transaction that sees one consistent snapshot.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction that is durable when Update returns nil, and
	// returns the revision of its last write (the snapshot's revision when it wrote nothing).
	// If fn returns an error nothing is written. fn may run more than once (a backend
	// retries it after a conflicting commit), so it must derive everything from what it
	// reads and reset any state it keeps outside the transaction.
	Update(ctx context.Context, fn func(Tx) error) (int64, error)
	// Batch is Update for hot paths: concurrent calls may be coalesced into one commit.
	// Durable when Batch returns nil; fn may run more than once, as with Update.
	Batch(ctx context.Context, fn func(Tx) error) (int64, error)
	// Watch streams the events of committed writes under prefix whose revision is at least
	// from (0: the writes committed after Watch returns), in revision order, until ctx ends.
	// It returns an error wrapping ErrCompacted when the events at from are no longer kept.
	// The channel closes when ctx ends or, earlier, when the watcher falls too far behind;
	// a watcher that sees an early close watches again from its last revision + 1.
	Watch(ctx context.Context, prefix []byte, from int64) (<-chan Event, error)
	// Revision is the revision of the last committed write.
	Revision(ctx context.Context) (int64, error)
	// Close releases the store.
	Close() error
}

// Compactor is the optional ability to drop the history of revisions up to and including
// rev; watches from those revisions then fail with ErrCompacted.
type Compactor interface {
	// Compact drops the events of revisions up to and including rev.
	Compact(ctx context.Context, rev int64) error
}

// Tx is a transaction. Values returned by Get and passed to Scan callbacks are valid only
// until the transaction ends; copy them to keep them.
type Tx interface {
	// Get returns the value of key or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// GetRevision returns the value of key and its modification revision, or ErrNotFound.
	// For a key written earlier in the same write transaction the revision is not yet known
	// and is unspecified (Update returns it).
	GetRevision(key []byte) ([]byte, int64, error)
	// Put sets key to value.
	Put(key, value []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(key []byte) error
	// Scan calls fn for each key with the prefix in ascending order (descending when reverse),
	// starting at from when it is non-nil (inclusive), with the key's modification revision.
	// Returning ErrStop ends the scan early.
	Scan(prefix, from []byte, reverse bool, fn func(key, value []byte, rev int64) error) error
	// Revision is the revision of the snapshot this transaction reads. It is not the revision
	// a write transaction's writes will carry: Update returns that.
	Revision() int64
}

// ErrStop ends a Scan early without error.
var ErrStop = errors.New("stop scan")

// EventType says what happened to a key.
type EventType int

// Event types.
const (
	EventPut EventType = iota + 1
	EventDelete
)

// Event is one committed change.
type Event struct {
	Type     EventType
	Key      []byte
	Value    []byte // nil for deletes
	Revision int64
}

// Options configure a backend.
type Options struct {
	// Path is the backend's file or, for kine, the datastore URL.
	Path string
	// NoSync disables fsync (tests and benchmarks of raw speed only).
	NoSync bool
	// Logger receives the backend's warnings (nil: discarded).
	Logger *slog.Logger
}

// Factory opens a backend.
type Factory func(ctx context.Context, opts Options) (Store, error)

// backends are the registered kv backends.
var backends = registry.New[Factory]("kv backend")

// Register makes a backend available under id; call it from init.
func Register(id string, f Factory) { backends.Register(id, nil, f) }

// Open opens the backend registered under id.
func Open(ctx context.Context, id string, opts Options) (Store, error) {
	f, ok := backends.Lookup(id)
	if !ok {
		return nil, errors.New(backends.Missing(id))
	}
	return f(ctx, opts)
}

// Registered lists the registered backend ids, sorted.
func Registered() []string { return backends.IDs() }

// PrefixEnd returns the smallest key greater than every key with the prefix, or nil.
func PrefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
