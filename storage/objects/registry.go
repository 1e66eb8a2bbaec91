package objects

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kfp-box/kfp-box/internal/registry"
)

// Options are passed to an object store backend's factory.
type Options struct {
	// DataDir is kfp-box's data directory; the embedded store keeps its buckets under
	// DataDir/objects.
	DataDir string
	// URL is the object_store setting: "embedded", or the backend's URL (for s3:
	// s3://BUCKET?endpoint=URL&access_key=…&secret_key=…).
	URL string
	// Logger is scoped to the store.
	Logger *slog.Logger
}

// Factory opens an object store backend.
type Factory func(ctx context.Context, opts Options) (Store, error)

// backends are the registered object stores.
var backends = registry.New[Factory]("object store")

// Register makes a backend available under id ("embedded", "s3"); call it from init.
func Register(id string, f Factory) { backends.Register(id, nil, f) }

// Open opens the backend registered under id.
func Open(ctx context.Context, id string, opts Options) (Store, error) {
	f, ok := backends.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("%s: %w", backends.Missing(id), ErrUnsupported)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return f(ctx, opts)
}

// Registered lists the registered backend ids, sorted.
func Registered() []string { return backends.IDs() }
