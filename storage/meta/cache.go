package meta

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/kfp-box/kfp-box/storage/kv"
)

func cachePrefix(scope, fingerprint string) string {
	return "/cache/" + url.PathEscape(scope) + "/" + fingerprint + "/"
}

func cacheKey(scope, fingerprint, execID string) string {
	return cachePrefix(scope, fingerprint) + execID
}

// PutCacheEntry stores a cache entry.
func (s *Store) PutCacheEntry(ctx context.Context, c *CacheEntry) error {
	return s.Commit(ctx, &Writes{CacheEntries: []*CacheEntry{c}})
}

// LookupCache returns the newest cache entry of scope and fingerprint created at or after
// notBefore (the zero time accepts any age), or ErrNotFound.
func (s *Store) LookupCache(ctx context.Context, scope, fingerprint string, notBefore time.Time) (*CacheEntry, error) {
	var best *CacheEntry
	err := s.kv.View(ctx, func(tx kv.Tx) error {
		return scanJSON(tx, cachePrefix(scope, fingerprint), func(c *CacheEntry) error {
			if c.CreatedAt.Before(notBefore) {
				return nil
			}
			if best == nil || c.CreatedAt.After(best.CreatedAt) {
				best = c
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if best == nil {
		return nil, fmt.Errorf("cache entry %q in %q: %w", fingerprint, scope, ErrNotFound)
	}
	return best, nil
}

// DeleteCacheEntries removes every cache entry of a scope (all fingerprints).
func (s *Store) DeleteCacheEntries(ctx context.Context, scope string) error {
	return s.update(ctx, func(tx kv.Tx) error {
		var keys [][]byte
		err := tx.Scan([]byte("/cache/"+url.PathEscape(scope)+"/"), nil, false, func(k, _ []byte, _ int64) error {
			keys = append(keys, append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}
