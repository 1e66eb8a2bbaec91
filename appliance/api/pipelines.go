package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// wirePipeline is KFP's v2beta1 Pipeline.
type wirePipeline struct {
	PipelineID  string            `json:"pipeline_id,omitempty"`
	DisplayName string            `json:"display_name,omitempty"`
	Name        string            `json:"name,omitempty"`
	Description string            `json:"description,omitempty"`
	CreatedAt   *ts               `json:"created_at,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// wireURL is KFP's Url message.
type wireURL struct {
	PipelineURL string `json:"pipeline_url,omitempty"`
}

// wirePipelineVersion is KFP's v2beta1 PipelineVersion.
type wirePipelineVersion struct {
	PipelineID        string            `json:"pipeline_id,omitempty"`
	PipelineVersionID string            `json:"pipeline_version_id,omitempty"`
	DisplayName       string            `json:"display_name,omitempty"`
	Name              string            `json:"name,omitempty"`
	Description       string            `json:"description,omitempty"`
	CreatedAt         *ts               `json:"created_at,omitempty"`
	PackageURL        *wireURL          `json:"package_url,omitempty"`
	CodeSourceURL     string            `json:"code_source_url,omitempty"`
	PipelineSpec      json.RawMessage   `json:"pipeline_spec,omitempty"`
	Tags              map[string]string `json:"tags,omitempty"`
}

// pipelineIn and versionIn are the request forms of the JSON create routes.
type pipelineIn struct {
	PipelineID  string            `json:"pipeline_id"`
	DisplayName string            `json:"display_name"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	CreatedAt   json.RawMessage   `json:"created_at"`
	Namespace   string            `json:"namespace"`
	Error       json.RawMessage   `json:"error"`
	Tags        map[string]string `json:"tags"`
}

type versionIn struct {
	PipelineID        string            `json:"pipeline_id"`
	PipelineVersionID string            `json:"pipeline_version_id"`
	DisplayName       string            `json:"display_name"`
	Name              string            `json:"name"`
	Description       string            `json:"description"`
	CreatedAt         json.RawMessage   `json:"created_at"`
	PackageURL        *wireURL          `json:"package_url"`
	CodeSourceURL     string            `json:"code_source_url"`
	PipelineSpec      json.RawMessage   `json:"pipeline_spec"`
	Error             json.RawMessage   `json:"error"`
	Tags              map[string]string `json:"tags"`
}

func toWirePipeline(p *meta.Pipeline) wirePipeline {
	return wirePipeline{
		PipelineID: p.ID, DisplayName: p.DisplayName, Name: p.Name, Description: p.Description,
		CreatedAt: tsp(p.CreatedAt), Namespace: p.Namespace, Tags: p.Tags,
	}
}

func toWireVersion(v *meta.PipelineVersion) wirePipelineVersion {
	w := wirePipelineVersion{
		PipelineID: v.PipelineID, PipelineVersionID: v.ID, DisplayName: v.DisplayName, Name: v.Name,
		Description: v.Description, CreatedAt: tsp(v.CreatedAt), CodeSourceURL: v.CodeSourceURL,
		PipelineSpec: v.Spec, Tags: v.Tags,
	}
	if v.PackageURL != "" {
		w.PackageURL = &wireURL{PipelineURL: v.PackageURL}
	}
	return w
}

// uploadedPipeline reads the multipart field "uploadfile" and parses and validates it.
func (s *Server) uploadedPipeline(c *gin.Context) (*spec.Pipeline, string, error) {
	fh, err := c.FormFile("uploadfile")
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "", fmt.Errorf("the upload is larger than %d bytes: %w", mbe.Limit, ErrInvalid)
		}
		return nil, "", fmt.Errorf("failed to read the multipart field \"uploadfile\": %v: %w", err, ErrInvalid)
	}
	f, err := fh.Open()
	if err != nil {
		return nil, "", fmt.Errorf("failed to open the uploaded file: %v: %w", err, ErrInvalid)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, spec.MaxPackageSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("failed to read the uploaded file: %v: %w", err, ErrInvalid)
	}
	p, err := spec.ParsePackage(fh.Filename, data)
	if err != nil {
		return nil, "", err
	}
	if err := checkSpec(p); err != nil {
		return nil, "", err
	}
	return p, fh.Filename, nil
}

// checkSpec validates an uploaded or stored pipeline, including the name rule uploads have.
func checkSpec(p *spec.Pipeline) error {
	if err := spec.Validate(p); err != nil {
		return err
	}
	return spec.ValidatePipelineName(p.Name())
}

// uploadNames applies KFP's naming: name = name ‖ display_name ‖ file name; display name =
// display_name ‖ name.
func uploadNames(c *gin.Context, filename string) (name, display string) {
	name = c.Query("name")
	display = c.Query("display_name")
	if name == "" {
		name = display
	}
	if name == "" {
		name = filename
	}
	if display == "" {
		display = name
	}
	return name, display
}

func queryTags(c *gin.Context) (map[string]string, error) {
	raw := c.Query("tags")
	if raw == "" {
		return nil, nil
	}
	var tags map[string]string
	if err := json.Unmarshal([]byte(raw), &tags); err != nil {
		return nil, fmt.Errorf("tags must be a JSON object of strings: %w", ErrInvalid)
	}
	if err := meta.ValidateTags(tags); err != nil {
		return nil, err
	}
	return tags, nil
}

// Length limits of names, as KFP's database columns.
const (
	maxPipelineName   = 128
	maxVersionName    = 127
	maxExperimentName = 128
	maxNamespace      = 63
)

// checkLength refuses a value longer than max bytes.
func checkLength(what, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%s is %d bytes long; at most %d are allowed: %w", what, len(v), max, ErrInvalid)
	}
	return nil
}

func (s *Server) uploadPipeline(c *gin.Context) {
	p, filename, err := s.uploadedPipeline(c)
	if err != nil {
		abortUpload(c, err)
		return
	}
	tags, err := queryTags(c)
	if err != nil {
		abortUpload(c, err)
		return
	}
	name, display := uploadNames(c, filename)
	if err := checkLength("pipeline name", name, maxPipelineName); err != nil {
		abortUpload(c, err)
		return
	}
	if err := checkLength("namespace", c.Query("namespace"), maxNamespace); err != nil {
		abortUpload(c, err)
		return
	}
	now := time.Now().UTC()
	// The tags of an upload are the pipeline's; its first version has none (as KFP).
	pl := &meta.Pipeline{
		ID: uuid.NewString(), Name: name, DisplayName: display, Description: c.Query("description"),
		Namespace: c.Query("namespace"), Tags: tags, CreatedAt: now,
	}
	v := &meta.PipelineVersion{
		ID: uuid.NewString(), Name: name, DisplayName: display, Description: pl.Description,
		CodeSourceURL: c.Query("code_source_url"), CreatedAt: now, Spec: p.StoredJSON(),
	}
	if err := s.d.Meta.CreatePipelineWithVersion(c, pl, v); err != nil {
		abortUpload(c, err)
		return
	}
	writeJSON(c, toWirePipeline(pl))
}

func (s *Server) uploadPipelineVersion(c *gin.Context) {
	pid := c.Query("pipelineid")
	if pid == "" {
		abortUpload(c, fmt.Errorf("query parameter pipelineid is required: %w", ErrInvalid))
		return
	}
	if _, err := s.d.Meta.GetPipeline(c, pid); err != nil {
		abortUpload(c, err)
		return
	}
	p, filename, err := s.uploadedPipeline(c)
	if err != nil {
		abortUpload(c, err)
		return
	}
	tags, err := queryTags(c)
	if err != nil {
		abortUpload(c, err)
		return
	}
	name, display := uploadNames(c, filename)
	if err := checkLength("pipeline version name", name, maxVersionName); err != nil {
		abortUpload(c, err)
		return
	}
	v := &meta.PipelineVersion{
		ID: uuid.NewString(), PipelineID: pid, Name: name, DisplayName: display,
		Description: c.Query("description"), CodeSourceURL: c.Query("code_source_url"), Tags: tags,
		CreatedAt: time.Now().UTC(), Spec: p.StoredJSON(),
	}
	if err := s.d.Meta.CreatePipelineVersion(c, v); err != nil {
		abortUpload(c, err)
		return
	}
	writeJSON(c, toWireVersion(v))
}

func (s *Server) getPipeline(c *gin.Context) {
	p, err := s.d.Meta.GetPipeline(c, c.Param("id"))
	if err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, toWirePipeline(p))
}

func (s *Server) getPipelineByName(c *gin.Context) {
	p, err := s.d.Meta.GetPipelineByName(c, c.Query("namespace"), c.Param("name"))
	if err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, toWirePipeline(p))
}

func (s *Server) listPipelines(c *gin.Context) {
	opts, err := listOptions(c)
	if err != nil {
		abort(c, err)
		return
	}
	p, err := s.d.Meta.ListPipelines(c, opts)
	if err != nil {
		abort(c, err)
		return
	}
	out := struct {
		Pipelines     []wirePipeline `json:"pipelines,omitempty"`
		TotalSize     int            `json:"total_size,omitempty"`
		NextPageToken string         `json:"next_page_token,omitempty"`
	}{TotalSize: p.TotalSize, NextPageToken: p.NextPageToken}
	for _, pl := range p.Items {
		out.Pipelines = append(out.Pipelines, toWirePipeline(pl))
	}
	writeJSON(c, out)
}

func (s *Server) deletePipeline(c *gin.Context) {
	cascade := strings.EqualFold(c.Query("cascade"), "true")
	if err := s.d.Meta.DeletePipeline(c, c.Param("id"), cascade); err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, empty)
}

// createPipeline serves POST /pipelines: a pipeline without versions.
func (s *Server) createPipeline(c *gin.Context) {
	var in pipelineIn
	if err := decodeBody(c, shapePipeline, &in); err != nil {
		abort(c, err)
		return
	}
	p, err := s.newPipeline(&in)
	if err != nil {
		abort(c, err)
		return
	}
	if err := s.d.Meta.CreatePipeline(c, p); err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, toWirePipeline(p))
}

func (s *Server) newPipeline(in *pipelineIn) (*meta.Pipeline, error) {
	name, display := in.Name, in.DisplayName
	if name == "" {
		name = display
	}
	if display == "" {
		display = name
	}
	if name == "" {
		return nil, fmt.Errorf("pipeline name and display_name are empty: %w", ErrInvalid)
	}
	if err := checkLength("pipeline name", name, maxPipelineName); err != nil {
		return nil, err
	}
	if err := checkLength("namespace", in.Namespace, maxNamespace); err != nil {
		return nil, err
	}
	return &meta.Pipeline{
		ID: uuid.NewString(), Name: name, DisplayName: display, Description: in.Description,
		Namespace: in.Namespace, Tags: in.Tags, CreatedAt: time.Now().UTC(),
	}, nil
}

// newVersion builds a version from a JSON request: the spec is pipeline_spec when given,
// else the package at package_url, fetched as KFP does.
func (s *Server) newVersion(ctx context.Context, in *versionIn, pipelineID string) (*meta.PipelineVersion, error) {
	var p *spec.Pipeline
	var err error
	urlName := ""
	switch {
	case len(in.PipelineSpec) > 0 && string(in.PipelineSpec) != "null":
		p, err = spec.FromJSON(in.PipelineSpec)
	case in.PackageURL != nil && in.PackageURL.PipelineURL != "":
		p, err = s.fetcher.fetch(ctx, in.PackageURL.PipelineURL)
		urlName = path.Base(in.PackageURL.PipelineURL)
	default:
		return nil, fmt.Errorf("a pipeline version needs package_url.pipeline_url or pipeline_spec: %w", ErrInvalid)
	}
	if err != nil {
		return nil, err
	}
	if err := checkSpec(p); err != nil {
		return nil, err
	}
	name, display := in.Name, in.DisplayName
	if name == "" {
		name = display
	}
	if name == "" {
		name = urlName
	}
	if name == "" {
		name = p.Name()
	}
	if display == "" {
		display = name
	}
	if err := checkLength("pipeline version name", name, maxVersionName); err != nil {
		return nil, err
	}
	v := &meta.PipelineVersion{
		ID: uuid.NewString(), PipelineID: pipelineID, Name: name, DisplayName: display,
		Description: in.Description, CodeSourceURL: in.CodeSourceURL, Tags: in.Tags,
		CreatedAt: time.Now().UTC(), Spec: p.StoredJSON(),
	}
	if in.PackageURL != nil {
		v.PackageURL = in.PackageURL.PipelineURL
	}
	return v, nil
}

// createPipelineAndVersion serves POST /pipelines/create: {pipeline, pipeline_version}.
func (s *Server) createPipelineAndVersion(c *gin.Context) {
	var in struct {
		Pipeline        *pipelineIn `json:"pipeline"`
		PipelineVersion *versionIn  `json:"pipeline_version"`
	}
	if err := decodeBody(c, shapeCreatePipeline, &in); err != nil {
		abort(c, err)
		return
	}
	if in.Pipeline == nil || in.PipelineVersion == nil {
		abort(c, fmt.Errorf("pipeline and pipeline_version are required: %w", ErrInvalid))
		return
	}
	// As KFP: the pipeline is named name ‖ display_name ‖ the package file name, and its
	// first version takes the pipeline's name, display name and description.
	if in.Pipeline.Name == "" && in.Pipeline.DisplayName == "" && in.PipelineVersion.PackageURL != nil {
		in.Pipeline.Name = path.Base(in.PipelineVersion.PackageURL.PipelineURL)
	}
	p, err := s.newPipeline(in.Pipeline)
	if err != nil {
		abort(c, err)
		return
	}
	in.PipelineVersion.Name, in.PipelineVersion.DisplayName, in.PipelineVersion.Description = p.Name, p.DisplayName, p.Description
	v, err := s.newVersion(c, in.PipelineVersion, p.ID)
	if err != nil {
		abort(c, err)
		return
	}
	if err := s.d.Meta.CreatePipelineWithVersion(c, p, v); err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, toWirePipeline(p))
}

// createPipelineVersion serves POST /pipelines/{pid}/versions.
func (s *Server) createPipelineVersion(c *gin.Context) {
	var in versionIn
	if err := decodeBody(c, shapePipelineVersion, &in); err != nil {
		abort(c, err)
		return
	}
	v, err := s.newVersion(c, &in, c.Param("id"))
	if err != nil {
		abort(c, err)
		return
	}
	if err := s.d.Meta.CreatePipelineVersion(c, v); err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, toWireVersion(v))
}

// getPipelineVersion serves GET /pipelines/{pid}/versions/{vid}. The version is found by its
// id alone, whatever pipeline the URL names, as KFP does.
func (s *Server) getPipelineVersion(c *gin.Context) {
	v, err := s.d.Meta.FindPipelineVersion(c, c.Param("vid"))
	if err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, toWireVersion(v))
}

func (s *Server) listPipelineVersions(c *gin.Context) {
	opts, err := listOptions(c)
	if err != nil {
		abort(c, err)
		return
	}
	p, err := s.d.Meta.ListPipelineVersions(c, c.Param("id"), opts)
	if err != nil {
		abort(c, err)
		return
	}
	out := struct {
		PipelineVersions []wirePipelineVersion `json:"pipeline_versions,omitempty"`
		TotalSize        int                   `json:"total_size,omitempty"`
		NextPageToken    string                `json:"next_page_token,omitempty"`
	}{TotalSize: p.TotalSize, NextPageToken: p.NextPageToken}
	for _, v := range p.Items {
		out.PipelineVersions = append(out.PipelineVersions, toWireVersion(v))
	}
	writeJSON(c, out)
}

// deletePipelineVersion serves DELETE /pipelines/{pid}/versions/{vid}; like a get, it goes by
// the version id alone.
func (s *Server) deletePipelineVersion(c *gin.Context) {
	if err := s.d.Meta.DeletePipelineVersionByID(c, c.Param("vid")); err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, empty)
}

// updatePipeline serves PATCH /pipelines/{id} (KFP's UpdatePipeline): the body is a Pipeline
// whose display_name (when not empty) and tags (when given; {} clears them) replace the
// stored ones. Other fields are ignored.
func (s *Server) updatePipeline(c *gin.Context) {
	var in pipelineIn
	if err := decodeBody(c, shapePipeline, &in); err != nil {
		abort(c, err)
		return
	}
	p, err := s.d.Meta.UpdatePipeline(c, c.Param("id"), meta.PipelineUpdate{DisplayName: in.DisplayName, Tags: in.Tags})
	if err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, toWirePipeline(p))
}

// updatePipelineVersion serves PATCH /pipelines/{pid}/versions/{vid} (UpdatePipelineVersion),
// finding the version by its id alone as KFP does.
func (s *Server) updatePipelineVersion(c *gin.Context) {
	var in versionIn
	if err := decodeBody(c, shapePipelineVersion, &in); err != nil {
		abort(c, err)
		return
	}
	v, err := s.d.Meta.UpdatePipelineVersion(c, c.Param("vid"), meta.PipelineUpdate{DisplayName: in.DisplayName, Tags: in.Tags})
	if err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, toWireVersion(v))
}
