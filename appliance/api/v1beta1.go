package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"sigs.k8s.io/yaml"

	"github.com/kfp-box/kfp-box/storage/meta"
)

// This file serves the v1beta1 API that KFP 2.x keeps for old clients, where it maps onto the
// v2 objects: healthz; experiments (list, get, create, delete, archive, unarchive); pipelines
// and pipeline versions (list, get, templates); runs (list, get). Other v1beta1 routes (jobs,
// v1 pipeline uploads and run creation, which need Argo workflows) answer 404 in KFP's error
// shape. The wire forms follow KFP's v1beta1 protos: snake_case, enum names such as
// STORAGESTATE_AVAILABLE, v1 run statuses such as "Succeeded", times at second precision.

type v1Key struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
}

type v1Ref struct {
	Key          v1Key  `json:"key"`
	Name         string `json:"name,omitempty"`
	Relationship string `json:"relationship,omitempty"`
}

type v1Experiment struct {
	ID                 string  `json:"id,omitempty"`
	Name               string  `json:"name,omitempty"`
	Description        string  `json:"description,omitempty"`
	CreatedAt          *ts     `json:"created_at,omitempty"`
	ResourceReferences []v1Ref `json:"resource_references,omitempty"`
	StorageState       string  `json:"storage_state,omitempty"`
}

type v1URL struct {
	PipelineURL string `json:"pipeline_url,omitempty"`
}

type v1Version struct {
	ID                 string  `json:"id,omitempty"`
	Name               string  `json:"name,omitempty"`
	CreatedAt          *ts     `json:"created_at,omitempty"`
	CodeSourceURL      string  `json:"code_source_url,omitempty"`
	PackageURL         *v1URL  `json:"package_url,omitempty"`
	ResourceReferences []v1Ref `json:"resource_references,omitempty"`
	Description        string  `json:"description,omitempty"`
}

type v1Pipeline struct {
	ID                 string     `json:"id,omitempty"`
	CreatedAt          *ts        `json:"created_at,omitempty"`
	Name               string     `json:"name,omitempty"`
	Description        string     `json:"description,omitempty"`
	URL                *v1URL     `json:"url,omitempty"`
	DefaultVersion     *v1Version `json:"default_version,omitempty"`
	ResourceReferences []v1Ref    `json:"resource_references,omitempty"`
}

type v1PipelineSpec struct {
	PipelineID       string             `json:"pipeline_id,omitempty"`
	PipelineName     string             `json:"pipeline_name,omitempty"`
	PipelineManifest string             `json:"pipeline_manifest,omitempty"`
	RuntimeConfig    *wireRuntimeConfig `json:"runtime_config,omitempty"`
}

type v1Run struct {
	ID                 string          `json:"id,omitempty"`
	Name               string          `json:"name,omitempty"`
	StorageState       string          `json:"storage_state,omitempty"`
	Description        string          `json:"description,omitempty"`
	PipelineSpec       *v1PipelineSpec `json:"pipeline_spec,omitempty"`
	ResourceReferences []v1Ref         `json:"resource_references,omitempty"`
	ServiceAccount     string          `json:"service_account,omitempty"`
	CreatedAt          *ts             `json:"created_at,omitempty"`
	ScheduledAt        *ts             `json:"scheduled_at,omitempty"`
	FinishedAt         *ts             `json:"finished_at,omitempty"`
	Status             string          `json:"status,omitempty"`
	Error              string          `json:"error,omitempty"`
}

// v1Time renders a time at second precision, as KFP's v1 converters do.
func v1Time(t time.Time) *ts {
	if t.IsZero() {
		return tsp(time.Unix(0, 0))
	}
	return tsp(time.Unix(t.Unix(), 0))
}

func v1StorageState(s string) string {
	switch s {
	case meta.StorageAvailable:
		return "STORAGESTATE_AVAILABLE"
	case meta.StorageArchived:
		return "STORAGESTATE_ARCHIVED"
	}
	return "STORAGESTATE_UNSPECIFIED"
}

// v1RunStatus maps a run state to KFP's v1 status strings.
func v1RunStatus(state string) string {
	switch state {
	case meta.RunPending, meta.RunPaused:
		return "Pending"
	case meta.RunRunning:
		return "Running"
	case meta.RunSucceeded:
		return "Succeeded"
	case meta.RunSkipped:
		return "Skipped"
	case meta.RunFailed, meta.RunCanceled:
		return "Failed"
	case meta.RunCanceling:
		return "Terminating"
	}
	return "Unknown"
}

func toV1Experiment(e *meta.Experiment) v1Experiment {
	return v1Experiment{
		ID: e.ID, Name: e.DisplayName, Description: e.Description, CreatedAt: v1Time(e.CreatedAt),
		ResourceReferences: []v1Ref{{Key: v1Key{Type: "NAMESPACE", ID: e.Namespace}, Relationship: "OWNER"}},
		StorageState:       v1StorageState(e.StorageState),
	}
}

func toV1Version(v *meta.PipelineVersion) *v1Version {
	w := &v1Version{
		ID: v.ID, Name: v.Name, CreatedAt: v1Time(v.CreatedAt), Description: v.Description,
		ResourceReferences: []v1Ref{{Key: v1Key{Type: "PIPELINE", ID: v.PipelineID}, Relationship: "OWNER"}},
	}
	if v.CodeSourceURL != "" {
		w.CodeSourceURL, w.PackageURL = v.CodeSourceURL, &v1URL{PipelineURL: v.CodeSourceURL}
	}
	return w
}

func (s *Server) toV1Pipeline(c *gin.Context, p *meta.Pipeline) v1Pipeline {
	w := v1Pipeline{ID: p.ID, CreatedAt: v1Time(p.CreatedAt), Name: p.Name, Description: p.Description}
	if p.Namespace != "" {
		w.ResourceReferences = []v1Ref{{Key: v1Key{Type: "NAMESPACE", ID: p.Namespace}, Relationship: "OWNER"}}
	}
	if v, err := s.d.Meta.LatestPipelineVersion(c, p.ID); err == nil {
		w.DefaultVersion = toV1Version(v)
		switch {
		case v.PackageURL != "":
			w.URL = &v1URL{PipelineURL: v.PackageURL}
		case v.CodeSourceURL != "":
			w.URL = &v1URL{PipelineURL: v.CodeSourceURL}
		}
	}
	return w
}

func (s *Server) toV1Run(c *gin.Context, r *meta.Run) v1Run {
	w := v1Run{
		ID: r.ID, Name: r.DisplayName, StorageState: v1StorageState(r.StorageState), Description: r.Description,
		ServiceAccount: firstNonEmpty(r.ServiceAccount, DefaultServiceAccount),
		CreatedAt:      v1Time(r.CreatedAt), ScheduledAt: v1Time(r.ScheduledAt), FinishedAt: v1Time(r.FinishedAt),
		Status: v1RunStatus(r.State),
		PipelineSpec: &v1PipelineSpec{
			PipelineID: r.PipelineID, PipelineName: r.PipelineName, RuntimeConfig: wireConfig(r.RuntimeConfig),
		},
	}
	if r.Error != nil {
		w.Error = r.Error.Message
	}
	if r.Namespace != "" {
		w.ResourceReferences = append(w.ResourceReferences, v1Ref{Key: v1Key{Type: "NAMESPACE", ID: r.Namespace}, Relationship: "OWNER"})
	}
	if r.ExperimentID != "" {
		w.ResourceReferences = append(w.ResourceReferences, v1Ref{Key: v1Key{Type: "EXPERIMENT", ID: r.ExperimentID}, Relationship: "OWNER"})
	}
	switch {
	case r.RecurringRunID != "":
		w.ResourceReferences = append(w.ResourceReferences, v1Ref{Key: v1Key{Type: "JOB", ID: r.RecurringRunID}, Relationship: "CREATOR"})
	case r.PipelineVersionID != "":
		w.ResourceReferences = append(w.ResourceReferences, v1Ref{Key: v1Key{Type: "PIPELINE_VERSION", ID: r.PipelineVersionID}, Relationship: "CREATOR"})
	case r.PipelineID != "":
		w.ResourceReferences = append(w.ResourceReferences, v1Ref{Key: v1Key{Type: "PIPELINE", ID: r.PipelineID}, Relationship: "CREATOR"})
	}
	if sp, err := s.d.Meta.GetRunSpec(c, r.ID); err == nil {
		if y, err := specYAML(sp); err == nil {
			w.PipelineSpec.PipelineManifest = y
		}
	}
	return w
}

// specYAML renders a stored spec as the YAML text KFP keeps: the pipeline document, then the
// platform document after "---" when there is one.
func specYAML(stored json.RawMessage) (string, error) {
	var wrapped struct {
		PipelineSpec json.RawMessage `json:"pipeline_spec"`
		PlatformSpec json.RawMessage `json:"platform_spec"`
	}
	docs := []json.RawMessage{stored}
	if err := json.Unmarshal(stored, &wrapped); err == nil && len(wrapped.PipelineSpec) > 0 {
		docs = []json.RawMessage{wrapped.PipelineSpec}
		if len(wrapped.PlatformSpec) > 0 && string(wrapped.PlatformSpec) != "null" {
			docs = append(docs, wrapped.PlatformSpec)
		}
	}
	var parts []string
	for _, d := range docs {
		y, err := yaml.JSONToYAML(d)
		if err != nil {
			return "", err
		}
		parts = append(parts, string(y))
	}
	return strings.Join(parts, "---\n"), nil
}

func (s *Server) v1beta1Routes() {
	v1 := s.g.Group("/apis/v1beta1")
	v1.GET("/healthz", s.healthz)
	if s.d.Meta == nil {
		return
	}
	v1.GET("/experiments", s.v1ListExperiments)
	v1.POST("/experiments", s.v1CreateExperiment)
	v1.GET("/experiments/:id", func(c *gin.Context) {
		e, err := s.d.Meta.GetExperiment(c, c.Param("id"))
		if err != nil {
			abort(c, err)
			return
		}
		writeJSON(c, toV1Experiment(e))
	})
	v1.DELETE("/experiments/:id", s.deleteExperiment)
	v1.POST("/experiments/:id", func(c *gin.Context) {
		id, action := splitAction(c.Param("id"))
		s.experimentAction(c, id, action)
	})

	v1.GET("/pipelines", s.v1ListPipelines)
	v1.GET("/pipelines/:id", func(c *gin.Context) {
		p, err := s.d.Meta.GetPipeline(c, c.Param("id"))
		if err != nil {
			abort(c, err)
			return
		}
		writeJSON(c, s.toV1Pipeline(c, p))
	})
	v1.GET("/namespaces/:ns/pipelines/:name", func(c *gin.Context) {
		p, err := s.d.Meta.GetPipelineByName(c, c.Param("ns"), c.Param("name"))
		if err != nil {
			abort(c, err)
			return
		}
		writeJSON(c, s.toV1Pipeline(c, p))
	})
	v1.GET("/pipelines/:id/templates", func(c *gin.Context) {
		v, err := s.d.Meta.LatestPipelineVersion(c, c.Param("id"))
		if err != nil {
			abort(c, err)
			return
		}
		s.v1Template(c, v)
	})
	v1.GET("/pipeline_versions", s.v1ListVersions)
	v1.GET("/pipeline_versions/:id", func(c *gin.Context) {
		v, err := s.d.Meta.FindPipelineVersion(c, c.Param("id"))
		if err != nil {
			abort(c, err)
			return
		}
		writeJSON(c, toV1Version(v))
	})
	v1.GET("/pipeline_versions/:id/templates", func(c *gin.Context) {
		v, err := s.d.Meta.FindPipelineVersion(c, c.Param("id"))
		if err != nil {
			abort(c, err)
			return
		}
		s.v1Template(c, v)
	})

	v1.GET("/runs", s.v1ListRuns)
	v1.GET("/runs/:id", func(c *gin.Context) {
		r, err := s.d.Meta.GetRun(c, c.Param("id"))
		if err != nil {
			abort(c, err)
			return
		}
		run := s.toV1Run(c, r)
		out := struct {
			Run             v1Run `json:"run"`
			PipelineRuntime struct {
				PipelineManifest string `json:"pipeline_manifest,omitempty"`
			} `json:"pipeline_runtime"`
		}{Run: run}
		out.PipelineRuntime.PipelineManifest = run.PipelineSpec.PipelineManifest
		writeJSON(c, out)
	})
}

func (s *Server) v1Template(c *gin.Context, v *meta.PipelineVersion) {
	y, err := specYAML(v.Spec)
	if err != nil {
		abort(c, fmt.Errorf("rendering the template of version %q: %w", v.ID, err))
		return
	}
	writeJSON(c, gin.H{"template": y})
}

// v1RefQuery reads a v1 list request's resource reference filter (prefix "resource_reference_key"
// for runs and experiments, "resource_key" for versions).
func v1RefQuery(c *gin.Context, prefix string) (typ, id string) {
	return strings.ToUpper(c.Query(prefix + ".type")), c.Query(prefix + ".id")
}

func (s *Server) v1ListExperiments(c *gin.Context) {
	opts, err := listOptions(c)
	if err != nil {
		abort(c, err)
		return
	}
	p, err := s.d.Meta.ListExperiments(c, opts)
	if err != nil {
		abort(c, err)
		return
	}
	out := struct {
		Experiments   []v1Experiment `json:"experiments,omitempty"`
		TotalSize     int            `json:"total_size,omitempty"`
		NextPageToken string         `json:"next_page_token,omitempty"`
	}{TotalSize: p.TotalSize, NextPageToken: p.NextPageToken}
	for _, e := range p.Items {
		out.Experiments = append(out.Experiments, toV1Experiment(e))
	}
	writeJSON(c, out)
}

func (s *Server) v1CreateExperiment(c *gin.Context) {
	var in struct {
		ID                 string          `json:"id"`
		Name               string          `json:"name"`
		Description        string          `json:"description"`
		CreatedAt          json.RawMessage `json:"created_at"`
		ResourceReferences json.RawMessage `json:"resource_references"`
		StorageState       json.RawMessage `json:"storage_state"`
	}
	if err := decodeBody(c, shape{}, &in); err != nil {
		abort(c, err)
		return
	}
	if in.Name == "" {
		abort(c, fmt.Errorf("experiment name is empty: %w", ErrInvalid))
		return
	}
	if err := checkLength("experiment name", in.Name, maxExperimentName); err != nil {
		abort(c, err)
		return
	}
	e := &meta.Experiment{
		ID: uuid.NewString(), DisplayName: in.Name, Description: in.Description,
		StorageState: meta.StorageAvailable, CreatedAt: time.Now().UTC(),
	}
	if err := s.d.Meta.CreateExperiment(c, e); err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, toV1Experiment(e))
}

func (s *Server) v1ListPipelines(c *gin.Context) {
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
		Pipelines     []v1Pipeline `json:"pipelines,omitempty"`
		TotalSize     int          `json:"total_size,omitempty"`
		NextPageToken string       `json:"next_page_token,omitempty"`
	}{TotalSize: p.TotalSize, NextPageToken: p.NextPageToken}
	for _, pl := range p.Items {
		out.Pipelines = append(out.Pipelines, s.toV1Pipeline(c, pl))
	}
	writeJSON(c, out)
}

func (s *Server) v1ListVersions(c *gin.Context) {
	typ, id := v1RefQuery(c, "resource_key")
	if typ != "PIPELINE" || id == "" {
		abort(c, fmt.Errorf("listing pipeline versions needs resource_key.type=PIPELINE and resource_key.id: %w", ErrInvalid))
		return
	}
	opts, err := listOptions(c)
	if err != nil {
		abort(c, err)
		return
	}
	p, err := s.d.Meta.ListPipelineVersions(c, id, opts)
	if err != nil {
		abort(c, err)
		return
	}
	out := struct {
		Versions      []*v1Version `json:"versions,omitempty"`
		TotalSize     int          `json:"total_size,omitempty"`
		NextPageToken string       `json:"next_page_token,omitempty"`
	}{TotalSize: p.TotalSize, NextPageToken: p.NextPageToken}
	for _, v := range p.Items {
		out.Versions = append(out.Versions, toV1Version(v))
	}
	writeJSON(c, out)
}

func (s *Server) v1ListRuns(c *gin.Context) {
	opts, err := listOptions(c)
	if err != nil {
		abort(c, err)
		return
	}
	expID := ""
	switch typ, id := v1RefQuery(c, "resource_reference_key"); typ {
	case "", "NAMESPACE":
	case "EXPERIMENT":
		expID = id
	default:
		abort(c, fmt.Errorf("runs can be listed by EXPERIMENT or NAMESPACE, not %s: %w", typ, ErrInvalid))
		return
	}
	p, err := s.d.Meta.ListRuns(c, expID, opts)
	if err != nil {
		abort(c, err)
		return
	}
	out := struct {
		Runs          []v1Run `json:"runs,omitempty"`
		TotalSize     int     `json:"total_size,omitempty"`
		NextPageToken string  `json:"next_page_token,omitempty"`
	}{TotalSize: p.TotalSize, NextPageToken: p.NextPageToken}
	for _, r := range p.Items {
		out.Runs = append(out.Runs, s.toV1Run(c, r))
	}
	writeJSON(c, out)
}
