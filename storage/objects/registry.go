package objects

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kfp-box/kfp-box/internal/registry"
)

// Options are passed to an object store backend's factory, beside its configuration
// section.
type Options struct {
	// DataDir is kfp-box's data directory; the embedded store keeps its buckets under
	// DataDir/objects.
	DataDir string
	// Logger is scoped to the store.
	Logger *slog.Logger
}

// factory opens a backend from its section (already of the backend's type, or nil for a
// backend without settings).
type factory func(ctx context.Context, opts Options, section registry.Section) (Store, error)

// backends are the registered object stores.
var backends = registry.New[factory]("object store")

// Register makes a backend available under id ("embedded", "s3") with its typed
// configuration section: newSection returns it with its defaults (nil for a backend
// without settings, whose open then gets S's zero value). A section that also implements
// registry.URLSection can be configured by a URL (object_store: s3://BUCKET?...). Call it
// from init.
func Register[S registry.Section](id string, newSection func() S, open func(ctx context.Context, opts Options, section S) (Store, error)) {
	var ns func() registry.Section
	if newSection != nil {
		ns = func() registry.Section { return newSection() }
	}
	backends.Register(id, ns, func(ctx context.Context, opts Options, section registry.Section) (Store, error) {
		var s S
		if section != nil {
			var ok bool
			if s, ok = section.(S); !ok {
				return nil, fmt.Errorf("object store %q: configuration section is a %T, want a %T: %w", id, section, s, ErrInvalid)
			}
		}
		return open(ctx, opts, s)
	})
}

// Open opens the backend registered under id with section (nil: the backend's defaults),
// which is validated first.
func Open(ctx context.Context, id string, opts Options, section registry.Section) (Store, error) {
	f, ok := backends.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("%s: %w", backends.Missing(id), ErrUnsupported)
	}
	if section == nil {
		section = backends.NewSection(id)
	}
	if section != nil {
		if err := section.Validate(); err != nil {
			return nil, fmt.Errorf("object store %q: %w: %w", id, err, ErrInvalid)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return f(ctx, opts, section)
}

// Registered lists the registered backend ids, sorted.
func Registered() []string { return backends.IDs() }

// Backends is the object store family for the configuration: ids and their sections.
func Backends() registry.Family { return backends }
