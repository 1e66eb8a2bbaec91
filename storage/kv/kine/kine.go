// Package kine is the SQL backend of storage/kv: PostgreSQL or MySQL through kine
// (github.com/k3s-io/kine) used as a Go package, in process, with no etcd endpoint and no
// extra daemon. kine keeps an append-only log of key revisions in one table and gives every
// written key its own revision, etcd style; this package adds what kv promises on top:
// transactions over several keys, read-your-writes inside them, and prefix watches. See
// docs/adr/009-kine-datastore.md.
//
// Keys live under "/kfp-box/" in kine's keyspace, encoded so that PostgreSQL's text column
// (which refuses NUL and invalid UTF-8) keeps kv's byte order: bytes 0x02-0x7e stand for
// themselves, the others are written as 0x01 or 0x7f followed by two hex digits.
//
// Transactions: one writer at a time per process (a mutex), reading a snapshot pinned at the
// revision of the last commit. A commit of several keys first writes its operations into an
// intent record ("/kfp-box-txn", a key that always exists), applies them, then empties the
// intent; Open finishes an intent left by a crash, so a transaction is applied whole or not at
// all. Each
// write is a compare-and-swap on the key's revision, so a foreign writer (another process on
// the same database, which kfp-box does not support) makes the commit fail rather than lose
// an update; when that happens before anything was applied, Update runs its function again.
// Watch events of a transaction in flight are held back until it has committed whole.
package kine

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/k3s-io/kine/pkg/drivers"
	_ "github.com/k3s-io/kine/pkg/drivers/mysql" // mysql://
	_ "github.com/k3s-io/kine/pkg/drivers/pgsql" // postgres://, postgresql://
	"github.com/k3s-io/kine/pkg/server"
	"github.com/sirupsen/logrus"

	"github.com/kfp-box/kfp-box/storage/kv"
)

const (
	ns    = "/kfp-box/"
	nsEnd = "/kfp-box0" // PrefixEnd(ns)
	// intentKey holds the operations of a multi-key commit until all are applied.
	intentKey = "/kfp-box-txn"
	pageSize  = 1000
	// retries is how often Update runs its function again after a conflicting foreign write.
	retries = 5
)

// ErrConflict is returned when a write lost a race with another writer on the same database.
var ErrConflict = errors.New("conflicting write by another process")

func init() {
	kv.Register("kine", func(ctx context.Context, opts kv.Options) (kv.Store, error) {
		return Open(ctx, Options{Endpoint: opts.Path, Logger: opts.Logger})
	})
}

// Schemes are the endpoint schemes this backend serves.
var Schemes = []string{"postgres", "postgresql", "mysql"}

// IsEndpoint reports whether endpoint names a datastore this backend serves.
func IsEndpoint(endpoint string) bool {
	scheme, _, ok := strings.Cut(endpoint, "://")
	if !ok {
		return false
	}
	for _, s := range Schemes {
		if scheme == s {
			return true
		}
	}
	return false
}

// Options configure the backend.
type Options struct {
	// Endpoint is the datastore URL: postgres://user:pass@host:port/db?sslmode=... or
	// mysql://user:pass@tcp(host:port)/db.
	Endpoint string
	// CompactInterval is how often kine drops old revisions (default 5 minutes); a negative
	// value disables automatic compaction, and then Compact does it on demand (tests).
	CompactInterval time.Duration
	// CompactMinRetain is how many recent revisions compaction keeps (default 1000; 0 with
	// CompactInterval < 0).
	CompactMinRetain int64
	// PollInterval is how often kine looks for writes of other processes (default 1 s); this
	// process's own writes wake it at once.
	PollInterval time.Duration
	// Logger receives kine's warnings and errors (nil: discarded).
	Logger *slog.Logger
}

// Store is a kv.Store over kine.
type Store struct {
	be     server.Backend
	cancel context.CancelFunc
	wg     *sync.WaitGroup

	// wmu admits one write transaction at a time.
	wmu sync.Mutex
	// cmu is held while a commit applies its writes; watchers wait on it before passing on an
	// event newer than stable.
	cmu sync.Mutex
	// stable is the revision of the last whole commit: snapshots are read there.
	stable atomic.Int64
	// intentRev is the intent record's revision (guarded by cmu).
	intentRev int64
	// unfinished is set (under wmu) when a commit failed part way: the next Update first
	// finishes it from the intent record.
	unfinished bool
	// fault, when set (tests only), is called before each data write of a commit; an error
	// stops the commit there, as a lost connection would.
	fault  func(i int) error
	closed atomic.Bool
}

var (
	_ kv.Store     = (*Store)(nil)
	_ kv.Compactor = (*Store)(nil)
)

var logOnce sync.Once

// Open connects to the datastore, creating the database and kine's table when missing, and
// finishes a commit a crash interrupted.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if !IsEndpoint(opts.Endpoint) {
		return nil, fmt.Errorf("datastore endpoint %q: want postgres://... or mysql://...", redact(opts.Endpoint))
	}
	routeLogs(opts.Logger)
	cfg := &drivers.Config{
		Endpoint:         opts.Endpoint,
		CompactInterval:  5 * time.Minute,
		CompactTimeout:   5 * time.Second,
		CompactMinRetain: 1000,
		CompactBatchSize: 1000,
		PollInterval:     time.Second,
		PollBatchSize:    500,
	}
	cfg.ConnectionPoolConfig.MaxIdle = 8
	if opts.CompactInterval < 0 {
		cfg.CompactInterval, cfg.CompactMinRetain = 0, 0
	} else if opts.CompactInterval > 0 {
		cfg.CompactInterval = opts.CompactInterval
	}
	if opts.CompactMinRetain > 0 {
		cfg.CompactMinRetain = opts.CompactMinRetain
	}
	if opts.PollInterval > 0 {
		cfg.PollInterval = opts.PollInterval
	}
	// kine's background work (polling, compaction) lives until Close, not until ctx ends;
	// but while opening (kine waits minutes for an unreachable database) ctx bounds it.
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	bound := context.AfterFunc(ctx, cancel)
	wg := &sync.WaitGroup{}
	var be server.Backend
	var err error
	if strings.HasPrefix(opts.Endpoint, "mysql://") {
		err = prepareMySQL(bctx, opts.Endpoint) // see mysql.go
	}
	if err == nil {
		_, be, err = drivers.New(bctx, wg, cfg)
	}
	if err == nil {
		err = be.Start(bctx)
	}
	if !bound() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			err = fmt.Errorf("datastore not reachable before the deadline: %w", ctx.Err())
		}
		return nil, fmt.Errorf("open datastore %s: %w", redact(opts.Endpoint), err)
	}
	s := &Store{be: be, cancel: cancel, wg: wg}
	if err := s.recover(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open datastore %s: finish interrupted commit: %w", redact(opts.Endpoint), err)
	}
	rev, err := be.CurrentRevision(ctx)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open datastore %s: %w", redact(opts.Endpoint), err)
	}
	s.stable.Store(rev)
	return s, nil
}

// redact drops the password from an endpoint for messages.
func redact(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		// mysql://user:pass@tcp(host:port)/db is no URL (its "port" ends in a parenthesis).
		return kv.RedactEndpoint(endpoint)
	}
	if u.User == nil {
		return endpoint
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// routeLogs sends kine's logrus output at warning level and above to logger, once per
// process (logrus is global).
func routeLogs(logger *slog.Logger) {
	logOnce.Do(func() {
		logrus.SetOutput(io.Discard)
		logrus.SetLevel(logrus.WarnLevel)
		if logger != nil {
			logrus.AddHook(slogHook{logger.With("component", "kine")})
		}
	})
}

type slogHook struct{ l *slog.Logger }

func (slogHook) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel}
}

func (h slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelWarn
	if e.Level < logrus.WarnLevel {
		level = slog.LevelError
	}
	h.l.Log(context.Background(), level, e.Message)
	return nil
}

// encodeKey maps a kv key into kine's keyspace, keeping byte order and prefixes.
func encodeKey(k []byte) string {
	var b strings.Builder
	b.Grow(len(ns) + len(k))
	b.WriteString(ns)
	for _, c := range k {
		switch {
		case c >= 0x02 && c <= 0x7e:
			b.WriteByte(c)
		case c < 0x02:
			b.WriteByte(0x01)
			b.WriteString(hex.EncodeToString([]byte{c}))
		default:
			b.WriteByte(0x7f)
			b.WriteString(hex.EncodeToString([]byte{c}))
		}
	}
	return b.String()
}

// decodeKey reverses encodeKey.
func decodeKey(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, ns)
	if !ok {
		return nil, fmt.Errorf("key %q outside %s", s, ns)
	}
	out := make([]byte, 0, len(rest))
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c != 0x01 && c != 0x7f {
			out = append(out, c)
			continue
		}
		if i+3 > len(rest) {
			return nil, fmt.Errorf("key %q: truncated escape", s)
		}
		b, err := hex.DecodeString(rest[i+1 : i+3])
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", s, err)
		}
		out = append(out, b[0])
		i += 2
	}
	return out, nil
}

// prefixRange is the kine range [start, end) holding every key with prefix.
func prefixRange(prefix []byte) (string, string) {
	end := kv.PrefixEnd(prefix)
	if end == nil {
		return encodeKey(prefix), nsEnd
	}
	return encodeKey(prefix), encodeKey(end)
}

// after is the smallest encoded key greater than k.
func after(k string) string { return k + "\x01" }

// View implements kv.Store.
func (s *Store) View(ctx context.Context, fn func(kv.Tx) error) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	return fn(&tx{s: s, ctx: ctx, rev: s.stable.Load()})
}

func (s *Store) usable(ctx context.Context) error {
	if s.closed.Load() {
		return kv.ErrClosed
	}
	return ctx.Err()
}

// Update implements kv.Store.
func (s *Store) Update(ctx context.Context, fn func(kv.Tx) error) (int64, error) {
	if err := s.usable(ctx); err != nil {
		return 0, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.unfinished {
		if err := s.finish(ctx); err != nil {
			return 0, fmt.Errorf("finish an interrupted commit: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		t := &tx{s: s, ctx: ctx, rev: s.stable.Load(), writes: map[string]*write{}, read: map[string]int64{}}
		if err := fn(t); err != nil {
			return 0, err
		}
		rev, applied, err := s.commit(ctx, t)
		if err != nil && applied {
			s.unfinished = true
		}
		if errors.Is(err, ErrConflict) && !applied && attempt < retries {
			// Another process wrote: read its writes and run fn again. kine's own idea of the
			// current revision is cached until its next poll; the database's is not.
			cur, intent, cerr := s.be.Get(ctx, intentKey, 0, true)
			if cerr != nil {
				return 0, cerr
			}
			if intent != nil {
				s.cmu.Lock()
				s.intentRev = intent.ModRevision
				s.cmu.Unlock()
			}
			s.advance(cur)
			continue
		}
		return rev, err
	}
}

// finish completes a commit that failed part way, as Open would, and moves the snapshot to
// the database's current revision.
func (s *Store) finish(ctx context.Context) error {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if err := s.recover(ctx); err != nil {
		return err
	}
	cur, _, err := s.be.Get(ctx, intentKey, 0, true)
	if err != nil {
		return err
	}
	s.unfinished = false
	s.advance(cur)
	return nil
}

// Batch implements kv.Store; kine commits each call on its own.
func (s *Store) Batch(ctx context.Context, fn func(kv.Tx) error) (int64, error) {
	return s.Update(ctx, fn)
}

func (s *Store) advance(rev int64) {
	for {
		cur := s.stable.Load()
		if rev <= cur || s.stable.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// op is one write of a commit, as kept in the intent record.
type op struct {
	Key    string `json:"k"`
	Value  []byte `json:"v,omitempty"`
	Delete bool   `json:"d,omitempty"`
	// Rev is the key's revision the write replaces (0: the key does not exist).
	Rev int64 `json:"r,omitempty"`
}

// commit applies t's writes; applied reports whether any reached the datastore.
func (s *Store) commit(ctx context.Context, t *tx) (rev int64, applied bool, err error) {
	ops := t.ops()
	if len(ops) == 0 {
		return t.rev, false, nil
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	// Writes continue past ctx's end once started: half a transaction must not be left.
	wctx := context.WithoutCancel(ctx)
	multi := len(ops) > 1
	if multi {
		b, err := json.Marshal(ops)
		if err != nil {
			return 0, false, err
		}
		r, err := s.apply(wctx, op{Key: intentKey, Value: b, Rev: s.intentRev})
		if err != nil {
			return 0, false, fmt.Errorf("write commit intent: %w", err)
		}
		s.intentRev, applied = r, true
	}
	for i, o := range ops {
		var r int64
		var err error
		if s.fault != nil {
			err = s.fault(i)
		}
		if err == nil {
			r, err = s.apply(wctx, o)
		}
		if err != nil {
			if i == 0 && !multi {
				return 0, false, err
			}
			if i == 0 && errors.Is(err, ErrConflict) {
				// Nothing of this commit was applied: withdraw the intent so that Update may
				// run its function again over the other writer's data.
				if r, cerr := s.apply(wctx, op{Key: intentKey, Value: []byte{}, Rev: s.intentRev}); cerr == nil {
					s.intentRev = r
					return 0, false, err
				}
			}
			// The intent stays: the next Open finishes this commit.
			return 0, true, fmt.Errorf("commit interrupted after %d of %d writes: %w", i, len(ops), err)
		}
		rev = r
	}
	if multi {
		r, err := s.apply(wctx, op{Key: intentKey, Value: []byte{}, Rev: s.intentRev})
		if err != nil {
			return 0, true, fmt.Errorf("clear commit intent: %w", err)
		}
		s.intentRev = r
	}
	s.advance(rev)
	return rev, true, nil
}

// apply performs one compare-and-swap write and returns its revision.
func (s *Store) apply(ctx context.Context, o op) (int64, error) {
	switch {
	case o.Delete:
		rev, _, ok, err := s.be.Delete(ctx, o.Key, o.Rev)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, fmt.Errorf("delete %q: %w", o.Key, ErrConflict)
		}
		return rev, nil
	case o.Rev == 0:
		rev, err := s.be.Create(ctx, o.Key, o.Value, 0)
		if errors.Is(err, server.ErrKeyExists) {
			return 0, fmt.Errorf("create %q: %w", o.Key, ErrConflict)
		}
		return rev, err
	default:
		rev, _, ok, err := s.be.Update(ctx, o.Key, o.Value, o.Rev, 0)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, fmt.Errorf("update %q: %w", o.Key, ErrConflict)
		}
		return rev, nil
	}
}

// recover finishes a commit whose intent record a crash left behind: each write is applied
// unless the key already holds its outcome. It creates the intent record of a new datastore.
func (s *Store) recover(ctx context.Context) error {
	_, intent, err := s.be.Get(ctx, intentKey, 0, false)
	if err != nil {
		return err
	}
	if intent == nil {
		s.intentRev, err = s.apply(ctx, op{Key: intentKey, Value: []byte{}})
		return err
	}
	s.intentRev = intent.ModRevision
	if len(intent.Value) == 0 {
		return nil
	}
	var ops []op
	if err := json.Unmarshal(intent.Value, &ops); err != nil {
		return fmt.Errorf("intent record: %w", err)
	}
	for _, o := range ops {
		_, cur, err := s.be.Get(ctx, o.Key, 0, false)
		if err != nil {
			return err
		}
		switch {
		case o.Delete && cur == nil, !o.Delete && cur != nil && bytes.Equal(cur.Value, o.Value):
			continue // already applied
		case cur == nil:
			o.Rev = 0
		default:
			o.Rev = cur.ModRevision
		}
		if _, err := s.apply(ctx, o); err != nil {
			return err
		}
	}
	s.intentRev, err = s.apply(ctx, op{Key: intentKey, Value: []byte{}, Rev: s.intentRev})
	return err
}

// Watch implements kv.Store.
func (s *Store) Watch(ctx context.Context, prefix []byte, from int64) (<-chan kv.Event, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	start := from
	if start == 0 {
		start = s.stable.Load() + 1
	}
	wctx, cancel := context.WithCancel(ctx)
	wr := s.be.Watch(wctx, start)
	if wr.CompactRevision != 0 {
		cancel()
		return nil, fmt.Errorf("watch from revision %d (compacted up to %d): %w", from, wr.CompactRevision, kv.ErrCompacted)
	}
	lo, hi := prefixRange(prefix)
	out := make(chan kv.Event, 256)
	errc := wr.Errorc
	go func() {
		defer cancel()
		defer close(out)
		for {
			select {
			case <-wctx.Done():
				return
			case err, ok := <-errc:
				if !ok {
					errc = nil
					continue
				}
				if err != nil {
					return // the watcher watches again from its last revision + 1
				}
			case batch, ok := <-wr.Eventc:
				if !ok {
					return
				}
				for _, e := range batch.Events {
					if e == nil || e.KV == nil || e.KV.Key < lo || e.KV.Key >= hi || e.KV.ModRevision < start {
						continue
					}
					ev, err := toEvent(e)
					if err != nil {
						continue
					}
					if ev.Revision > s.stable.Load() {
						// Part of a commit in flight: pass it on once the commit is whole.
						s.cmu.Lock()
						s.cmu.Unlock() //nolint:staticcheck // an empty critical section waits for the commit
					}
					select {
					case out <- ev:
					case <-wctx.Done():
						return
					default:
						return // too far behind: the watcher watches again from its last revision + 1
					}
				}
			}
		}
	}()
	return out, nil
}

func toEvent(e *server.Event) (kv.Event, error) {
	k, err := decodeKey(e.KV.Key)
	if err != nil {
		return kv.Event{}, err
	}
	if e.Delete {
		return kv.Event{Type: kv.EventDelete, Key: k, Revision: e.KV.ModRevision}, nil
	}
	return kv.Event{Type: kv.EventPut, Key: k, Value: e.KV.Value, Revision: e.KV.ModRevision}, nil
}

// Compact implements kv.Compactor. It works when automatic compaction is off
// (Options.CompactInterval < 0).
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if _, err := s.be.Compact(ctx, rev); err != nil && !errors.Is(err, server.ErrCompacted) {
		return err
	}
	return nil
}

// Revision implements kv.Store.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := s.usable(ctx); err != nil {
		return 0, err
	}
	return s.stable.Load(), nil
}

// Close implements kv.Store.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return errors.New("kine did not stop within 10s")
	}
	return nil
}

// write is a buffered write of a transaction.
type write struct {
	value   []byte
	deleted bool
	// rev is the key's revision in the snapshot (0: absent).
	rev int64
}

type tx struct {
	s      *Store
	ctx    context.Context
	rev    int64
	writes map[string]*write // nil in a read-only transaction
	// read holds the snapshot revision (0: absent) of keys a write transaction read, so that
	// writing them needs no second look.
	read map[string]int64
}

var _ kv.Tx = (*tx)(nil)

func (t *tx) Revision() int64 { return t.rev }

func (t *tx) Get(key []byte) ([]byte, error) {
	v, _, err := t.GetRevision(key)
	return v, err
}

func (t *tx) GetRevision(key []byte) ([]byte, int64, error) {
	k := encodeKey(key)
	if w, ok := t.writes[k]; ok {
		if w.deleted {
			return nil, 0, fmt.Errorf("%q: %w", key, kv.ErrNotFound)
		}
		return w.value, 0, nil
	}
	_, got, err := t.s.be.Get(t.ctx, k, t.rev, false)
	if err != nil {
		return nil, 0, err
	}
	if t.read != nil {
		if got == nil {
			t.read[k] = 0
		} else {
			t.read[k] = got.ModRevision
		}
	}
	if got == nil {
		return nil, 0, fmt.Errorf("%q: %w", key, kv.ErrNotFound)
	}
	return got.Value, got.ModRevision, nil
}

// buffered returns the buffered write of k, reading the key's snapshot revision first.
func (t *tx) buffered(k string) (*write, error) {
	if t.writes == nil {
		return nil, kv.ErrReadOnly
	}
	if w, ok := t.writes[k]; ok {
		return w, nil
	}
	if rev, ok := t.read[k]; ok {
		w := &write{deleted: true, rev: rev}
		t.writes[k] = w
		return w, nil
	}
	_, got, err := t.s.be.Get(t.ctx, k, t.rev, true)
	if err != nil {
		return nil, err
	}
	w := &write{deleted: true}
	if got != nil {
		w.rev = got.ModRevision
	}
	t.writes[k] = w
	return w, nil
}

func (t *tx) Put(key, value []byte) error {
	if len(key) == 0 {
		return errors.New("empty key")
	}
	w, err := t.buffered(encodeKey(key))
	if err != nil {
		return err
	}
	w.value, w.deleted = append([]byte(nil), value...), false
	return nil
}

func (t *tx) Delete(key []byte) error {
	w, err := t.buffered(encodeKey(key))
	if err != nil {
		return err
	}
	w.value, w.deleted = nil, true
	return nil
}

// ops lists the writes that change the datastore, in key order.
func (t *tx) ops() []op {
	keys := make([]string, 0, len(t.writes))
	for k := range t.writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ops []op
	for _, k := range keys {
		w := t.writes[k]
		switch {
		case w.deleted && w.rev == 0:
			// deleting a key that does not exist
		case w.deleted:
			ops = append(ops, op{Key: k, Delete: true, Rev: w.rev})
		default:
			ops = append(ops, op{Key: k, Value: w.value, Rev: w.rev})
		}
	}
	return ops
}

type entry struct {
	key   string
	value []byte
	rev   int64
}

func (t *tx) Scan(prefix, from []byte, reverse bool, fn func(k, v []byte, rev int64) error) error {
	lo, hi := prefixRange(prefix)
	if from != nil {
		f := encodeKey(from)
		switch {
		case !reverse && f > lo:
			lo = f
		case reverse && after(f) < hi:
			hi = after(f)
		}
	}
	if lo >= hi {
		return nil
	}
	if !reverse && len(t.writes) == 0 {
		return t.scanPages(lo, hi, fn)
	}
	// Reverse scans and scans in a write transaction read the range whole: kine lists
	// forward only, and buffered writes must be merged in.
	var all []entry
	err := t.scanPages(lo, hi, func(k, v []byte, rev int64) error {
		all = append(all, entry{key: encodeKey(k), value: v, rev: rev})
		return nil
	})
	if err != nil {
		return err
	}
	if len(t.writes) > 0 {
		all = t.merge(all, lo, hi)
	}
	if reverse {
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
	}
	for _, e := range all {
		k, err := decodeKey(e.key)
		if err != nil {
			return err
		}
		if err := fn(k, e.value, e.rev); err != nil {
			if errors.Is(err, kv.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// merge overlays the transaction's buffered writes in [lo, hi) on sorted entries.
func (t *tx) merge(all []entry, lo, hi string) []entry {
	byKey := make(map[string]entry, len(all))
	for _, e := range all {
		byKey[e.key] = e
	}
	for k, w := range t.writes {
		if k < lo || k >= hi {
			continue
		}
		if w.deleted {
			delete(byKey, k)
		} else {
			byKey[k] = entry{key: k, value: w.value}
		}
	}
	out := make([]entry, 0, len(byKey))
	for _, e := range byKey {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// scanPages lists [lo, hi) at the snapshot, a page at a time.
func (t *tx) scanPages(lo, hi string, fn func(k, v []byte, rev int64) error) error {
	for {
		_, kvs, err := t.s.be.List(t.ctx, lo, hi, pageSize, t.rev, false)
		if err != nil {
			return err
		}
		for _, e := range kvs {
			k, err := decodeKey(e.Key)
			if err != nil {
				return err
			}
			if err := fn(k, e.Value, e.ModRevision); err != nil {
				if errors.Is(err, kv.ErrStop) {
					return nil
				}
				return err
			}
		}
		if len(kvs) < pageSize {
			return nil
		}
		lo = after(kvs[len(kvs)-1].Key)
	}
}
