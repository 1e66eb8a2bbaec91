package meta

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/kfp-box/kfp-box/storage/kv"
)

// Orphans is what belongs to runs that no longer exist, and what must be kept anyway.
type Orphans struct {
	// TaskRoots are the task roots (URI folders) of artifacts recorded by deleted runs.
	TaskRoots []string
	// Artifacts maps the ids of those artifact records to their URIs.
	Artifacts map[string]string
	// CacheKeys are the cache entries pointing at deleted runs.
	CacheKeys []string
	// Keep are the artifact URIs still referenced by executions of existing runs (a cache
	// hit of another run reuses the producer's URIs).
	Keep []string
}

// FindOrphans scans artifacts, executions and cache entries in one read transaction.
func (s *Store) FindOrphans(ctx context.Context) (*Orphans, error) {
	o := &Orphans{Artifacts: map[string]string{}}
	err := s.kv.View(ctx, func(tx kv.Tx) error {
		exists := map[string]bool{}
		runExists := func(id string) bool {
			if v, ok := exists[id]; ok {
				return v
			}
			_, err := tx.Get([]byte(runKey(id)))
			exists[id] = err == nil
			return exists[id]
		}
		roots := map[string]bool{}
		err := scanJSON(tx, "/artifacts/", func(a *Artifact) error {
			if a.RunID == "" || runExists(a.RunID) {
				return nil
			}
			o.Artifacts[a.ID] = a.URI
			// Output artifacts live at <task root>/<name>; imported ones have no task root
			// of the run and are never reclaimed.
			if a.ExecutionID != "" && a.SchemaTitle != "" && strings.Contains(a.URI, "/"+a.RunID+"/") {
				if i := strings.LastIndex(a.URI, "/"); i > 0 && !roots[a.URI[:i]] {
					roots[a.URI[:i]] = true
					o.TaskRoots = append(o.TaskRoots, a.URI[:i])
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		keep := map[string]bool{}
		err = scanJSON(tx, "/executions/", func(x *Execution) error {
			for _, io := range []IO{x.Inputs, x.Outputs} {
				for _, refs := range io.Artifacts {
					for _, r := range refs {
						if r.URI != "" && !keep[r.URI] {
							keep[r.URI] = true
							o.Keep = append(o.Keep, r.URI)
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Scan([]byte("/cache/"), nil, false, func(k, v []byte, _ int64) error {
			var c CacheEntry
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			if !runExists(c.RunID) {
				o.CacheKeys = append(o.CacheKeys, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// ForgetOrphans deletes the artifact records and cache entries FindOrphans reported,
// except the records of artifacts whose URI is in o.Keep (other runs still use them).
func (s *Store) ForgetOrphans(ctx context.Context, o *Orphans) error {
	keep := make(map[string]bool, len(o.Keep))
	for _, u := range o.Keep {
		keep[u] = true
	}
	return s.update(ctx, func(tx kv.Tx) error {
		for id, uri := range o.Artifacts {
			if keep[uri] {
				continue
			}
			if err := tx.Delete([]byte(artifactKey(id))); err != nil && !errors.Is(err, kv.ErrNotFound) {
				return err
			}
		}
		for _, k := range o.CacheKeys {
			if err := tx.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}
