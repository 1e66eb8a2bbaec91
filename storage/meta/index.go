package meta

import (
	"context"

	"github.com/kfp-box/kfp-box/storage/kv"
)

// indexes are the in-memory rows used for listing.
type indexes struct{}

func (s *Store) loadIndexes(ctx context.Context) error { return nil }

// indexRun records a run's listable fields; called inside the writing transaction.
func (s *Store) indexRun(tx kv.Tx, r *Run) {}
