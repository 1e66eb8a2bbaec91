package objects

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// ReclaimItem is one URI Reclaim considered.
type ReclaimItem struct {
	// URI is the dropped URI as given.
	URI string
	// Objects and Bytes count what was (or, in a dry run, would be) deleted.
	Objects int
	Bytes   int64
	// Kept counts objects under URI spared because a kept URI covers them.
	Kept int
}

// ReclaimReport sums a Reclaim.
type ReclaimReport struct {
	Items   []ReclaimItem
	Objects int
	Bytes   int64
}

// Reclaim deletes the objects behind drop (each URI an object or a folder prefix, e.g. a
// deleted run's root) except those a keep URI covers: an object is kept when its key
// equals a kept key or lies below it. Retention passes the artifact URIs that cache
// entries of other runs still point at as keep. With dryRun nothing is deleted and the
// report says what would go and how much space it frees.
func Reclaim(ctx context.Context, s Store, drop, keep []string, dryRun bool) (ReclaimReport, error) {
	kept := map[string][]string{} // bucket -> kept keys
	for _, k := range keep {
		u, err := ParseURI(k)
		if err != nil {
			return ReclaimReport{}, fmt.Errorf("reclaim keep: %w", err)
		}
		kept[u.Bucket] = append(kept[u.Bucket], strings.TrimSuffix(u.Key, "/"))
	}
	covered := func(bucket, key string) bool {
		for _, k := range kept[bucket] {
			if k == "" || key == k || strings.HasPrefix(key, k+"/") {
				return true
			}
		}
		return false
	}
	var rep ReclaimReport
	done := map[string]bool{} // bucket/key already counted (overlapping drops)
	for _, d := range drop {
		u, err := ParseURI(d)
		if err != nil {
			return rep, fmt.Errorf("reclaim: %w", err)
		}
		key := strings.TrimSuffix(u.Key, "/")
		if key == "" {
			return rep, fmt.Errorf("reclaim %q: refusing to drop a whole bucket: %w", d, ErrInvalid)
		}
		var infos []Info
		if info, err := s.Stat(ctx, u.Bucket, key); err == nil {
			infos = append(infos, info)
		}
		below, err := s.List(ctx, u.Bucket, key+"/")
		if err != nil {
			return rep, fmt.Errorf("reclaim %q: %w", d, err)
		}
		infos = append(infos, below...)
		sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
		item := ReclaimItem{URI: d}
		for _, in := range infos {
			id := in.Bucket + "/" + in.Key
			if done[id] {
				continue
			}
			done[id] = true
			if covered(in.Bucket, in.Key) {
				item.Kept++
				continue
			}
			if !dryRun {
				if err := s.Delete(ctx, in.Bucket, in.Key); err != nil {
					rep.Items = append(rep.Items, item)
					return rep, fmt.Errorf("reclaim %q: %w", d, err)
				}
			}
			item.Objects++
			item.Bytes += in.Size
		}
		rep.Items = append(rep.Items, item)
		rep.Objects += item.Objects
		rep.Bytes += item.Bytes
	}
	return rep, nil
}
