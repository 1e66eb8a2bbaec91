package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/kfp-box/kfp-box/storage/meta"
)

// wireExperiment is KFP's v2beta1 Experiment.
type wireExperiment struct {
	ExperimentID     string `json:"experiment_id,omitempty"`
	DisplayName      string `json:"display_name,omitempty"`
	Description      string `json:"description,omitempty"`
	CreatedAt        *ts    `json:"created_at,omitempty"`
	Namespace        string `json:"namespace,omitempty"`
	StorageState     string `json:"storage_state,omitempty"`
	LastRunCreatedAt *ts    `json:"last_run_created_at,omitempty"`
}

// experimentIn is the request form: output-only fields are accepted and ignored.
type experimentIn struct {
	ExperimentID     string          `json:"experiment_id"`
	DisplayName      string          `json:"display_name"`
	Description      string          `json:"description"`
	CreatedAt        json.RawMessage `json:"created_at"`
	Namespace        string          `json:"namespace"`
	StorageState     json.RawMessage `json:"storage_state"`
	LastRunCreatedAt json.RawMessage `json:"last_run_created_at"`
}

func toWireExperiment(e *meta.Experiment) wireExperiment {
	return wireExperiment{
		ExperimentID: e.ID, DisplayName: e.DisplayName, Description: e.Description,
		CreatedAt: tsp(e.CreatedAt), Namespace: e.Namespace, StorageState: e.StorageState,
		LastRunCreatedAt: tsp(e.LastRunCreatedAt),
	}
}

// listOptions reads the paging query parameters every list endpoint takes.
func listOptions(c *gin.Context) (meta.ListOptions, error) {
	o := meta.ListOptions{
		Filter:    c.Query("filter"),
		SortBy:    c.Query("sort_by"),
		PageToken: c.Query("page_token"),
	}
	if ps := c.Query("page_size"); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil {
			return o, fmt.Errorf("page_size %q is not an integer: %w", ps, ErrInvalid)
		}
		o.PageSize = n
	}
	return o, nil
}

func (s *Server) createExperiment(c *gin.Context) {
	var in experimentIn
	if err := decodeBody(c, shapeExperiment, &in); err != nil {
		abort(c, err)
		return
	}
	if in.DisplayName == "" {
		abort(c, fmt.Errorf("experiment display_name is empty: %w", ErrInvalid))
		return
	}
	if err := checkLength("experiment display_name", in.DisplayName, maxExperimentName); err != nil {
		abort(c, err)
		return
	}
	if err := checkLength("namespace", in.Namespace, maxNamespace); err != nil {
		abort(c, err)
		return
	}
	e := &meta.Experiment{
		ID: uuid.NewString(), DisplayName: in.DisplayName, Description: in.Description,
		Namespace: in.Namespace, StorageState: meta.StorageAvailable, CreatedAt: time.Now().UTC(),
	}
	if err := s.d.Meta.CreateExperiment(c, e); err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, toWireExperiment(e))
}

func (s *Server) getExperiment(c *gin.Context) {
	e, err := s.d.Meta.GetExperiment(c, c.Param("id"))
	if err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, toWireExperiment(e))
}

func (s *Server) listExperiments(c *gin.Context) {
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
		Experiments   []wireExperiment `json:"experiments,omitempty"`
		TotalSize     int              `json:"total_size,omitempty"`
		NextPageToken string           `json:"next_page_token,omitempty"`
	}{TotalSize: p.TotalSize, NextPageToken: p.NextPageToken}
	for _, e := range p.Items {
		out.Experiments = append(out.Experiments, toWireExperiment(e))
	}
	writeJSON(c, out)
}

func (s *Server) deleteExperiment(c *gin.Context) {
	if err := s.d.Meta.DeleteExperiment(c, c.Param("id")); err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, empty)
}

// experimentAction serves POST /experiments/{id}:archive and :unarchive.
func (s *Server) experimentAction(c *gin.Context, id, action string) {
	var err error
	switch action {
	case "archive":
		err = s.d.Meta.ArchiveExperiment(c, id)
	case "unarchive":
		err = s.d.Meta.UnarchiveExperiment(c, id)
	default:
		err = fmt.Errorf("unknown experiment action %q: %w", action, ErrNotFound)
	}
	if err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, empty)
}
