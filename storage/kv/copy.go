package kv

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
)

// ErrNotEmpty is returned by Copy when the destination already holds keys.
var ErrNotEmpty = errors.New("destination store is not empty")

// Summary describes a store's content: how many keys, their total size, and a SHA-256 digest
// over every key and value in key order (each as a big-endian uint64 length then the bytes),
// so that two stores holding the same keyspace have the same digest whatever their backend.
type Summary struct {
	Keys   int
	Bytes  int64
	Digest string
}

type digester struct {
	h     hash.Hash
	keys  int
	bytes int64
}

func newDigester() *digester { return &digester{h: sha256.New()} }

func (d *digester) add(k, v []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(k)))
	d.h.Write(n[:])
	d.h.Write(k)
	binary.BigEndian.PutUint64(n[:], uint64(len(v)))
	d.h.Write(n[:])
	d.h.Write(v)
	d.keys++
	d.bytes += int64(len(k) + len(v))
}

func (d *digester) summary() Summary {
	return Summary{Keys: d.keys, Bytes: d.bytes, Digest: hex.EncodeToString(d.h.Sum(nil))}
}

// Digest summarises every key of s, read in one snapshot.
func Digest(ctx context.Context, s Store) (Summary, error) {
	d := newDigester()
	err := s.View(ctx, func(tx Tx) error {
		return tx.Scan(nil, nil, false, func(k, v []byte, _ int64) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			d.add(k, v)
			return nil
		})
	})
	if err != nil {
		return Summary{}, err
	}
	return d.summary(), nil
}

// copyBatch is how many keys one destination transaction writes.
const copyBatch = 500

// Copy writes every key of src, read in one snapshot, into dst, which must hold no keys
// (ErrNotEmpty otherwise), and returns the summary of what it copied. Keys get dst's
// revisions, not src's. Neither store may be written meanwhile; compare the result with
// Digest(dst) to verify the copy.
func Copy(ctx context.Context, dst, src Store) (Summary, error) {
	empty := true
	err := dst.View(ctx, func(tx Tx) error {
		return tx.Scan(nil, nil, false, func(_, _ []byte, _ int64) error {
			empty = false
			return ErrStop
		})
	})
	if err != nil {
		return Summary{}, err
	}
	if !empty {
		return Summary{}, ErrNotEmpty
	}
	d := newDigester()
	var pending [][2][]byte
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		_, err := dst.Update(ctx, func(tx Tx) error {
			for _, p := range pending {
				if err := tx.Put(p[0], p[1]); err != nil {
					return fmt.Errorf("put %q: %w", p[0], err)
				}
			}
			return nil
		})
		pending = pending[:0]
		return err
	}
	err = src.View(ctx, func(tx Tx) error {
		err := tx.Scan(nil, nil, false, func(k, v []byte, _ int64) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			d.add(k, v)
			// Values are valid only inside src's transaction: keep copies.
			pending = append(pending, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)})
			if len(pending) == copyBatch {
				return flush()
			}
			return nil
		})
		if err != nil {
			return err
		}
		return flush()
	})
	if err != nil {
		return Summary{}, err
	}
	return d.summary(), nil
}
