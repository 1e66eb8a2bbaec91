package api

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/kfp-box/kfp-box/appliance/runarchive"
	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/meta"
	"github.com/kfp-box/kfp-box/storage/objects"
)

// ImportPath is the box's route that recreates a finished run from an export archive
// (kfp-box run export): POST multipart, the archive as the field "uploadfile";
// ?experiment=NAME_OR_ID (default: the origin experiment's name, created when missing) and
// ?new_id=true (give the run a new id instead of keeping the origin's).
const ImportPath = "/apis/v2beta1/runs:import"

// importReadTimeout bounds how long a client may take to send an archive.
const importReadTimeout = time.Hour

// wireOrigin is the imported_from mark on a run (a kfp-box extension).
type wireOrigin struct {
	Server     string `json:"server,omitempty"`
	RunID      string `json:"run_id,omitempty"`
	ExportedAt *ts    `json:"exported_at,omitempty"`
	ImportedAt *ts    `json:"imported_at,omitempty"`
	Version    string `json:"version,omitempty"`
}

func toWireOrigin(o *meta.RunOrigin) *wireOrigin {
	if o == nil {
		return nil
	}
	return &wireOrigin{Server: o.Server, RunID: o.RunID, ExportedAt: tsOpt(o.ExportedAt), ImportedAt: tsOpt(o.ImportedAt), Version: o.Version}
}

// importTask is the part of a task detail an import reads.
type importTask struct {
	TaskID       string                      `json:"task_id"`
	DisplayName  string                      `json:"display_name"`
	CreateTime   string                      `json:"create_time"`
	StartTime    string                      `json:"start_time"`
	EndTime      string                      `json:"end_time"`
	State        string                      `json:"state"`
	Error        *wireStatus                 `json:"error"`
	Inputs       map[string]wireArtifactList `json:"inputs"`
	Outputs      map[string]wireArtifactList `json:"outputs"`
	ParentTaskID string                      `json:"parent_task_id"`
	StateHistory []struct {
		UpdateTime string      `json:"update_time"`
		State      string      `json:"state"`
		Error      *wireStatus `json:"error"`
	} `json:"state_history"`
	PodName          string           `json:"pod_name"`
	CacheSource      *wireCacheSource `json:"cache_source"`
	Attempt          int              `json:"attempt"`
	Kind             string           `json:"kind"`
	InputParameters  map[string]any   `json:"input_parameters"`
	OutputParameters map[string]any   `json:"output_parameters"`
}

// importRun is the part of the exported run an import reads.
type importRun struct {
	RunID         string             `json:"run_id"`
	DisplayName   string             `json:"display_name"`
	Description   string             `json:"description"`
	RuntimeConfig *wireRuntimeConfig `json:"runtime_config"`
	CreatedAt     string             `json:"created_at"`
	ScheduledAt   string             `json:"scheduled_at"`
	FinishedAt    string             `json:"finished_at"`
	State         string             `json:"state"`
	Error         *wireStatus        `json:"error"`
	StateHistory  []struct {
		UpdateTime string      `json:"update_time"`
		State      string      `json:"state"`
		Error      *wireStatus `json:"error"`
	} `json:"state_history"`
	ServiceAccount string `json:"service_account"`
	RunDetails     struct {
		TaskDetails []importTask `json:"task_details"`
	} `json:"run_details"`
}

// importer holds one import's state; written files are removed when it fails.
type importer struct {
	s        *Server
	m        runarchive.Manifest
	run      importRun
	pipeline *spec.Pipeline
	runID    string
	// artIDs and execIDs map the origin's ids to new ones; uris maps artifact ids to their
	// new URIs.
	artIDs, execIDs map[string]string
	uris            map[string]string
	arts            map[string]runarchive.Artifact
	logs            map[string]string // origin task id -> log file written
	written         []objects.URI
	files           []string
}

// importRun serves POST /runs:import.
func (s *Server) importRun(c *gin.Context) {
	if s.d.Objects == nil || s.d.LogDir == "" {
		abort(c, fmt.Errorf("this box cannot import runs (no object store or log directory): %w", ErrUnavailable))
		return
	}
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(importReadTimeout))
	part, ok := uploadPart(c, ImportPath, "archive")
	if !ok {
		return
	}
	ctx := c.Request.Context()
	im := &importer{s: s, artIDs: map[string]string{}, execIDs: map[string]string{}, uris: map[string]string{},
		arts: map[string]runarchive.Artifact{}, logs: map[string]string{}}
	r, err := im.read(ctx, part, c.Query("new_id") == "true", c.Query("experiment"))
	if err != nil {
		im.cleanup()
		if errors.Is(err, context.Canceled) {
			return
		}
		abort(c, err)
		return
	}
	s.d.Logger.Info("imported a run", "run", r.ID, "origin_server", r.ImportedFrom.Server, "origin_run", r.ImportedFrom.RunID)
	writeJSON(c, s.toWireRun(c, r, true))
}

func invalidArchive(format string, args ...any) error {
	return fmt.Errorf("run archive: "+format+": %w", append(args, ErrInvalid)...)
}

// read consumes the archive and stores the run.
func (im *importer) read(ctx context.Context, body io.Reader, newID bool, experiment string) (*meta.Run, error) {
	zr, err := gzip.NewReader(body)
	if err != nil {
		return nil, invalidArchive("not gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil || h.Name != runarchive.ManifestName {
		return nil, invalidArchive("the first member must be %s", runarchive.ManifestName)
	}
	if h.Size > runarchive.MaxManifestBytes {
		return nil, invalidArchive("%s is larger than %d bytes", runarchive.ManifestName, runarchive.MaxManifestBytes)
	}
	raw, err := io.ReadAll(io.LimitReader(tr, runarchive.MaxManifestBytes))
	if err != nil {
		return nil, invalidArchive("reading %s: %v", runarchive.ManifestName, err)
	}
	if err := json.Unmarshal(raw, &im.m); err != nil {
		return nil, invalidArchive("%s: %v", runarchive.ManifestName, err)
	}
	if err := im.m.Validate(); err != nil {
		return nil, invalidArchive("%v", err)
	}
	if err := json.Unmarshal(im.m.Run, &im.run); err != nil {
		return nil, invalidArchive("the run: %v", err)
	}
	if !meta.IsTerminalRunState(im.run.State) {
		return nil, invalidArchive("the run is %q; only finished runs can be imported", im.run.State)
	}
	p, err := spec.FromJSON(im.m.PipelineSpec)
	if err != nil {
		return nil, err
	}
	im.pipeline = p
	im.runID = im.run.RunID
	if newID || im.runID == "" {
		im.runID = uuid.NewString()
	}
	if _, err := im.s.d.Meta.GetRun(ctx, im.runID); err == nil {
		return nil, fmt.Errorf("run %q exists on this box (imported before?); import with new_id=true for a copy: %w", im.runID, ErrAlreadyExists)
	}
	if err := im.reserveIDs(ctx); err != nil {
		return nil, err
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, invalidArchive("%v", err)
		}
		if h.Typeflag != tar.TypeReg {
			if h.Typeflag == tar.TypeDir {
				continue
			}
			return nil, invalidArchive("member %q is not a regular file", h.Name)
		}
		if err := im.member(ctx, h, tr); err != nil {
			return nil, err
		}
	}
	return im.store(ctx, experiment)
}

// reserveIDs gives the run's executions and artifacts ids of this box.
func (im *importer) reserveIDs(ctx context.Context) error {
	tasks := im.run.RunDetails.TaskDetails
	if n := int64(len(tasks)); n > 0 {
		first, err := im.s.d.Meta.ReserveIDs(ctx, "execution", n)
		if err != nil {
			return err
		}
		for i, t := range tasks {
			if t.TaskID == "" {
				return invalidArchive("a task has no task_id")
			}
			im.execIDs[t.TaskID] = strconv.FormatInt(first+int64(i), 10)
		}
	}
	if n := int64(len(im.m.Artifacts)); n > 0 {
		first, err := im.s.d.Meta.ReserveIDs(ctx, "artifact", n)
		if err != nil {
			return err
		}
		for i, a := range im.m.Artifacts {
			id := strconv.FormatInt(first+int64(i), 10)
			im.artIDs[a.ArtifactID] = id
			im.arts[a.ArtifactID] = a
			im.uris[a.ArtifactID] = im.newURI(a, id)
		}
	}
	return nil
}

// newURI is where an artifact lives on this box: its origin URI when that is in the run's
// own root (with the run's new id, if it got one), else a folder of the imported run's root.
func (im *importer) newURI(a runarchive.Artifact, newArtID string) string {
	old := im.run.RunID
	if u, err := objects.ParseURI(a.URI); err == nil && u.Scheme != objects.SchemeGCS && old != "" && strings.Contains(a.URI, "/"+old+"/") {
		return strings.Replace(a.URI, "/"+old+"/", "/"+im.runID+"/", 1)
	}
	if a.File == "" {
		return a.URI // no bytes here: the record keeps pointing where it pointed
	}
	root := "minio://mlpipeline/v2/artifacts"
	if rc := im.run.RuntimeConfig; rc != nil && rc.PipelineRoot != "" {
		if u, err := objects.ParseURI(rc.PipelineRoot); err == nil && u.Scheme != objects.SchemeGCS {
			root = strings.TrimRight(rc.PipelineRoot, "/")
		}
	}
	name := a.Name
	if !runarchive.SafeID(name) {
		name = "artifact"
	}
	return root + "/" + im.pipeline.Name() + "/" + im.runID + "/imported/" + newArtID + "/" + name
}

// member stores one artifact file or log.
func (im *importer) member(ctx context.Context, h *tar.Header, r io.Reader) error {
	if id, rel, ok := runarchive.SplitArtifactMember(h.Name); ok {
		a, known := im.arts[id]
		if !known || a.File == "" || (rel != "") != a.Folder {
			return invalidArchive("member %q belongs to no artifact of the manifest", h.Name)
		}
		u, err := objects.ParseURI(im.uris[id])
		if err != nil || u.Scheme == objects.SchemeGCS {
			return invalidArchive("artifact %s: the box cannot store %q", id, im.uris[id])
		}
		key := strings.TrimSuffix(u.Key, "/")
		if rel != "" {
			key += "/" + rel
		}
		if err := im.s.d.Objects.Put(ctx, u.Bucket, key, r, h.Size); err != nil {
			return fmt.Errorf("storing artifact %s: %w", id, err)
		}
		im.written = append(im.written, objects.URI{Scheme: u.Scheme, Bucket: u.Bucket, Key: key})
		return nil
	}
	if task, ok := strings.CutPrefix(h.Name, "logs/"); ok && strings.HasSuffix(task, ".log") {
		task = strings.TrimSuffix(task, ".log")
		newID, known := im.execIDs[task]
		if !known || !runarchive.SafeID(task) {
			return invalidArchive("log %q belongs to no task of the run", h.Name)
		}
		dir := filepath.Join(im.s.d.LogDir, im.runID)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		p := filepath.Join(dir, "imported-"+newID+".log")
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		im.files = append(im.files, p)
		_, err = io.Copy(f, io.LimitReader(r, h.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing the log of task %s: %w", task, err)
		}
		im.logs[task] = p
		return nil
	}
	return invalidArchive("unexpected member %q", h.Name)
}

// cleanup removes what a failed import wrote.
func (im *importer) cleanup() {
	ctx := context.Background()
	for _, u := range im.written {
		_ = im.s.d.Objects.Delete(ctx, u.Bucket, u.Key)
	}
	for _, p := range im.files {
		_ = os.Remove(p)
	}
	if im.runID != "" && im.s.d.LogDir != "" {
		_ = os.Remove(filepath.Join(im.s.d.LogDir, im.runID)) // only when empty
	}
}

// store records the run, its executions and artifacts.
func (im *importer) store(ctx context.Context, experiment string) (*meta.Run, error) {
	for id, a := range im.arts {
		if a.File == "" {
			continue
		}
		if !im.wrote(im.uris[id]) {
			return nil, invalidArchive("artifact %s is listed with a file, but the archive does not hold it", id)
		}
	}
	expID, err := im.experiment(ctx, experiment)
	if err != nil {
		return nil, err
	}
	rn := im.run
	now := time.Now().UTC()
	r := &meta.Run{
		ID: im.runID, ExperimentID: expID, DisplayName: rn.DisplayName, Description: rn.Description,
		StorageState: meta.StorageAvailable, InlineSpec: true, ServiceAccount: rn.ServiceAccount,
		CreatedAt: wireTime(rn.CreatedAt, now), ScheduledAt: wireTime(rn.ScheduledAt, now), FinishedAt: wireTime(rn.FinishedAt, now),
		State: rn.State, Error: metaStatus(rn.Error), PipelineName: im.pipeline.Name(),
		ImportedFrom: &meta.RunOrigin{Server: im.m.Origin.Server, RunID: im.m.Origin.RunID, ExportedAt: im.m.ExportedAt, ImportedAt: now, Version: im.m.Origin.Version},
	}
	if rc := rn.RuntimeConfig; rc != nil {
		r.RuntimeConfig = meta.RuntimeConfig{Parameters: rc.Parameters, PipelineRoot: rc.PipelineRoot}
	}
	for _, ev := range rn.StateHistory {
		r.StateHistory = append(r.StateHistory, meta.StateEvent{UpdateTime: wireTime(ev.UpdateTime, now), State: ev.State, Error: metaStatus(ev.Error)})
	}
	var arts []*meta.Artifact
	for _, a := range im.m.Artifacts {
		arts = append(arts, &meta.Artifact{
			ID: im.artIDs[a.ArtifactID], RunID: im.runID, TaskName: a.TaskName, Name: a.Name,
			SchemaTitle: a.SchemaTitle, URI: im.uris[a.ArtifactID], Metadata: a.Metadata, CreatedAt: wireTime(a.CreatedAt, now),
		})
	}
	producer := map[string]string{} // new artifact id -> new execution id
	var execs []*meta.Execution
	for _, t := range rn.RunDetails.TaskDetails {
		x := im.execution(t, now)
		for _, refs := range x.Outputs.Artifacts {
			for _, ref := range refs {
				producer[ref.ID] = x.ID
			}
		}
		execs = append(execs, x)
	}
	for _, a := range arts {
		a.ExecutionID = producer[a.ID]
	}
	if err := im.s.d.Meta.ImportRun(ctx, r, im.pipeline.StoredJSON(), execs, arts); err != nil {
		return nil, err
	}
	return r, nil
}

func (im *importer) wrote(uri string) bool {
	u, err := objects.ParseURI(uri)
	if err != nil {
		return false
	}
	key := strings.TrimSuffix(u.Key, "/")
	for _, w := range im.written {
		if w.Bucket == u.Bucket && (w.Key == key || strings.HasPrefix(w.Key, key+"/")) {
			return true
		}
	}
	return false
}

var reIteration = regexp.MustCompile(`^(.*)\((\d+)\)$`)

// execution rebuilds an execution record from a task detail.
func (im *importer) execution(t importTask, now time.Time) *meta.Execution {
	x := &meta.Execution{
		ID: im.execIDs[t.TaskID], RunID: im.runID, ParentID: im.execIDs[t.ParentTaskID],
		TaskName: t.DisplayName, Kind: t.Kind, IterationIndex: -1, Attempt: t.Attempt,
		State: execState(t.State, t.CacheSource != nil), RuntimeTaskID: t.PodName,
		CreatedAt: wireTime(t.CreateTime, now), StartedAt: wireTime(t.StartTime, time.Time{}), FinishedAt: wireTime(t.EndTime, time.Time{}),
		LogPath: im.logs[t.TaskID],
		Inputs:  meta.IO{Parameters: t.InputParameters, Artifacts: im.refs(t.Inputs)},
		Outputs: meta.IO{Parameters: t.OutputParameters, Artifacts: im.refs(t.Outputs)},
	}
	if x.Kind == "" {
		x.Kind = meta.KindContainer
	}
	if m := reIteration.FindStringSubmatch(t.DisplayName); m != nil && x.Kind == meta.KindIteration {
		x.TaskName = m[1]
		x.IterationIndex, _ = strconv.Atoi(m[2])
	}
	x.TaskKey = x.TaskName
	if t.Error != nil {
		x.Error = t.Error.Message
	}
	if cs := t.CacheSource; cs != nil {
		x.CacheSource = &meta.CacheSource{RunID: cs.RunID, ExecutionID: cs.ExecutionID, TaskName: cs.TaskName, Fingerprint: cs.Fingerprint}
	}
	for _, ev := range t.StateHistory {
		x.StateHistory = append(x.StateHistory, meta.StateEvent{UpdateTime: wireTime(ev.UpdateTime, now), State: execState(ev.State, false), Error: metaStatus(ev.Error)})
	}
	if !meta.IsTerminalExecState(x.State) {
		x.State = meta.ExecCanceled
		if x.Error == "" {
			x.Error = "the task had not finished when its run was exported"
		}
	}
	return x
}

// refs maps a task's artifact ids to this box's records; ids the archive does not hold
// (artifacts of other runs) are left out.
func (im *importer) refs(m map[string]wireArtifactList) map[string][]meta.ArtifactRef {
	if len(m) == 0 {
		return nil
	}
	out := map[string][]meta.ArtifactRef{}
	for name, l := range m {
		for _, id := range l.ArtifactIDs {
			if nid, ok := im.artIDs[id]; ok {
				out[name] = append(out[name], meta.ArtifactRef{ID: nid, Name: im.arts[id].Name, URI: im.uris[id]})
			}
		}
	}
	return out
}

// execState maps a task detail's RuntimeState back to an execution state.
func execState(s string, cached bool) string {
	switch s {
	case meta.RunSucceeded:
		if cached {
			return meta.ExecCached
		}
		return meta.ExecSucceeded
	case meta.RunFailed:
		return meta.ExecFailed
	case meta.RunSkipped:
		return meta.ExecSkipped
	case meta.RunCanceled, meta.RunCanceling:
		return meta.ExecCanceled
	case meta.RunRunning:
		return meta.ExecRunning
	case meta.RunPending:
		return meta.ExecPending
	}
	return meta.ExecOmitted
}

func metaStatus(s *wireStatus) *meta.Status {
	if s == nil {
		return nil
	}
	return &meta.Status{Code: s.Code, Message: s.Message}
}

// wireTime reads an API timestamp; the Unix epoch (KFP's "unset") and bad values give def.
func wireTime(s string, def time.Time) time.Time {
	if s == "" {
		return def
	}
	t, err := parseTime(s)
	if err != nil || t.Unix() == 0 {
		return def
	}
	return t
}

// experiment resolves the experiment an import goes into: an id or name given, else the
// origin experiment's name; a name is created when missing.
func (im *importer) experiment(ctx context.Context, nameOrID string) (string, error) {
	m := im.s.d.Meta
	if nameOrID != "" {
		if e, err := m.GetExperiment(ctx, nameOrID); err == nil {
			return e.ID, nil
		}
	} else if im.m.Experiment != nil {
		nameOrID = im.m.Experiment.DisplayName
	}
	if nameOrID == "" {
		return m.DefaultExperimentID(ctx)
	}
	find := func() (string, bool) {
		f, _ := json.Marshal(map[string]any{"predicates": []any{map[string]any{"operation": "EQUALS", "key": "display_name", "string_value": nameOrID}}})
		page, err := m.ListExperiments(ctx, meta.ListOptions{Filter: string(f), PageSize: 1})
		if err != nil || len(page.Items) == 0 {
			return "", false
		}
		return page.Items[0].ID, true
	}
	if id, ok := find(); ok {
		return id, nil
	}
	e := &meta.Experiment{ID: uuid.NewString(), DisplayName: nameOrID, CreatedAt: time.Now().UTC()}
	if im.m.Experiment != nil && im.m.Experiment.DisplayName == nameOrID {
		e.Description = im.m.Experiment.Description
	}
	if err := m.CreateExperiment(ctx, e); err != nil {
		if id, ok := find(); ok {
			return id, nil
		}
		return "", err
	}
	return e.ID, nil
}

// uploadPart returns the "uploadfile" field of a multipart/form-data request to path (the
// SDK's and kfp-box's upload shape), or answers 400 naming what the field should hold.
func uploadPart(c *gin.Context, path, what string) (io.Reader, bool) {
	mr, err := c.Request.MultipartReader()
	if err != nil {
		abort(c, fmt.Errorf("POST %s takes multipart/form-data with the %s as \"uploadfile\": %v: %w", path, what, err, ErrInvalid))
		return nil, false
	}
	for {
		p, err := mr.NextPart()
		if err != nil {
			abort(c, fmt.Errorf("no multipart field \"uploadfile\" holding the %s: %w", what, ErrInvalid))
			return nil, false
		}
		if p.FormName() == "uploadfile" {
			return p, true
		}
	}
}
