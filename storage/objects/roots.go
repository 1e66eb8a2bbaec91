package objects

import (
	"fmt"
	"strings"
)

// DefaultPipelineRoot is KFP's default pipeline root, kept by the box's own store.
const DefaultPipelineRoot = "minio://mlpipeline/v2/artifacts"

// Resolver maps artifact URIs to the store that holds them. minio:// and s3:// URIs go
// to the box's store (embedded or external S3: both schemes name the same buckets);
// gs:// goes to a GCS store only when one is configured.
type Resolver struct {
	// Store is the box's object store.
	Store Store
	// GCS serves gs:// URIs; nil means gs:// roots are refused with a clear error.
	GCS Store
}

// Resolve parses raw and returns the store holding it.
func (r Resolver) Resolve(raw string) (Store, URI, error) {
	u, err := ParseURI(raw)
	if err != nil {
		return nil, URI{}, err
	}
	switch u.Scheme {
	case SchemeMinio, SchemeS3:
		return r.Store, u, nil
	case SchemeGCS:
		if r.GCS == nil {
			return nil, URI{}, fmt.Errorf("uri %q: gs:// needs a Google Cloud Storage store, and none is configured; use a minio:// or s3:// pipeline root (default %s): %w", raw, DefaultPipelineRoot, ErrUnsupported)
		}
		return r.GCS, u, nil
	}
	return nil, URI{}, fmt.Errorf("uri %q: %w", raw, ErrUnsupported)
}

// PipelineRoot picks a run's pipeline root as KFP does: runtime_config.pipeline_root if
// set, else the pipeline's defaultPipelineRoot, else the box default. The result is
// validated and resolvable; a trailing '/' is dropped. A root's query string (KFP's
// minio://...?endpoint= form) is kept in URI.Query and otherwise ignored: the box's store
// decides the endpoint.
func (r Resolver) PipelineRoot(runtimeRoot, specDefault string) (URI, error) {
	root := runtimeRoot
	if root == "" {
		root = specDefault
	}
	if root == "" {
		root = DefaultPipelineRoot
	}
	_, u, err := r.Resolve(root)
	if err != nil {
		return URI{}, fmt.Errorf("pipeline root: %w", err)
	}
	u.Key = strings.TrimSuffix(u.Key, "/")
	return u, nil
}

// Binding is a bind mount that gives a task an artifact without copying it.
type Binding struct {
	// HostPath is the file or directory in the object root.
	HostPath string
	// ContainerPath is where KFP's SDK expects it (/minio/..., /s3/..., /gcs/...).
	ContainerPath string
	// ReadOnly is set for inputs.
	ReadOnly bool
}

// Bind returns the bind mount for u when s keeps objects as local files, and ok=false when
// it does not (the engine then stages with StageIn/StageOut).
func Bind(s Store, u URI, readOnly bool) (b Binding, ok bool, err error) {
	lp, isLocal := s.(LocalPather)
	if !isLocal {
		return Binding{}, false, nil
	}
	cp, err := ContainerPath(u)
	if err != nil {
		return Binding{}, false, err
	}
	hp, err := lp.LocalPath(u.Bucket, u.Key)
	if err != nil {
		return Binding{}, false, err
	}
	return Binding{HostPath: hp, ContainerPath: cp, ReadOnly: readOnly}, true, nil
}
