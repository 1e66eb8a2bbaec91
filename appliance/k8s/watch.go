package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// Watches are served from one subscription to the kv store's watch, taken when the box
// starts (StartWatch): a ring of the latest writes under /k8s/ and /executions/ lets a
// watch start at the resourceVersion a list returned, and a resourceVersion older than the
// ring is answered 410 Gone, as the API server answers a compacted one. Nothing polls.

// historySize is how many writes the ring keeps for watches that start in the past.
const historySize = 8192

// watchBuffer is how many events a watch may fall behind before it is ended (the client
// lists and watches again, as after any ended watch).
const watchBuffer = 1024

type history struct {
	mu       sync.Mutex
	start    int64 // events after this revision are all in events (or were trimmed: start moves)
	events   []ringEvent
	watchers map[*watchSub]struct{}
	// objects holds the current value of every key under /k8s/ (Secrets and ConfigMaps
	// are few), so that an event says whether it created the object and what a delete
	// removed.
	objects map[string][]byte
}

// ringEvent is a write and, for /k8s/ keys, the value it replaced (nil: none, so a put
// created the object).
type ringEvent struct {
	kv.Event
	prev []byte
	// resync says the ring missed writes up to Revision: a watcher that can list and
	// compare (pods) does so; the others were ended instead.
	resync bool
}

type watchSub struct {
	prefixes []string
	ch       chan ringEvent
	resyncs  bool // the watcher handles resync events
}

func (h *history) matches(w *watchSub, key []byte) bool {
	for _, p := range w.prefixes {
		if bytes.HasPrefix(key, []byte(p)) {
			return true
		}
	}
	return false
}

// StartWatch subscribes to the store's writes until ctx ends; watches need it.
func (s *Store) StartWatch(ctx context.Context) error {
	h := &history{watchers: map[*watchSub]struct{}{}}
	ch, err := s.kv.Watch(ctx, []byte("/"), 0)
	if err != nil {
		return err
	}
	if err := h.load(ctx, s.kv, false); err != nil {
		return err
	}
	s.hist = h
	go func() {
		for {
			for ev := range ch {
				k := string(ev.Key)
				if !strings.HasPrefix(k, "/k8s/") && !strings.HasPrefix(k, "/executions/") {
					continue
				}
				h.add(ev)
			}
			if ctx.Err() != nil {
				h.closeAll()
				return
			}
			// The ring fell behind the store: what it missed cannot be replayed.
			ch, err = s.kv.Watch(ctx, []byte("/"), 0)
			if err != nil {
				h.closeAll()
				return
			}
			if err := h.load(ctx, s.kv, true); err != nil {
				h.closeAll()
				return
			}
		}
	}()
	return nil
}

// load reads the current objects and starts the ring at the revision they were read at.
// Watches in progress may have missed writes: with resync, those that can list again are
// told to (a burst of writes larger than the store's watch buffer, such as a run's
// thousand new tasks in one commit, then costs pod watchers a list, not their watch); the
// others end, and their clients list again.
func (h *history) load(ctx context.Context, store kv.Store, resync bool) error {
	objects := map[string][]byte{}
	var rev int64
	err := store.View(ctx, func(tx kv.Tx) error {
		rev = tx.Revision()
		return tx.Scan([]byte("/k8s/"), nil, false, func(k, v []byte, _ int64) error {
			objects[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.objects = objects
	h.mu.Unlock()
	h.reset(rev, resync)
	return nil
}

func (h *history) add(kev kv.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if kev.Revision <= h.start {
		return // already in the objects load read
	}
	kev.Key = append([]byte(nil), kev.Key...)
	ev := ringEvent{Event: kev}
	if k := string(kev.Key); strings.HasPrefix(k, "/k8s/") {
		ev.prev = h.objects[k]
		if kev.Type == kv.EventDelete {
			delete(h.objects, k)
		} else {
			h.objects[k] = append([]byte(nil), kev.Value...)
		}
	}
	if len(h.events) >= historySize {
		n := historySize / 4
		h.start = h.events[n-1].Revision
		h.events = append(h.events[:0], h.events[n:]...)
	}
	h.events = append(h.events, ev)
	for w := range h.watchers {
		if !h.matches(w, ev.Key) {
			continue
		}
		select {
		case w.ch <- ev:
		default:
			delete(h.watchers, w)
			close(w.ch)
		}
	}
}

func (h *history) reset(rev int64, resync bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.start, h.events = rev, nil
	for w := range h.watchers {
		if resync && w.resyncs {
			select {
			case w.ch <- ringEvent{Event: kv.Event{Revision: rev}, resync: true}:
				continue
			default:
			}
		}
		delete(h.watchers, w)
		close(w.ch)
	}
}

func (h *history) closeAll() { h.reset(1<<62, false) }

// errGone says a watch asked for a resourceVersion older than the ring.
type errGone struct{ rev, oldest int64 }

func (e errGone) Error() string {
	return fmt.Sprintf("too old resource version: %d (%d)", e.rev, e.oldest)
}

// subscribe returns the events under prefixes after revision from (replayed from the
// ring), then the live ones, until ctx ends or the watcher falls behind.
func (h *history) subscribe(ctx context.Context, from int64, resyncs bool, prefixes ...string) (<-chan ringEvent, int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if from < h.start {
		return nil, 0, errGone{from, h.start}
	}
	w := &watchSub{prefixes: prefixes, resyncs: resyncs, ch: make(chan ringEvent, watchBuffer+len(h.events))}
	for _, ev := range h.events {
		if ev.Revision > from && h.matches(w, ev.Key) {
			w.ch <- ev
		}
	}
	h.watchers[w] = struct{}{}
	go func() {
		<-ctx.Done()
		h.mu.Lock()
		if _, ok := h.watchers[w]; ok {
			delete(h.watchers, w)
			close(w.ch)
		}
		h.mu.Unlock()
	}()
	return w.ch, h.start, nil
}

// watchEvent is one line of a watch response.
type watchEvent struct {
	Type   string `json:"type"`
	Object any    `json:"object"`
}

// watchStream writes watch events as the API server does: one JSON object per line,
// flushed as it is written.
type watchStream struct {
	c   *gin.Context
	enc *json.Encoder
}

func startStream(c *gin.Context) *watchStream {
	c.Header("Content-Type", "application/json")
	c.Header("Cache-Control", "no-cache")
	c.Status(http.StatusOK)
	c.Writer.Flush()
	return &watchStream{c: c, enc: json.NewEncoder(c.Writer)}
}

func (w *watchStream) send(typ string, obj any) error {
	if err := w.enc.Encode(watchEvent{Type: typ, Object: obj}); err != nil {
		return err
	}
	w.c.Writer.Flush()
	return nil
}

// watchStart reads a watch's resourceVersion and timeoutSeconds; initial says the client
// wants the current objects first (no resourceVersion, or "0").
func (s *Store) watchStart(c *gin.Context) (ctx context.Context, cancel context.CancelFunc, from int64, initial bool, ok bool) {
	if s.hist == nil {
		status(c, fmt.Errorf("watch is not available on this store: %w", ErrConflict))
		return nil, nil, 0, false, false
	}
	ctx, cancel = context.WithCancel(c.Request.Context())
	if v := c.Query("timeoutSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			cancel()
			badRequest(c, fmt.Sprintf("timeoutSeconds=%q: want a non-negative integer", v))
			return nil, nil, 0, false, false
		}
		if n > 0 {
			cancel()
			ctx, cancel = context.WithTimeout(c.Request.Context(), time.Duration(n)*time.Second)
		}
	}
	rv := c.Query("resourceVersion")
	if rv == "" || rv == "0" {
		rev, err := s.kv.Revision(ctx)
		if err != nil {
			cancel()
			status(c, err)
			return nil, nil, 0, false, false
		}
		return ctx, cancel, rev, true, true
	}
	from, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || from < 0 {
		cancel()
		badRequest(c, fmt.Sprintf("resourceVersion=%q: want a revision this box returned", rv))
		return nil, nil, 0, false, false
	}
	return ctx, cancel, from, false, true
}

// gone writes 410 Gone, the answer to a resourceVersion older than the ring: the client
// lists again.
func gone(c *gin.Context, err error) {
	c.AbortWithStatusJSON(http.StatusGone, gin.H{"kind": "Status", "apiVersion": "v1", "metadata": gin.H{},
		"status": "Failure", "message": err.Error(), "reason": "Expired", "code": http.StatusGone})
}

// watchObjects serves ?watch=1 for Secrets, ConfigMaps, PersistentVolumeClaims of ns ("" =
// every namespace) and Namespaces.
func (s *Store) watchObjects(c *gin.Context, resource, ns string) {
	if _, err := checkResource(resource); err != nil {
		status(c, err)
		return
	}
	ls, fs, err := ParseSelectors(c.Query("labelSelector"), "")
	if err != nil {
		badRequest(c, err.Error())
		return
	}
	_ = fs
	nameSel := ""
	if f := c.Query("fieldSelector"); f != "" {
		name, ok := strings.CutPrefix(f, "metadata.name=")
		if !ok || strings.Contains(name, ",") {
			badRequest(c, fmt.Sprintf("fieldSelector %q: only metadata.name=NAME is supported for %s", f, resource))
			return
		}
		nameSel = name
	}
	ctx, cancel, from, initial, ok := s.watchStart(c)
	if !ok {
		return
	}
	defer cancel()
	prefix := "/k8s/" + resource + "/"
	if ns != "" && resource != "namespaces" {
		prefix += ns + "/"
	}
	events, _, err := s.hist.subscribe(ctx, from, false, prefix)
	if err != nil {
		gone(c, err)
		return
	}
	match := func(o *Object) bool {
		return (nameSel == "" || o.Metadata.Name == nameSel) && ls.Matches(labelsOf(o.Metadata.Labels))
	}
	var items []*Object
	if initial {
		if items, _, err = s.List(ctx, resource, ns); err != nil {
			status(c, err)
			return
		}
	}
	table := wantsTable(c) && hasTable(resource)
	include := c.Query("includeObject")
	w := startStream(c)
	send := func(typ string, o *Object) error {
		if !match(o) {
			return nil
		}
		if table {
			return w.send(typ, objectTable(resource, []*Object{o}, 0, include))
		}
		return w.send(typ, o)
	}
	for _, o := range items {
		if send("ADDED", o) != nil {
			return
		}
	}
	for ev := range events {
		typ, val := "MODIFIED", ev.Value
		switch {
		case ev.Type == kv.EventDelete:
			typ, val = "DELETED", ev.prev
		case ev.prev == nil:
			typ = "ADDED"
		}
		var o Object
		if val == nil || json.Unmarshal(val, &o) != nil {
			continue
		}
		// Stored objects carry no resourceVersion: it is the revision of the write (ADR 009).
		o.Metadata.ResourceVersion = strconv.FormatInt(ev.Revision, 10)
		if send(typ, &o) != nil {
			return
		}
	}
	// The watch ended: its timeout, the client leaving, or it fell behind (the client
	// lists and watches again).
}

// watchPods serves ?watch=1 for pods: each write of an execution becomes ADDED or
// MODIFIED events for the pods of its attempts, and DELETED for pods that are gone (a
// deleted attempt, a deleted run).
func (s *Store) watchPods(c *gin.Context, ns string) {
	if s.pods == nil || ns != "" && ns != s.ns {
		badRequest(c, fmt.Sprintf("pods are only in namespace %s", s.ns))
		return
	}
	pods, _, sel, ok := s.selectPods(c, s.ns)
	if !ok {
		return
	}
	ctx, cancel, from, initial, ok := s.watchStart(c)
	if !ok {
		return
	}
	defer cancel()
	events, _, err := s.hist.subscribe(ctx, from, true, "/executions/")
	if err != nil {
		gone(c, err)
		return
	}
	include := c.Query("includeObject")
	table := wantsTable(c)
	w := startStream(c)
	send := func(typ string, p *corev1.Pod) bool {
		if !sel.matches(p) {
			return true
		}
		var obj any = p
		if table {
			obj = podTable([]*corev1.Pod{p}, 0, include)
		}
		return w.send(typ, obj) == nil
	}
	// known holds the pods the client has, by execution key.
	known := map[string]map[string]*corev1.Pod{}
	execKey := func(p *corev1.Pod) string {
		return "/executions/" + p.Labels[LabelRunID] + "/" + p.Labels[LabelExecution]
	}
	all, _, err := s.listPods(ctx, s.ns, podQuery{})
	if err == nil {
		for _, p := range all {
			k := execKey(p)
			if known[k] == nil {
				known[k] = map[string]*corev1.Pod{}
			}
			known[k][p.Name] = p
		}
	}
	if initial {
		for _, p := range pods {
			if !send("ADDED", p) {
				return
			}
		}
	}
	for ev := range events {
		if ev.resync {
			if !s.resyncPods(ctx, known, send) {
				return
			}
			continue
		}
		k := string(ev.Key)
		var now []*corev1.Pod
		if ev.Type == kv.EventPut {
			var x meta.Execution
			if json.Unmarshal(ev.Value, &x) == nil && x.Kind == meta.KindContainer {
				now = s.execPods(ctx, &x, ev.Revision)
			}
		}
		old := known[k]
		cur := map[string]*corev1.Pod{}
		for _, p := range now {
			cur[p.Name] = p
			typ := "ADDED"
			if old[p.Name] != nil {
				typ = "MODIFIED"
			}
			if !send(typ, p) {
				return
			}
		}
		for name, p := range old {
			if cur[name] == nil {
				p.ResourceVersion = strconv.FormatInt(ev.Revision, 10)
				if !send("DELETED", p) {
					return
				}
			}
		}
		if len(cur) == 0 {
			delete(known, k)
		} else {
			known[k] = cur
		}
	}
}

// resyncPods lists the pods again after the ring missed writes and sends what changed
// against known: ADDED, MODIFIED (its status changed), DELETED.
func (s *Store) resyncPods(ctx context.Context, known map[string]map[string]*corev1.Pod, send func(string, *corev1.Pod) bool) bool {
	all, rev, err := s.listPods(ctx, s.ns, podQuery{})
	if err != nil {
		return false
	}
	seen := map[string]map[string]*corev1.Pod{}
	for _, p := range all {
		k := "/executions/" + p.Labels[LabelRunID] + "/" + p.Labels[LabelExecution]
		if seen[k] == nil {
			seen[k] = map[string]*corev1.Pod{}
		}
		seen[k][p.Name] = p
		old := known[k][p.Name]
		switch {
		case old == nil:
			if !send("ADDED", p) {
				return false
			}
		case podReason(old) != podReason(p) || old.Status.Phase != p.Status.Phase:
			if !send("MODIFIED", p) {
				return false
			}
		}
	}
	for k, pods := range known {
		for name, p := range pods {
			if seen[k][name] == nil {
				p.ResourceVersion = strconv.FormatInt(rev, 10)
				if !send("DELETED", p) {
					return false
				}
			}
		}
	}
	clear(known)
	for k, v := range seen {
		known[k] = v
	}
	return true
}

// execPods makes the pods of one execution, reading its parents for its component.
func (s *Store) execPods(ctx context.Context, x *meta.Execution, rev int64) []*corev1.Pod {
	byID := map[string]*meta.Execution{x.ID: x}
	execs := []*meta.Execution{x}
	parent := x.ParentID
	for i := 0; parent != "" && i < 64; i++ {
		p, err := s.pods.src.Meta.GetExecution(ctx, x.RunID, parent)
		if err != nil {
			break
		}
		byID[p.ID] = p
		execs = append(execs, p)
		parent = p.ParentID
	}
	return s.pods.runPods(ctx, s.ns, x.RunID, execs, x.ID, rev)
}

func labelsOf(m map[string]string) labels.Set { return labels.Set(m) }

// Revision is the store's latest revision: the resourceVersion a list made now returns
// (0 when the store cannot say).
func (s *Store) Revision() int64 {
	rev, err := s.kv.Revision(context.Background())
	if err != nil {
		return 0
	}
	return rev
}
