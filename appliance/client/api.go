package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// pageSize is the page size list calls ask for (KFP's maximum).
const pageSize = 200

// listAll fetches every page of a list route. key is the list's field in the answer.
func listAll[T any](ctx context.Context, c *Client, path string, q url.Values, key string) ([]T, error) {
	var out []T
	tok := ""
	for {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		qq.Set("page_size", strconv.Itoa(pageSize))
		if tok != "" {
			qq.Set("page_token", tok)
		}
		var page map[string]jsonRaw
		if err := c.Do(ctx, http.MethodGet, path+"?"+qq.Encode(), nil, &page); err != nil {
			return nil, err
		}
		var items []T
		if raw, ok := page[key]; ok {
			if err := raw.decode(&items); err != nil {
				return nil, err
			}
		}
		out = append(out, items...)
		tok = ""
		if raw, ok := page["next_page_token"]; ok {
			_ = raw.decode(&tok)
		}
		if tok == "" || len(items) == 0 {
			return out, nil
		}
	}
}

// scoped adds the client's namespace to list queries, as the SDK's list calls do.
func (c *Client) scoped(q url.Values) url.Values {
	if q == nil {
		q = url.Values{}
	}
	if c.namespace != "" {
		q.Set("namespace", c.namespace)
	}
	return q
}

// Healthz returns the server's healthz answer.
func (c *Client) Healthz(ctx context.Context) (map[string]any, error) {
	var h map[string]any
	err := c.Do(ctx, http.MethodGet, "/healthz", nil, &h)
	return h, err
}

// ListPipelines lists every pipeline (of the namespace), filtered by a KFP filter JSON.
func (c *Client) ListPipelines(ctx context.Context, filter string) ([]Pipeline, error) {
	q := c.scoped(url.Values{"sort_by": {"created_at"}})
	if filter != "" {
		q.Set("filter", filter)
	}
	return listAll[Pipeline](ctx, c, "/pipelines", q, "pipelines")
}

// ListPipelineVersions lists every version of a pipeline, oldest first.
func (c *Client) ListPipelineVersions(ctx context.Context, pipelineID string) ([]PipelineVersion, error) {
	return listAll[PipelineVersion](ctx, c, "/pipelines/"+url.PathEscape(pipelineID)+"/versions", url.Values{"sort_by": {"created_at"}}, "pipeline_versions")
}

// GetPipelineVersion returns one version with its spec.
func (c *Client) GetPipelineVersion(ctx context.Context, pipelineID, versionID string) (*PipelineVersion, error) {
	var v PipelineVersion
	err := c.Do(ctx, http.MethodGet, "/pipelines/"+url.PathEscape(pipelineID)+"/versions/"+url.PathEscape(versionID), nil, &v)
	return &v, err
}

// UploadPipeline creates a pipeline and its first version from a package, as the SDK's
// upload_pipeline does (name, description and namespace as query parameters).
func (c *Client) UploadPipeline(ctx context.Context, name, displayName, description string, pkg []byte) (*Pipeline, error) {
	q := url.Values{"name": {name}}
	if displayName != "" && displayName != name {
		q.Set("display_name", displayName)
	}
	if description != "" {
		q.Set("description", description)
	}
	if c.namespace != "" {
		q.Set("namespace", c.namespace)
	}
	var p Pipeline
	err := c.Upload(ctx, "/pipelines/upload", q, "pipeline.yaml", pkg, &p)
	return &p, err
}

// UploadPipelineVersion adds a version to a pipeline from a package, as the SDK's
// upload_pipeline_version does.
func (c *Client) UploadPipelineVersion(ctx context.Context, pipelineID, name, displayName, description string, pkg []byte) (*PipelineVersion, error) {
	q := url.Values{"name": {name}, "pipelineid": {pipelineID}}
	if displayName != "" && displayName != name {
		q.Set("display_name", displayName)
	}
	if description != "" {
		q.Set("description", description)
	}
	var v PipelineVersion
	err := c.Upload(ctx, "/pipelines/upload_version", q, "pipeline.yaml", pkg, &v)
	return &v, err
}

// ListExperiments lists every experiment (of the namespace), filtered by a KFP filter JSON.
func (c *Client) ListExperiments(ctx context.Context, filter string) ([]Experiment, error) {
	q := c.scoped(url.Values{"sort_by": {"created_at"}})
	if filter != "" {
		q.Set("filter", filter)
	}
	return listAll[Experiment](ctx, c, "/experiments", q, "experiments")
}

// GetExperiment returns one experiment.
func (c *Client) GetExperiment(ctx context.Context, id string) (*Experiment, error) {
	var e Experiment
	err := c.Do(ctx, http.MethodGet, "/experiments/"+url.PathEscape(id), nil, &e)
	return &e, err
}

// CreateExperiment creates an experiment in the client's namespace.
func (c *Client) CreateExperiment(ctx context.Context, name, description string) (*Experiment, error) {
	body := Experiment{DisplayName: name, Description: description, Namespace: c.namespace}
	var e Experiment
	err := c.Do(ctx, http.MethodPost, "/experiments", body, &e)
	return &e, err
}

// ListRecurringRuns lists every recurring run (of the namespace, or of an experiment).
func (c *Client) ListRecurringRuns(ctx context.Context, experimentID string) ([]RecurringRun, error) {
	q := url.Values{"sort_by": {"created_at"}}
	if experimentID != "" {
		q.Set("experiment_id", experimentID)
	} else {
		q = c.scoped(q)
	}
	// KFP's list answer names this one field in camelCase.
	return listAll[RecurringRun](ctx, c, "/recurringruns", q, "recurringRuns")
}

// CreateRecurringRun creates a recurring run.
func (c *Client) CreateRecurringRun(ctx context.Context, rr *RecurringRun) (*RecurringRun, error) {
	var out RecurringRun
	err := c.Do(ctx, http.MethodPost, "/recurringruns", rr, &out)
	return &out, err
}

// GetRun returns a run.
func (c *Client) GetRun(ctx context.Context, id string) (*Run, error) {
	var r Run
	err := c.Do(ctx, http.MethodGet, "/runs/"+url.PathEscape(id), nil, &r)
	return &r, err
}

// CreateRun creates a run.
func (c *Client) CreateRun(ctx context.Context, r *Run) (*Run, error) {
	var out Run
	err := c.Do(ctx, http.MethodPost, "/runs", r, &out)
	return &out, err
}

// RunArtifacts lists a run's artifacts (a kfp-box route).
func (c *Client) RunArtifacts(ctx context.Context, runID string) ([]Artifact, error) {
	var out struct {
		Artifacts []Artifact `json:"artifacts"`
	}
	err := c.Do(ctx, http.MethodGet, "/runs/"+url.PathEscape(runID)+"/artifacts", nil, &out)
	return out.Artifacts, err
}
