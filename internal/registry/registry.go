// Package registry is the one small registry kfp-box's backend families share: task
// runtimes (runtime.Register), metadata stores (kv.Register) and object stores
// (objects.Register) each keep a Registry of their factories, filled from the backends'
// init functions and linked in by appliance/builtins. It owns nothing else: each family
// defines its own factory type and typed options.
package registry

import (
	"fmt"
	"sort"
	"sync"
)

// Registry maps backend ids to factories of type F. It is safe for concurrent use.
type Registry[F any] struct {
	kind string
	mu   sync.Mutex
	m    map[string]F
}

// New returns an empty registry for backends of a kind ("runtime", "kv backend"), named in
// its messages.
func New[F any](kind string) *Registry[F] {
	return &Registry[F]{kind: kind, m: map[string]F{}}
}

// Register adds f under id. It panics on an empty or duplicate id: registration happens in
// init functions, where that is a programming error.
func (r *Registry[F]) Register(id string, f F) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == "" {
		panic(fmt.Sprintf("%s registered without an id", r.kind))
	}
	if _, dup := r.m[id]; dup {
		panic(fmt.Sprintf("%s %q registered twice", r.kind, id))
	}
	r.m[id] = f
}

// Lookup returns the factory registered under id; ok is false when there is none.
func (r *Registry[F]) Lookup(id string) (f F, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok = r.m[id]
	return f, ok
}

// IDs lists the registered ids, sorted.
func (r *Registry[F]) IDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.m))
	for id := range r.m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Missing is the message for an id that is not registered: it names the kind and the ids
// that are.
func (r *Registry[F]) Missing(id string) string {
	return fmt.Sprintf("%s %q is not registered (registered: %v)", r.kind, id, r.IDs())
}
