package api

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/storage/meta"
	"github.com/kfp-box/kfp-box/storage/objects"
)

// ArtifactLister is what the artifact routes need from the metadata store.
type ArtifactLister interface {
	// ListRunArtifacts returns every artifact recorded for a run (outputs and imports).
	ListRunArtifacts(ctx context.Context, runID string) ([]*meta.Artifact, error)
	// GetArtifact returns one artifact record or an error wrapping ErrNotFound.
	GetArtifact(ctx context.Context, id string) (*meta.Artifact, error)
}

// MetaArtifacts adapts *meta.Store to ArtifactLister: a run's artifacts are those its
// executions output, in execution order.
type MetaArtifacts struct{ Store *meta.Store }

var _ ArtifactLister = MetaArtifacts{}

// ListRunArtifacts collects the artifact ids of the run's executions' outputs.
func (m MetaArtifacts) ListRunArtifacts(ctx context.Context, runID string) ([]*meta.Artifact, error) {
	execs, err := m.Store.ListExecutions(ctx, runID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var ids []string
	for _, e := range execs {
		for _, refs := range e.Outputs.Artifacts {
			for _, r := range refs {
				if r.ID != "" && !seen[r.ID] {
					seen[r.ID] = true
					ids = append(ids, r.ID)
				}
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return m.Store.GetArtifacts(ctx, ids)
}

// GetArtifact returns one artifact record.
func (m MetaArtifacts) GetArtifact(ctx context.Context, id string) (*meta.Artifact, error) {
	return m.Store.GetArtifact(ctx, id)
}

func init() {
	registerClassifier(func(err error) (int, bool) {
		switch {
		case errors.Is(err, objects.ErrNotFound), errors.Is(err, meta.ErrNotFound):
			return codeNotFound, true
		case errors.Is(err, objects.ErrInvalid):
			return codeInvalidArgument, true
		case errors.Is(err, objects.ErrUnsupported):
			return codeFailedPrecondition, true
		}
		return 0, false
	})
}

// artifactJSON is one artifact in API responses.
type artifactJSON struct {
	ArtifactID  string         `json:"artifact_id"`
	RunID       string         `json:"run_id,omitempty"`
	Name        string         `json:"name"`
	Type        string         `json:"type"`
	SchemaTitle string         `json:"schema_title"`
	URI         string         `json:"uri"`
	SizeBytes   *int64         `json:"size_bytes,omitempty"`
	Size        *int64         `json:"size,omitempty"` // the web UI reads "size"
	IsFolder    bool           `json:"is_folder,omitempty"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	TaskName    string         `json:"task_name,omitempty"`
	CreatedAt   string         `json:"created_at,omitempty"`
}

// artifactRoutes serves artifact listing and downloads.
type artifactRoutes struct {
	lister ArtifactLister
	store  objects.Store
}

// registerArtifactRoutes adds, under r (the /apis/v2beta1 group):
//
//	GET /runs/:id/artifacts               {"artifacts": [...]} with type, size, URI, metadata
//	GET /artifacts/:id                    one artifact record
//	GET /artifacts/:id:download           the artifact's bytes (also /artifacts/:id/download)
//	GET /artifacts/download?uri=URI       the bytes of a stored URI
//
// Downloads honour Range, carry a content type from the extension or the artifact type,
// and stream folders as a tar archive.
func registerArtifactRoutes(r gin.IRouter, lister ArtifactLister, store objects.Store) {
	h := &artifactRoutes{lister: lister, store: store}
	r.GET("/runs/:id/artifacts", h.listRun)
	r.GET("/artifacts/download", h.downloadURI)
	r.GET("/artifacts/:id", h.getOrDownload)
	r.GET("/artifacts/:id/download", h.downloadID)
}

func (h *artifactRoutes) listRun(c *gin.Context) {
	arts, err := h.lister.ListRunArtifacts(c.Request.Context(), c.Param("id"))
	if err != nil {
		abort(c, err)
		return
	}
	out := make([]artifactJSON, 0, len(arts))
	for _, a := range arts {
		out = append(out, h.render(c.Request.Context(), a))
	}
	c.JSON(http.StatusOK, gin.H{"artifacts": out})
}

func (h *artifactRoutes) getOrDownload(c *gin.Context) {
	id := c.Param("id")
	if strings.HasSuffix(id, ":download") {
		h.download(c, strings.TrimSuffix(id, ":download"))
		return
	}
	a, err := h.lister.GetArtifact(c.Request.Context(), id)
	if err != nil {
		abort(c, err)
		return
	}
	c.JSON(http.StatusOK, h.render(c.Request.Context(), a))
}

func (h *artifactRoutes) downloadID(c *gin.Context) { h.download(c, c.Param("id")) }

func (h *artifactRoutes) download(c *gin.Context, id string) {
	a, err := h.lister.GetArtifact(c.Request.Context(), id)
	if err != nil {
		abort(c, err)
		return
	}
	u, err := objects.ParseURI(a.URI)
	if err != nil {
		abort(c, err)
		return
	}
	h.serve(c, u, a.Name, a.SchemaTitle)
}

func (h *artifactRoutes) downloadURI(c *gin.Context) {
	raw := c.Query("uri")
	if raw == "" {
		abort(c, fmt.Errorf("query parameter uri is required: %w", ErrInvalid))
		return
	}
	u, err := objects.ParseURI(raw)
	if err != nil {
		abort(c, err)
		return
	}
	h.serve(c, u, "", "")
}

// render adds the stored size to an artifact record. Metadata-only artifacts (metrics)
// have no object and no size.
func (h *artifactRoutes) render(ctx context.Context, a *meta.Artifact) artifactJSON {
	j := artifactJSON{
		ArtifactID: a.ID, RunID: a.RunID, Name: a.Name, Type: a.SchemaTitle, SchemaTitle: a.SchemaTitle,
		URI: a.URI, Metadata: a.Metadata, TaskName: a.TaskName,
	}
	if !a.CreatedAt.IsZero() {
		j.CreatedAt = a.CreatedAt.UTC().Format(time.RFC3339)
	}
	u, err := objects.ParseURI(a.URI)
	if err != nil || u.Scheme == objects.SchemeGCS {
		return j
	}
	if e, err := objects.Describe(ctx, h.store, u); err == nil {
		j.SizeBytes, j.Size, j.IsFolder = &e.Size, &e.Size, e.Folder
	}
	return j
}

// serve writes the object behind u, or a tar stream of the folder behind it.
func (h *artifactRoutes) serve(c *gin.Context, u objects.URI, name, schemaTitle string) {
	ctx := c.Request.Context()
	if u.Scheme == objects.SchemeGCS {
		abort(c, fmt.Errorf("uri %q: the box keeps no gs:// objects: %w", u.String(), objects.ErrUnsupported))
		return
	}
	key := strings.TrimSuffix(u.Key, "/")
	if key == "" {
		abort(c, fmt.Errorf("uri %q names a bucket, not an artifact: %w", u.String(), ErrInvalid))
		return
	}
	if name == "" {
		name = path.Base(key)
	}
	info, err := h.store.Stat(ctx, u.Bucket, key)
	if errors.Is(err, objects.ErrNotFound) {
		h.serveFolder(c, u, key, name)
		return
	}
	if err != nil {
		abort(c, err)
		return
	}
	ctype := contentType(key, name, schemaTitle)
	hdr := c.Writer.Header()
	if ctype != "" {
		hdr.Set("Content-Type", ctype)
	}
	// Artifacts are untrusted content: never let one run script in the API's origin.
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", "sandbox")
	hdr.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": downloadName(name, key)}))
	if info.ETag != "" {
		hdr.Set("ETag", `"`+strings.Trim(info.ETag, `"`)+`"`)
	}
	rs := &objectSeeker{ctx: ctx, store: h.store, bucket: u.Bucket, key: key, size: info.Size}
	defer rs.Close()
	http.ServeContent(c.Writer, c.Request, "", info.ModTime, rs)
}

// serveFolder streams every object below key + "/" as a tar archive.
func (h *artifactRoutes) serveFolder(c *gin.Context, u objects.URI, key, name string) {
	ctx := c.Request.Context()
	infos, err := h.store.List(ctx, u.Bucket, key+"/")
	if err != nil {
		abort(c, err)
		return
	}
	if len(infos) == 0 {
		abort(c, fmt.Errorf("artifact %q: %w", u.String(), objects.ErrNotFound))
		return
	}
	hdr := c.Writer.Header()
	hdr.Set("Content-Type", "application/x-tar")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": downloadName(name, key) + ".tar"}))
	c.Status(http.StatusOK)
	tw := tar.NewWriter(c.Writer)
	for _, in := range infos {
		rel := strings.TrimPrefix(in.Key, key+"/")
		if err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg, Name: rel, Size: in.Size, Mode: 0o644, ModTime: in.ModTime, Format: tar.FormatPAX,
		}); err != nil {
			return // client went away
		}
		rc, err := h.store.Get(ctx, u.Bucket, in.Key, 0, in.Size)
		if err != nil {
			// Headers are sent; a truncated archive is the only signal left.
			_ = c.Error(err)
			return
		}
		_, err = io.Copy(tw, rc)
		_ = rc.Close()
		if err != nil {
			_ = c.Error(err)
			return
		}
	}
	_ = tw.Close()
}

// contentTypes names types Go's mime table may lack or get wrong for previews.
var contentTypes = map[string]string{
	".csv":  "text/csv; charset=utf-8",
	".tsv":  "text/tab-separated-values; charset=utf-8",
	".md":   "text/markdown; charset=utf-8",
	".html": "text/html; charset=utf-8",
	".htm":  "text/html; charset=utf-8",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
	".log":  "text/plain; charset=utf-8",
	".yaml": "text/yaml; charset=utf-8",
	".yml":  "text/yaml; charset=utf-8",
	".png":  "image/png",
	".jpg":  "image/jpeg",
	".jpeg": "image/jpeg",
	".gif":  "image/gif",
	".svg":  "image/svg+xml",
	".webp": "image/webp",
}

// schemaTypes gives a content type to KFP artifact types whose files have no extension.
var schemaTypes = map[string]string{
	"system.HTML":     "text/html; charset=utf-8",
	"system.Markdown": "text/markdown; charset=utf-8",
}

// contentType picks a type by the key's or name's extension, then by artifact type; ""
// lets http.ServeContent sniff the first bytes.
func contentType(key, name, schemaTitle string) string {
	for _, p := range []string{key, name} {
		ext := strings.ToLower(path.Ext(p))
		if t, ok := contentTypes[ext]; ok {
			return t
		}
		if t := mime.TypeByExtension(ext); ext != "" && t != "" {
			return t
		}
	}
	return schemaTypes[schemaTitle]
}

// downloadName is the file name offered to browsers.
func downloadName(name, key string) string {
	n := path.Base(key)
	if name != "" && path.Ext(n) == "" {
		n = name
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == '/' || r == '\\' || r == '"' {
			return '_'
		}
		return r
	}, n)
}

// objectSeeker is an io.ReadSeeker over a stored object for http.ServeContent: each Seek
// drops the open reader, and the next Read opens a ranged Get from the new offset.
type objectSeeker struct {
	ctx         context.Context
	store       objects.Store
	bucket, key string
	size, off   int64
	rc          io.ReadCloser
}

func (o *objectSeeker) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	if o.rc == nil {
		rc, err := o.store.Get(o.ctx, o.bucket, o.key, o.off, -1)
		if err != nil {
			return 0, err
		}
		o.rc = rc
	}
	n, err := o.rc.Read(p)
	o.off += int64(n)
	return n, err
}

func (o *objectSeeker) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.off + offset
	case io.SeekEnd:
		abs = o.size + offset
	default:
		return 0, fmt.Errorf("seek: bad whence %d: %w", whence, objects.ErrInvalid)
	}
	if abs < 0 {
		return 0, fmt.Errorf("seek: negative position: %w", objects.ErrInvalid)
	}
	if abs != o.off {
		_ = o.Close()
		o.off = abs
	}
	return abs, nil
}

func (o *objectSeeker) Close() error {
	if o.rc == nil {
		return nil
	}
	err := o.rc.Close()
	o.rc = nil
	return err
}
