// Package registry is the one small registry kfp-box's backend families share: task
// runtimes (runtime.Register), metadata stores (kv.Register) and object stores
// (objects.Register) each keep a Registry of their factories, filled from the backends'
// init functions and linked in by appliance/builtins. A backend may register a typed
// configuration section with its factory (see Section); the configuration file, flags,
// environment, `kfp-box config show` and `kfp-box config schema` are all derived from those
// sections, so no code outside a backend's own package names its settings. It owns nothing
// else: each family defines its own factory type.
package registry

import (
	"fmt"
	"sort"
	"sync"
)

// Registry maps backend ids to factories of type F, each with an optional configuration
// section. It is safe for concurrent use.
type Registry[F any] struct {
	kind string
	mu   sync.Mutex
	m    map[string]entry[F]
}

type entry[F any] struct {
	f          F
	newSection func() Section
}

// Family is what the configuration needs of a registry, whatever its factory type.
type Family interface {
	// Kind names the family in messages ("runtime", "kv backend").
	Kind() string
	// IDs lists the registered ids, sorted.
	IDs() []string
	// NewSection returns a fresh configuration section of backend id holding its defaults,
	// or nil when the backend has no settings (or is not registered).
	NewSection(id string) Section
}

// New returns an empty registry for backends of a kind ("runtime", "kv backend"), named in
// its messages.
func New[F any](kind string) *Registry[F] {
	return &Registry[F]{kind: kind, m: map[string]entry[F]{}}
}

// Kind is the family's name given to New.
func (r *Registry[F]) Kind() string { return r.kind }

// Register adds f under id. newSection, when not nil, returns the backend's configuration
// section with its defaults filled in (a pointer to a struct: see Section); it is called
// once per configuration load. Register panics on an empty or duplicate id, and on a
// section type Fields cannot describe: registration happens in init functions, where that
// is a programming error.
func (r *Registry[F]) Register(id string, newSection func() Section, f F) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == "" {
		panic(fmt.Sprintf("%s registered without an id", r.kind))
	}
	if _, dup := r.m[id]; dup {
		panic(fmt.Sprintf("%s %q registered twice", r.kind, id))
	}
	if newSection != nil {
		if _, err := fields(newSection()); err != nil {
			panic(fmt.Sprintf("%s %q: configuration section: %v", r.kind, id, err))
		}
	}
	r.m[id] = entry[F]{f: f, newSection: newSection}
}

// Lookup returns the factory registered under id; ok is false when there is none.
func (r *Registry[F]) Lookup(id string) (f F, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[id]
	return e.f, ok
}

// NewSection implements Family.
func (r *Registry[F]) NewSection(id string) Section {
	r.mu.Lock()
	e, ok := r.m[id]
	r.mu.Unlock()
	if !ok || e.newSection == nil {
		return nil
	}
	return e.newSection()
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
