package meta

import (
	"context"
	"fmt"
	"net/url"

	"github.com/kfp-box/kfp-box/storage/kv"
)

// Artifacts live under /artifacts/<id>; artifacts recorded with a Scope (the pipeline name)
// are also indexed by URI under /artifact-uris/<scope>/<escaped uri> so the importer can
// reuse an existing artifact instead of importing the same URI again.

func artifactKey(id string) string { return "/artifacts/" + id }

func artifactURIKey(scope, uri string) string {
	return "/artifact-uris/" + url.PathEscape(scope) + "/" + url.PathEscape(uri)
}

// PutArtifacts stores artifact records in one durable batch.
func (s *Store) PutArtifacts(ctx context.Context, arts ...*Artifact) error {
	return s.Commit(ctx, &Writes{Artifacts: arts})
}

// GetArtifact returns one artifact record.
func (s *Store) GetArtifact(ctx context.Context, id string) (*Artifact, error) {
	var a Artifact
	err := s.kv.View(ctx, func(tx kv.Tx) error { return getJSON(tx, artifactKey(id), &a) })
	if err != nil {
		return nil, fmt.Errorf("artifact %q: %w", id, err)
	}
	return &a, nil
}

// GetArtifacts returns the records of ids, in order, in one read transaction.
func (s *Store) GetArtifacts(ctx context.Context, ids []string) ([]*Artifact, error) {
	out := make([]*Artifact, len(ids))
	err := s.kv.View(ctx, func(tx kv.Tx) error {
		for i, id := range ids {
			a := &Artifact{}
			if err := getJSON(tx, artifactKey(id), a); err != nil {
				return fmt.Errorf("artifact %q: %w", id, err)
			}
			out[i] = a
		}
		return nil
	})
	return out, err
}

// FindArtifactByURI returns the newest artifact recorded in scope with that URI, or
// ErrNotFound.
func (s *Store) FindArtifactByURI(ctx context.Context, scope, uri string) (*Artifact, error) {
	var a Artifact
	err := s.kv.View(ctx, func(tx kv.Tx) error {
		id, err := tx.Get([]byte(artifactURIKey(scope, uri)))
		if err != nil {
			return ErrNotFound
		}
		return getJSON(tx, artifactKey(string(id)), &a)
	})
	if err != nil {
		return nil, fmt.Errorf("artifact with uri %q in %q: %w", uri, scope, err)
	}
	return &a, nil
}
