package kv

import (
	"bytes"
	"context"
	"fmt"
	"sync"
)

// DefaultHistory is how many recent events a Hub keeps for watches that start from a past
// revision.
const DefaultHistory = 10000

// Hub fans committed events out to watchers and keeps the most recent events so that a
// watch can start from a past revision. Backends that have no history of their own (bbolt)
// embed one, call SetFloor at open and Publish after each commit. A watcher that falls
// behind by more than its buffer is closed rather than blocking writers; it sees its channel
// close and watches again from its last revision + 1.
type Hub struct {
	// History is the number of events kept (DefaultHistory when 0).
	History int

	mu       sync.Mutex
	watchers map[*watcher]struct{}
	history  []Event // oldest first, at most History
	// floor is the highest revision whose events are not all kept: a watch must start above it.
	floor int64
}

type watcher struct {
	prefix []byte
	ch     chan Event
}

// SetFloor records that events up to and including rev are not kept (call it at open with
// the store's revision).
func (h *Hub) SetFloor(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.compactLocked(rev)
}

// Compact drops the kept events up to and including rev.
func (h *Hub) Compact(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.compactLocked(rev)
}

func (h *Hub) compactLocked(rev int64) {
	if rev <= h.floor {
		return
	}
	h.floor = rev
	i := 0
	for i < len(h.history) && h.history[i].Revision <= rev {
		i++
	}
	h.history = append(h.history[:0:0], h.history[i:]...)
}

// Subscribe registers a watcher for prefix until ctx ends. With from > 0 it first replays the
// kept events whose revision is at least from; it fails with ErrCompacted when some of them
// are no longer kept.
func (h *Hub) Subscribe(ctx context.Context, prefix []byte, from int64) (<-chan Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	if from > 0 && from <= h.floor {
		floor := h.floor
		h.mu.Unlock()
		return nil, fmt.Errorf("watch from revision %d (history starts after %d): %w", from, floor, ErrCompacted)
	}
	var replay []Event
	if from > 0 {
		for _, ev := range h.history {
			if ev.Revision >= from && bytes.HasPrefix(ev.Key, prefix) {
				replay = append(replay, ev)
			}
		}
	}
	w := &watcher{prefix: append([]byte(nil), prefix...), ch: make(chan Event, 256+len(replay))}
	for _, ev := range replay {
		w.ch <- ev
	}
	if h.watchers == nil {
		h.watchers = map[*watcher]struct{}{}
	}
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
	go func() {
		<-ctx.Done()
		h.drop(w)
	}()
	return w.ch, nil
}

func (h *Hub) drop(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.watchers[w]; ok {
		delete(h.watchers, w)
		close(w.ch)
	}
}

// Publish keeps events in the history and delivers them to matching watchers without
// blocking. Call it in commit order.
func (h *Hub) Publish(events []Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	max := h.History
	if max <= 0 {
		max = DefaultHistory
	}
	h.history = append(h.history, events...)
	if over := len(h.history) - max; over > 0 {
		h.compactLocked(h.history[over-1].Revision)
	}
	for w := range h.watchers {
		for _, ev := range events {
			if !bytes.HasPrefix(ev.Key, w.prefix) {
				continue
			}
			select {
			case w.ch <- ev:
			default:
				delete(h.watchers, w)
				close(w.ch)
			}
			if _, ok := h.watchers[w]; !ok {
				break
			}
		}
	}
}

// CloseAll closes every watcher.
func (h *Hub) CloseAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		delete(h.watchers, w)
		close(w.ch)
	}
}
