// Package bolt is the bbolt backend of storage/kv: one file, fsync on every commit, keys in a
// single bucket. A write transaction's writes all carry one revision; the history that
// watches from a past revision replay is kept in memory (kv.Hub) from the moment the file
// was opened.
//
// Bucket layout:
//
//	kv/                 every key of the flat keyspace, ascending byte order
//	mod/                the same keys: int64 big-endian, the key's modification revision
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
	bucketMod = []byte("mod")
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
		if ready = sys != nil && tx.Bucket(bucketKV) != nil && tx.Bucket(bucketMod) != nil; ready {
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
			rev := decodeRev(sys.Get(keyRev))
			s.rev.Store(rev)
			return addModBucket(tx, rev)
		})
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init %q: %w", opts.Path, err)
	}
	s.hub.SetFloor(s.rev.Load())
	return s, nil
}

// addModBucket creates the mod bucket of a file written before keys carried revisions: every
// existing key gets the file's current revision.
func addModBucket(tx *bolt.Tx, rev int64) error {
	if tx.Bucket(bucketMod) != nil {
		return nil
	}
	mod, err := tx.CreateBucket(bucketMod)
	if err != nil {
		return err
	}
	enc := encodeRev(rev)
	return tx.Bucket(bucketKV).ForEach(func(k, _ []byte) error { return mod.Put(k, enc) })
}

func encodeRev(rev int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(rev))
	return b[:]
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
		return fn(newTx(btx, false))
	})
}

func newTx(btx *bolt.Tx, writable bool) *tx {
	return &tx{btx: btx, writable: writable, kv: btx.Bucket(bucketKV), mod: btx.Bucket(bucketMod), rev: decodeRev(btx.Bucket(bucketSys).Get(keyRev))}
}

// Update implements kv.Store.
func (s *Store) Update(ctx context.Context, fn func(kv.Tx) error) (int64, error) {
	return s.write(ctx, s.db.Update, fn)
}

// Batch implements kv.Store.
func (s *Store) Batch(ctx context.Context, fn func(kv.Tx) error) (int64, error) {
	return s.write(ctx, s.db.Batch, fn)
}

func (s *Store) write(ctx context.Context, run func(func(*bolt.Tx) error) error, fn func(kv.Tx) error) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rev int64
	err := run(func(btx *bolt.Tx) error {
		t := newTx(btx, true)
		if err := fn(t); err != nil {
			return err
		}
		rev = t.rev
		if t.bumped {
			// Inside bbolt's writer lock, after the commit: events are published in commit order.
			btx.OnCommit(func() {
				s.rev.Store(t.rev)
				s.hub.Publish(t.events)
			})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return rev, nil
}

// Watch implements kv.Store.
func (s *Store) Watch(ctx context.Context, prefix []byte, from int64) (<-chan kv.Event, error) {
	return s.hub.Subscribe(ctx, prefix, from)
}

// Compact implements kv.Compactor: it drops the in-memory history up to rev.
func (s *Store) Compact(_ context.Context, rev int64) error {
	s.hub.Compact(rev)
	return nil
}

// Revision implements kv.Store.
func (s *Store) Revision(context.Context) (int64, error) { return s.rev.Load(), nil }

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
	kv, mod  *bolt.Bucket
	writable bool
	rev      int64
	bumped   bool
	events   []kv.Event
}

var _ kv.Tx = (*tx)(nil)

func (t *tx) Revision() int64 {
	if t.bumped {
		return t.rev - 1
	}
	return t.rev
}

func (t *tx) Get(key []byte) ([]byte, error) {
	v := t.kv.Get(key)
	if v == nil {
		return nil, fmt.Errorf("%q: %w", key, kv.ErrNotFound)
	}
	return v, nil
}

func (t *tx) GetRevision(key []byte) ([]byte, int64, error) {
	v, err := t.Get(key)
	if err != nil {
		return nil, 0, err
	}
	return v, decodeRev(t.mod.Get(key)), nil
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
	return t.btx.Bucket(bucketSys).Put(keyRev, encodeRev(t.rev))
}

func (t *tx) Put(key, value []byte) error {
	if len(key) == 0 {
		return errors.New("empty key")
	}
	if err := t.bump(); err != nil {
		return err
	}
	if err := t.kv.Put(key, value); err != nil {
		return err
	}
	if err := t.mod.Put(key, encodeRev(t.rev)); err != nil {
		return err
	}
	t.events = append(t.events, kv.Event{Type: kv.EventPut, Key: append([]byte(nil), key...), Value: append([]byte(nil), value...), Revision: t.rev})
	return nil
}

func (t *tx) Delete(key []byte) error {
	if !t.writable {
		return kv.ErrReadOnly
	}
	if t.kv.Get(key) == nil {
		return nil
	}
	if err := t.bump(); err != nil {
		return err
	}
	if err := t.kv.Delete(key); err != nil {
		return err
	}
	if err := t.mod.Delete(key); err != nil {
		return err
	}
	t.events = append(t.events, kv.Event{Type: kv.EventDelete, Key: append([]byte(nil), key...), Revision: t.rev})
	return nil
}

func (t *tx) Scan(prefix, from []byte, reverse bool, fn func(k, v []byte, rev int64) error) error {
	c := t.kv.Cursor()
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
		if err := fn(k, v, decodeRev(t.mod.Get(k))); err != nil {
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
