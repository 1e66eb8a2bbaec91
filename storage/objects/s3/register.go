package s3

import (
	"context"

	"github.com/kfp-box/kfp-box/storage/objects"
)

// ID is the external S3 store's registered id; its options come from the object_store URL
// (ParseURL documents the parameters).
const ID = "s3"

func init() {
	objects.Register(ID, func(_ context.Context, opts objects.Options) (objects.Store, error) {
		return Open(opts.URL, opts.Logger)
	})
}
