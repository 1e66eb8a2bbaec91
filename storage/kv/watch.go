package kv

import (
	"bytes"
	"context"
	"sync"
)

// Hub fans committed events out to watchers. Backends embed one and call Publish after each
// commit. A watcher that falls behind by more than its buffer is closed rather than blocking
// writers; it sees its channel close and must re-list.
type Hub struct {
	mu       sync.Mutex
	watchers map[*watcher]struct{}
}

type watcher struct {
	prefix []byte
	ch     chan Event
}

// Subscribe registers a watcher for prefix until ctx ends.
func (h *Hub) Subscribe(ctx context.Context, prefix []byte) <-chan Event {
	w := &watcher{prefix: append([]byte(nil), prefix...), ch: make(chan Event, 256)}
	h.mu.Lock()
	if h.watchers == nil {
		h.watchers = map[*watcher]struct{}{}
	}
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
	go func() {
		<-ctx.Done()
		h.drop(w)
	}()
	return w.ch
}

func (h *Hub) drop(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.watchers[w]; ok {
		delete(h.watchers, w)
		close(w.ch)
	}
}

// Publish delivers events to matching watchers without blocking.
func (h *Hub) Publish(events []Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
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
