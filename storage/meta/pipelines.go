package meta

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/kfp-box/kfp-box/storage/kv"
)

const (
	pipelinePrefix = "/pipelines/"
	versionPrefix  = "/versions/"
)

func pipelineKey(id string) string            { return pipelinePrefix + id }
func versionKey(pipelineID, id string) string { return versionPrefix + pipelineID + "/" + id }

func (s *Store) createPipelineTx(tx kv.Tx, w *writeSet, p *Pipeline) error {
	if p.ID == "" || p.Name == "" {
		return fmt.Errorf("pipeline needs an id and a name: %w", ErrInvalid)
	}
	if err := ValidateTags(p.Tags); err != nil {
		return err
	}
	if _, err := tx.Get([]byte(pipelineKey(p.ID))); err == nil {
		return fmt.Errorf("pipeline %q: %w", p.ID, ErrAlreadyExists)
	}
	if err := claimName(tx, "pipelines", p.Namespace, p.Name, p.ID); err != nil {
		return err
	}
	if err := putJSON(tx, pipelineKey(p.ID), p); err != nil {
		return err
	}
	w.put(s.idx.pipelines, pipelineRow(p))
	return nil
}

func (s *Store) createVersionTx(tx kv.Tx, w *writeSet, v *PipelineVersion) error {
	if v.ID == "" || v.Name == "" || v.PipelineID == "" {
		return fmt.Errorf("pipeline version needs an id, a name and a pipeline: %w", ErrInvalid)
	}
	if err := ValidateTags(v.Tags); err != nil {
		return err
	}
	if _, err := tx.Get([]byte(pipelineKey(v.PipelineID))); err != nil {
		return fmt.Errorf("pipeline %q: %w", v.PipelineID, ErrNotFound)
	}
	if _, err := tx.Get([]byte(versionKey(v.PipelineID, v.ID))); err == nil {
		return fmt.Errorf("pipeline version %q: %w", v.ID, ErrAlreadyExists)
	}
	if err := claimName(tx, "versions", v.PipelineID, v.Name, v.ID); err != nil {
		return err
	}
	if err := putJSON(tx, versionKey(v.PipelineID, v.ID), v); err != nil {
		return err
	}
	w.put(s.idx.versions, versionRow(v))
	return nil
}

// CreatePipeline stores a pipeline without versions.
func (s *Store) CreatePipeline(ctx context.Context, p *Pipeline) error {
	return s.write(ctx, false, func(tx kv.Tx, w *writeSet) error { return s.createPipelineTx(tx, w, p) })
}

// CreatePipelineWithVersion stores a pipeline and its first version in one transaction, as an
// upload does.
func (s *Store) CreatePipelineWithVersion(ctx context.Context, p *Pipeline, v *PipelineVersion) error {
	v.PipelineID = p.ID
	return s.write(ctx, false, func(tx kv.Tx, w *writeSet) error {
		if err := s.createPipelineTx(tx, w, p); err != nil {
			return err
		}
		return s.createVersionTx(tx, w, v)
	})
}

// CreatePipelineVersion stores a new version of an existing pipeline.
func (s *Store) CreatePipelineVersion(ctx context.Context, v *PipelineVersion) error {
	return s.write(ctx, false, func(tx kv.Tx, w *writeSet) error { return s.createVersionTx(tx, w, v) })
}

// GetPipeline returns a pipeline.
func (s *Store) GetPipeline(ctx context.Context, id string) (*Pipeline, error) {
	var p Pipeline
	err := s.kv.View(ctx, func(tx kv.Tx) error { return getJSON(tx, pipelineKey(id), &p) })
	if err != nil {
		return nil, fmt.Errorf("pipeline %q: %w", id, err)
	}
	return &p, nil
}

// GetPipelineByName returns the pipeline with a name in a namespace.
func (s *Store) GetPipelineByName(ctx context.Context, namespace, name string) (*Pipeline, error) {
	var p Pipeline
	err := s.kv.View(ctx, func(tx kv.Tx) error {
		id, err := tx.Get([]byte(nameKey("pipelines", namespace, name)))
		if err != nil {
			return ErrNotFound
		}
		return getJSON(tx, pipelineKey(string(id)), &p)
	})
	if err != nil {
		return nil, fmt.Errorf("pipeline named %q: %w", name, err)
	}
	return &p, nil
}

// ListPipelines lists pipelines.
func (s *Store) ListPipelines(ctx context.Context, opts ListOptions) (*Page[Pipeline], error) {
	return listPage[Pipeline](ctx, s, s.idx.pipelines, opts, nil, pipelineKey)
}

// DeletePipeline removes a pipeline. A pipeline with versions is removed only with cascade,
// which removes the versions too (KFP answers FailedPrecondition otherwise).
func (s *Store) DeletePipeline(ctx context.Context, id string, cascade bool) error {
	vids := s.idsWhere(s.idx.versions, "pipeline_id", id)
	return s.write(ctx, false, func(tx kv.Tx, w *writeSet) error {
		var p Pipeline
		if err := getJSON(tx, pipelineKey(id), &p); err != nil {
			return fmt.Errorf("pipeline %q: %w", id, err)
		}
		if len(vids) > 0 && !cascade {
			return fmt.Errorf("pipeline %q has %d versions; delete them first or pass cascade=true: %w", id, len(vids), ErrFailedPrecondition)
		}
		for _, vid := range vids {
			if err := s.deleteVersionTx(tx, w, id, vid); err != nil {
				return err
			}
		}
		if err := tx.Delete([]byte(nameKey("pipelines", p.Namespace, p.Name))); err != nil {
			return err
		}
		if err := tx.Delete([]byte(pipelineKey(id))); err != nil {
			return err
		}
		w.del(s.idx.pipelines, id)
		return nil
	})
}

// GetPipelineVersion returns a version of a pipeline.
func (s *Store) GetPipelineVersion(ctx context.Context, pipelineID, id string) (*PipelineVersion, error) {
	var v PipelineVersion
	err := s.kv.View(ctx, func(tx kv.Tx) error { return getJSON(tx, versionKey(pipelineID, id), &v) })
	if err != nil {
		return nil, fmt.Errorf("pipeline version %q of pipeline %q: %w", id, pipelineID, err)
	}
	return &v, nil
}

// FindPipelineVersion returns a version by its id alone.
func (s *Store) FindPipelineVersion(ctx context.Context, id string) (*PipelineVersion, error) {
	r, ok := s.idx.versions.get(id)
	if !ok {
		return nil, fmt.Errorf("pipeline version %q: %w", id, ErrNotFound)
	}
	return s.GetPipelineVersion(ctx, s.idx.versions.str(r, "pipeline_id"), id)
}

// LatestPipelineVersion returns the most recently created version of a pipeline.
func (s *Store) LatestPipelineVersion(ctx context.Context, pipelineID string) (*PipelineVersion, error) {
	var best *row
	s.idx.versions.each(func(r *row) bool {
		if s.idx.versions.str(r, "pipeline_id") != pipelineID {
			return true
		}
		if best == nil || s.idx.versions.num(r, "created_at") > s.idx.versions.num(best, "created_at") ||
			(s.idx.versions.num(r, "created_at") == s.idx.versions.num(best, "created_at") && r.id > best.id) {
			best = r
		}
		return true
	})
	if best == nil {
		return nil, fmt.Errorf("pipeline %q has no versions: %w", pipelineID, ErrNotFound)
	}
	return s.GetPipelineVersion(ctx, pipelineID, best.id)
}

// ListPipelineVersions lists the versions of a pipeline.
func (s *Store) ListPipelineVersions(ctx context.Context, pipelineID string, opts ListOptions) (*Page[PipelineVersion], error) {
	if _, err := s.GetPipeline(ctx, pipelineID); err != nil {
		return nil, err
	}
	return listPage[PipelineVersion](ctx, s, s.idx.versions, opts, map[string]string{"pipeline_id": pipelineID},
		func(id string) string { return versionKey(pipelineID, id) })
}

// DeletePipelineVersion removes a version.
func (s *Store) DeletePipelineVersion(ctx context.Context, pipelineID, id string) error {
	return s.write(ctx, false, func(tx kv.Tx, w *writeSet) error { return s.deleteVersionTx(tx, w, pipelineID, id) })
}

func (s *Store) deleteVersionTx(tx kv.Tx, w *writeSet, pipelineID, id string) error {
	var v PipelineVersion
	if err := getJSON(tx, versionKey(pipelineID, id), &v); err != nil {
		return fmt.Errorf("pipeline version %q of pipeline %q: %w", id, pipelineID, err)
	}
	if err := tx.Delete([]byte(nameKey("versions", pipelineID, v.Name))); err != nil {
		return err
	}
	if err := tx.Delete([]byte(versionKey(pipelineID, id))); err != nil {
		return err
	}
	w.del(s.idx.versions, id)
	return nil
}

// PipelineUpdate names the mutable fields of a pipeline or version to change: an empty
// DisplayName keeps the current one; nil Tags keep the current tags, an empty map clears
// them, any other map replaces them.
type PipelineUpdate struct {
	DisplayName string
	Tags        map[string]string
}

// UpdatePipeline changes a pipeline's display name and tags.
func (s *Store) UpdatePipeline(ctx context.Context, id string, u PipelineUpdate) (*Pipeline, error) {
	if err := ValidateTags(u.Tags); err != nil {
		return nil, err
	}
	var out Pipeline
	err := s.write(ctx, false, func(tx kv.Tx, w *writeSet) error {
		var p Pipeline
		if err := getJSON(tx, pipelineKey(id), &p); err != nil {
			return fmt.Errorf("pipeline %q: %w", id, err)
		}
		if u.DisplayName != "" {
			p.DisplayName = u.DisplayName
		}
		if u.Tags != nil {
			p.Tags = cloneTags(u.Tags)
		}
		if err := putJSON(tx, pipelineKey(id), &p); err != nil {
			return err
		}
		w.put(s.idx.pipelines, pipelineRow(&p))
		out = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdatePipelineVersion changes a version's display name and tags; the version is found by
// its id alone, as KFP does.
func (s *Store) UpdatePipelineVersion(ctx context.Context, id string, u PipelineUpdate) (*PipelineVersion, error) {
	if err := ValidateTags(u.Tags); err != nil {
		return nil, err
	}
	pid, err := s.versionPipelineID(id)
	if err != nil {
		return nil, err
	}
	var out PipelineVersion
	err = s.write(ctx, false, func(tx kv.Tx, w *writeSet) error {
		var v PipelineVersion
		if err := getJSON(tx, versionKey(pid, id), &v); err != nil {
			return fmt.Errorf("pipeline version %q: %w", id, err)
		}
		if u.DisplayName != "" {
			v.DisplayName = u.DisplayName
		}
		if u.Tags != nil {
			v.Tags = cloneTags(u.Tags)
		}
		if err := putJSON(tx, versionKey(pid, id), &v); err != nil {
			return err
		}
		w.put(s.idx.versions, versionRow(&v))
		out = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeletePipelineVersionByID removes a version found by its id alone.
func (s *Store) DeletePipelineVersionByID(ctx context.Context, id string) error {
	pid, err := s.versionPipelineID(id)
	if err != nil {
		return err
	}
	return s.DeletePipelineVersion(ctx, pid, id)
}

// versionPipelineID returns the pipeline a version belongs to.
func (s *Store) versionPipelineID(id string) (string, error) {
	r, ok := s.idx.versions.get(id)
	if !ok {
		return "", fmt.Errorf("pipeline version %q: %w", id, ErrNotFound)
	}
	return s.idx.versions.str(r, "pipeline_id"), nil
}

// cloneTags copies tags; an empty map becomes nil (no tags).
func cloneTags(t map[string]string) map[string]string {
	if len(t) == 0 {
		return nil
	}
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}

// Tag limits, as KFP's (a Kubernetes label value's length).
const (
	MaxTags        = 20
	MaxTagKeyLen   = 63
	MaxTagValueLen = 63
)

// ValidateTags checks tags as KFP does: at most MaxTags, keys non-empty without '.', keys
// and values at most 63 characters. Errors wrap ErrInvalid.
func ValidateTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return fmt.Errorf("%d tags exceed the maximum of %d: %w", len(tags), MaxTags, ErrInvalid)
	}
	for k, v := range tags {
		switch {
		case k == "":
			return fmt.Errorf("a tag key cannot be empty: %w", ErrInvalid)
		case strings.Contains(k, "."):
			return fmt.Errorf("tag key %q must not contain '.': %w", k, ErrInvalid)
		case utf8.RuneCountInString(k) > MaxTagKeyLen:
			return fmt.Errorf("tag key %q is longer than %d characters: %w", k, MaxTagKeyLen, ErrInvalid)
		case utf8.RuneCountInString(v) > MaxTagValueLen:
			return fmt.Errorf("the value of tag %q is longer than %d characters: %w", k, MaxTagValueLen, ErrInvalid)
		}
	}
	return nil
}
