// Package bolt is the bbolt backend of storage/kv: one file, fsync on every commit, keys in a
// single bucket.
//
// Bucket layout:
//
//	kv/                 every key of the flat keyspace, ascending byte order
//	sys/revision        int64 big-endian, bumped by each transaction that writes
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kfp-box/kfp-box/storage/kv"
)

var (
	bucketKV  = []byte("kv")
	bucketSys = []byte("sys")
	keyRev    = []byte("revision")
)

func init() {
	kv.Register("bolt", func(ctx context.Context, opts kv.Options) (kv.Store, error) {
		return Open(ctx, opts)
	})
}

// Store is a kv.Store over a bbolt file.
type Store struct {
	db  *bolt.DB
	rev atomic.Int64
	hub kv.Hub
}

var _ kv.Store = (*Store)(nil)

// Open opens or creates the bbolt file at opts.Path. It waits at most until ctx ends (or 10 s)
// for another process's lock on the file.
func Open(ctx context.Context, opts kv.Options) (*Store, error) {
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	db, err := bolt.Open(opts.Path, 0o600, &bolt.Options{Timeout: timeout, NoSync: opts.NoSync, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", opts.Path, err)
	}
	s := &Store{db: db}
	// An existing file is only read: opening must work on a full disk, to serve reads.
	ready := false
	err = db.View(func(tx *bolt.Tx) error {
		sys := tx.Bucket(bucketSys)
		if ready = sys != nil && tx.Bucket(bucketKV) != nil; ready {
			s.rev.Store(decodeRev(sys.Get(keyRev)))
		}
		return nil
	})
	if err == nil && !ready {
		err = db.Update(func(tx *bolt.Tx) error {
			if _, err := tx.CreateBucketIfNotExists(bucketKV); err != nil {
				return err
			}
			sys, err := tx.CreateBucketIfNotExists(bucketSys)
			if err != nil {
				return err
			}
			s.rev.Store(decodeRev(sys.Get(keyRev)))
			return nil
		})
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init %q: %w", opts.Path, err)
	}
	return s, nil
}

func decodeRev(b []byte) int64 {
	if len(b) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// View implements kv.Store.
func (s *Store) View(ctx context.Context, fn func(kv.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(btx *bolt.Tx) error {
		return fn(&tx{btx: btx, rev: decodeRev(btx.Bucket(bucketSys).Get(keyRev))})
	})
}

// Update implements kv.Store.
func (s *Store) Update(ctx context.Context, fn func(kv.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var t *tx
	err := s.db.Update(func(btx *bolt.Tx) error {
		t = &tx{btx: btx, writable: true, rev: decodeRev(btx.Bucket(bucketSys).Get(keyRev))}
		return fn(t)
	})
	return s.committed(t, err)
}

// Batch implements kv.Store.
func (s *Store) Batch(ctx context.Context, fn func(kv.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var t *tx
	err := s.db.Batch(func(btx *bolt.Tx) error {
		t = &tx{btx: btx, writable: true, rev: decodeRev(btx.Bucket(bucketSys).Get(keyRev))}
		return fn(t)
	})
	return s.committed(t, err)
}

func (s *Store) committed(t *tx, err error) error {
	if err != nil || t == nil || len(t.events) == 0 {
		return err
	}
	for {
		cur := s.rev.Load()
		if t.rev <= cur || s.rev.CompareAndSwap(cur, t.rev) {
			break
		}
	}
	s.hub.Publish(t.events)
	return nil
}

// Watch implements kv.Store.
func (s *Store) Watch(ctx context.Context, prefix []byte) (<-chan kv.Event, error) {
	return s.hub.Subscribe(ctx, prefix), nil
}

// Revision implements kv.Store.
func (s *Store) Revision() int64 { return s.rev.Load() }

// Close implements kv.Store.
func (s *Store) Close() error {
	s.hub.CloseAll()
	return s.db.Close()
}

// Stats reports the file's size and the number of keys, for diagnostics.
func (s *Store) Stats() (sizeBytes int64, keys int, err error) {
	err = s.db.View(func(btx *bolt.Tx) error {
		sizeBytes = btx.Size()
		keys = btx.Bucket(bucketKV).Stats().KeyN
		return nil
	})
	return sizeBytes, keys, err
}

type tx struct {
	btx      *bolt.Tx
	writable bool
	rev      int64
	bumped   bool
	events   []kv.Event
}

func (t *tx) Revision() int64 {
	if t.writable && !t.bumped {
		return t.rev + 1
	}
	return t.rev
}

func (t *tx) Get(key []byte) ([]byte, error) {
	v := t.btx.Bucket(bucketKV).Get(key)
	if v == nil {
		return nil, fmt.Errorf("%q: %w", key, kv.ErrNotFound)
	}
	return v, nil
}

func (t *tx) bump() error {
	if !t.writable {
		return kv.ErrReadOnly
	}
	if t.bumped {
		return nil
	}
	t.rev++
	t.bumped = true
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.rev))
	return t.btx.Bucket(bucketSys).Put(keyRev, b[:])
}

func (t *tx) Put(key, value []byte) error {
	if len(key) == 0 {
		return errors.New("empty key")
	}
	if err := t.bump(); err != nil {
		return err
	}
	if err := t.btx.Bucket(bucketKV).Put(key, value); err != nil {
		return err
	}
	t.events = append(t.events, kv.Event{Type: kv.EventPut, Key: append([]byte(nil), key...), Value: append([]byte(nil), value...), Revision: t.rev})
	return nil
}

func (t *tx) Delete(key []byte) error {
	if err := t.bump(); err != nil {
		return err
	}
	b := t.btx.Bucket(bucketKV)
	if b.Get(key) == nil {
		return nil
	}
	if err := b.Delete(key); err != nil {
		return err
	}
	t.events = append(t.events, kv.Event{Type: kv.EventDelete, Key: append([]byte(nil), key...), Revision: t.rev})
	return nil
}

func (t *tx) Scan(prefix, from []byte, reverse bool, fn func(k, v []byte) error) error {
	c := t.btx.Bucket(bucketKV).Cursor()
	var k, v []byte
	switch {
	case !reverse && from != nil:
		k, v = c.Seek(from)
	case !reverse:
		k, v = c.Seek(prefix)
	case reverse && from != nil:
		k, v = c.Seek(from)
		if k == nil {
			k, v = c.Last()
		} else if string(k) > string(from) {
			k, v = c.Prev()
		}
	default:
		end := kv.PrefixEnd(prefix)
		if end == nil {
			k, v = c.Last()
		} else {
			k, v = c.Seek(end)
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
	}
	for ; k != nil; k, v = step(c, reverse) {
		if !hasPrefix(k, prefix) {
			if reverse && string(k) > string(prefix) {
				continue
			}
			break
		}
		if err := fn(k, v); err != nil {
			if errors.Is(err, kv.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

func step(c *bolt.Cursor, reverse bool) ([]byte, []byte) {
	if reverse {
		return c.Prev()
	}
	return c.Next()
}

func hasPrefix(k, p []byte) bool {
	return len(k) >= len(p) && string(k[:len(p)]) == string(p)
}
