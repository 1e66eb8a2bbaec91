package kine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kfp-box/kfp-box/internal/pgtest"
	"github.com/kfp-box/kfp-box/storage/kv"
)

func cmp(a, b string) int { return strings.Compare(a, b) }

// FuzzKeyEncoding checks that encoded keys round-trip, keep kv's byte order and prefixes, and
// are text PostgreSQL accepts (valid UTF-8 without NUL); and that decoding any string never
// panics.
func FuzzKeyEncoding(f *testing.F) {
	f.Add([]byte("/runs/a"), []byte("/runs/b"))
	f.Add([]byte("/\xff"), []byte("/\x00\x01"))
	f.Add([]byte("\x7f"), []byte("~"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ea, eb := encodeKey(a), encodeKey(b)
		for _, e := range []string{ea, eb} {
			if !utf8.ValidString(e) || strings.ContainsRune(e, 0) {
				t.Fatalf("encoded key %q is not PostgreSQL text", e)
			}
		}
		if got, err := decodeKey(ea); err != nil || !bytes.Equal(got, a) {
			t.Fatalf("decode(encode(%q)) = %q, %v", a, got, err)
		}
		if bytes.Compare(a, b) != cmp(ea, eb) {
			t.Fatalf("order of %q, %q not kept: %q, %q", a, b, ea, eb)
		}
		if bytes.HasPrefix(b, a) != strings.HasPrefix(eb, ea) {
			t.Fatalf("prefix relation of %q, %q not kept", a, b)
		}
		_, _ = decodeKey(ns + string(a)) // must not panic
	})
}

// TestRecoverInterruptedCommit leaves a commit's intent record as a crash after it was
// written would, and checks that the next Open applies the whole commit.
func TestRecoverInterruptedCommit(t *testing.T) {
	pg := pgtest.Require(t)
	sum := sha256.Sum256([]byte(t.Name()))
	opts := Options{Endpoint: pg.DSN("kv_" + hex.EncodeToString(sum[:8])), CompactInterval: -1}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, func(tx kv.Tx) error {
		if err := tx.Put([]byte("/a"), []byte("old")); err != nil {
			return err
		}
		return tx.Put([]byte("/gone"), []byte("x"))
	}); err != nil {
		t.Fatal(err)
	}
	var revA, revGone int64
	err = s.View(ctx, func(tx kv.Tx) error {
		var err error
		if _, revA, err = tx.GetRevision([]byte("/a")); err != nil {
			return err
		}
		_, revGone, err = tx.GetRevision([]byte("/gone"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The crash: the intent is written and only the first of its three writes applied.
	ops := []op{
		{Key: encodeKey([]byte("/a")), Value: []byte("new"), Rev: revA},
		{Key: encodeKey([]byte("/b")), Value: []byte("added")},
		{Key: encodeKey([]byte("/gone")), Delete: true, Rev: revGone},
	}
	b, _ := json.Marshal(ops)
	if _, err := s.apply(ctx, op{Key: intentKey, Value: b, Rev: s.intentRev}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.apply(ctx, ops[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := map[string]string{}
	err = s.View(ctx, func(tx kv.Tx) error {
		return tx.Scan([]byte("/"), nil, false, func(k, v []byte, _ int64) error {
			got[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["/a"] != "new" || got["/b"] != "added" {
		t.Fatalf("after recovery: %v, want /a=new /b=added", got)
	}
	if _, intent, err := s.be.Get(ctx, intentKey, 0, false); err != nil || intent == nil || len(intent.Value) != 0 {
		t.Fatalf("intent not emptied after recovery: %+v %v", intent, err)
	}
	// Commits go on after the recovery.
	if _, err := s.Update(ctx, func(tx kv.Tx) error {
		if err := tx.Put([]byte("/c"), []byte("1")); err != nil {
			return err
		}
		return tx.Put([]byte("/d"), []byte("2"))
	}); err != nil {
		t.Fatalf("commit after recovery: %v", err)
	}
}

// TestUpdateRetriesAfterForeignWrite has another process's store write the keys a
// transaction read, between its snapshot and its commit: the commit must not overwrite that
// write, and Update runs its function again over it, so no increment is lost.
func TestUpdateRetriesAfterForeignWrite(t *testing.T) {
	pg := pgtest.Require(t)
	sum := sha256.Sum256([]byte(t.Name()))
	opts := Options{Endpoint: pg.DSN("kv_" + hex.EncodeToString(sum[:8]))}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	incr := func(tx kv.Tx, key string) error {
		n := 0
		v, err := tx.Get([]byte(key))
		if err == nil {
			n, _ = strconv.Atoi(string(v))
		} else if !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		return tx.Put([]byte(key), []byte(strconv.Itoa(n+1)))
	}
	for _, keys := range [][]string{{"/one"}, {"/x", "/y"}} { // a single write and a multi-key commit
		runs := 0
		_, err := a.Update(ctx, func(tx kv.Tx) error {
			runs++
			for _, k := range keys {
				if err := incr(tx, k); err != nil {
					return err
				}
			}
			if runs == 1 { // the foreign writer gets in between
				_, err := b.Update(ctx, func(tx kv.Tx) error {
					for _, k := range keys {
						if err := incr(tx, k); err != nil {
							return err
						}
					}
					return nil
				})
				return err
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%v: %v", keys, err)
		}
		if runs != 2 {
			t.Fatalf("%v: fn ran %d times, want 2 (once more after the conflict)", keys, runs)
		}
		for _, k := range keys {
			if v, err := getValue(ctx, a, k); err != nil || v != "2" {
				t.Fatalf("%s = %q, %v after two increments; want 2", k, v, err)
			}
		}
	}
}

func getValue(ctx context.Context, s kv.Store, k string) (string, error) {
	var out string
	err := s.View(ctx, func(tx kv.Tx) error {
		v, err := tx.Get([]byte(k))
		out = string(v)
		return err
	})
	return out, err
}

// TestCommitFailingPartWayIsFinished stops a three-key commit after its first write, as a
// lost connection would: readers keep seeing the snapshot before it, and the next Update
// finishes it from the intent record before its own writes.
func TestCommitFailingPartWayIsFinished(t *testing.T) {
	pg := pgtest.Require(t)
	sum := sha256.Sum256([]byte(t.Name()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, Options{Endpoint: pg.DSN("kv_" + hex.EncodeToString(sum[:8]))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Update(ctx, func(tx kv.Tx) error { return tx.Put([]byte("/a"), []byte("old")) }); err != nil {
		t.Fatal(err)
	}
	lost := errors.New("connection lost")
	s.fault = func(i int) error {
		if i == 1 {
			return lost
		}
		return nil
	}
	_, err = s.Update(ctx, func(tx kv.Tx) error {
		for _, k := range []string{"/a", "/b", "/c"} {
			if err := tx.Put([]byte(k), []byte("new")); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, lost) {
		t.Fatalf("commit with a fault: %v, want the fault", err)
	}
	s.fault = nil
	if v, err := getValue(ctx, s, "/a"); err != nil || v != "old" {
		t.Fatalf("a reader sees /a = %q, %v during the unfinished commit; want the old snapshot", v, err)
	}
	if _, err := s.Update(ctx, func(tx kv.Tx) error { return tx.Put([]byte("/d"), []byte("next")) }); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"/a": "new", "/b": "new", "/c": "new", "/d": "next"} {
		if v, err := getValue(ctx, s, k); err != nil || v != want {
			t.Fatalf("%s = %q, %v after the next commit; want %q", k, v, err, want)
		}
	}
}
