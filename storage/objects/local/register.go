package local

import (
	"context"
	"path/filepath"

	"github.com/kfp-box/kfp-box/internal/registry"
	"github.com/kfp-box/kfp-box/storage/objects"
)

// ID is the embedded store's registered id: buckets as directories under DataDir/objects,
// served over S3 by the embedded server (storage/objects/s3server). It has no settings.
const ID = "embedded"

func init() {
	objects.Register[registry.Section](ID, nil, func(_ context.Context, opts objects.Options, _ registry.Section) (objects.Store, error) {
		return New(filepath.Join(opts.DataDir, "objects"), opts.Logger)
	})
}
