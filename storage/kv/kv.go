// Package kv is kfp-box's ordered key-value store: a flat, etcd-like keyspace of byte keys,
// serialisable transactions, a global revision counter bumped by every write transaction, and
// prefix watches. The metadata repositories (storage/meta) and, later, the Kubernetes-compatible
// subset (resourceVersion, watch) share it, and an etcd-API backend (kine) can stand behind the
// same interface.
//
// Backends register themselves with Register and are opened by Open; the bbolt backend
// (storage/kv/bolt) is the default. Every backend passes kvtest.Run.
package kv

import (
	"context"
	"errors"

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
)

// Store is an ordered key-value store.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction that is durable (fsynced) when Update
	// returns nil. If fn returns an error nothing is written.
	Update(ctx context.Context, fn func(Tx) error) error
	// Batch is Update for hot paths: concurrent calls may be coalesced into one commit, and
	// fn may run more than once, so it must be idempotent. Durable when Batch returns nil.
	Batch(ctx context.Context, fn func(Tx) error) error
	// Watch streams the events of every committed write under prefix until ctx ends.
	Watch(ctx context.Context, prefix []byte) (<-chan Event, error)
	// Revision is the revision of the last committed write transaction.
	Revision() int64
	// Close releases the store.
	Close() error
}

// Tx is a transaction. Values returned by Get and passed to Scan callbacks are valid only
// until the transaction ends; copy them to keep them.
type Tx interface {
	// Get returns the value of key or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// Put sets key to value.
	Put(key, value []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(key []byte) error
	// Scan calls fn for each key with the prefix in ascending order (descending when reverse),
	// starting at from when it is non-nil (inclusive). Returning ErrStop ends the scan early.
	Scan(prefix, from []byte, reverse bool, fn func(key, value []byte) error) error
	// Revision is the revision this transaction reads at; in a write transaction, the revision
	// its writes will carry.
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
	// Path is the backend's file or DSN.
	Path string
	// NoSync disables fsync (tests and benchmarks of raw speed only).
	NoSync bool
}

// Factory opens a backend.
type Factory func(ctx context.Context, opts Options) (Store, error)

// backends are the registered kv backends.
var backends = registry.New[Factory]("kv backend")

// Register makes a backend available under id; call it from init.
func Register(id string, f Factory) { backends.Register(id, f) }

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
