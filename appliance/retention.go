package appliance

import (
	"context"
	"path/filepath"

	"github.com/kfp-box/kfp-box/storage/objects"
	"github.com/kfp-box/kfp-box/storage/objects/local"
)

// gcItem is one reclaimed (or, in a dry run, reclaimable) task root.
type gcItem struct {
	URI     string `json:"uri"`
	Objects int    `json:"objects"`
	Bytes   int64  `json:"bytes"`
	Kept    int    `json:"kept,omitempty"`
}

// gcReport is the body of POST /apis/v2beta1/gc.
type gcReport struct {
	DryRun  bool     `json:"dry_run"`
	Items   []gcItem `json:"items,omitempty"`
	Objects int      `json:"objects"`
	Bytes   int64    `json:"bytes"`
}

// collectGarbage deletes the artifacts of runs that no longer exist, except those that
// executions of existing runs still use (a cache hit reuses its producer's files), and
// forgets their records and cache entries. A dry run only reports what would go. With an
// external store, the local copies under the data directory go too.
func (a *Appliance) collectGarbage(ctx context.Context, dryRun bool) (any, error) {
	a.gcMu.Lock()
	defer a.gcMu.Unlock()
	o, err := a.meta.FindOrphans(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := objects.Reclaim(ctx, a.objects, o.TaskRoots, o.Keep, dryRun)
	if err != nil {
		return nil, err
	}
	if a.remote != nil && !dryRun {
		if cache, err := local.New(filepath.Join(a.cfg.DataDir, "objects"), a.logger); err == nil {
			_, _ = objects.Reclaim(ctx, cache, o.TaskRoots, o.Keep, false)
		}
	}
	if !dryRun {
		if err := a.meta.ForgetOrphans(ctx, o); err != nil {
			return nil, err
		}
	}
	out := gcReport{DryRun: dryRun, Objects: rep.Objects, Bytes: rep.Bytes}
	for _, it := range rep.Items {
		out.Items = append(out.Items, gcItem{URI: it.URI, Objects: it.Objects, Bytes: it.Bytes, Kept: it.Kept})
	}
	if !dryRun && rep.Objects > 0 {
		a.logger.Info("reclaimed the artifacts of deleted runs", "objects", rep.Objects, "bytes", rep.Bytes)
	}
	return out, nil
}

// runDeleted reclaims a deleted run's artifacts in the background.
func (a *Appliance) runDeleted(runID string) {
	go func() {
		if _, err := a.collectGarbage(context.Background(), false); err != nil {
			a.logger.Warn("reclaiming a deleted run's artifacts", "run", runID, "err", err)
		}
	}()
}
