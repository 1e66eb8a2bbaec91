// Package runarchive is the format of a run export: one gzip-compressed tar archive that
// holds everything needed to show a finished run on another box or to run it again. The
// first member is manifest.json (the run as the API returned it, with its task details,
// its pipeline spec, its experiment, its artifacts' records and its origin); then each
// artifact's bytes at artifacts/<artifact id> (a folder artifact as artifacts/<id>/<path>),
// then each task's log at logs/<task id>.log, as the log route returns it with timestamps.
//
// The manifest uses the API's shapes (snake_case, as GET /runs/{id} and the artifact routes
// answer), not the box's storage records, so that an archive outlives a box version.
package runarchive

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"
)

// Format names this layout; importers refuse others.
const Format = "kfp-box/run-export/v1"

// ManifestName is the archive's first member.
const ManifestName = "manifest.json"

// MaxManifestBytes bounds the manifest.
const MaxManifestBytes = 64 << 20

// Manifest is manifest.json.
type Manifest struct {
	Format     string    `json:"format"`
	ExportedAt time.Time `json:"exported_at"`
	Origin     Origin    `json:"origin"`
	// Run is the run as GET /apis/v2beta1/runs/{id} returned it (run_details included).
	Run json.RawMessage `json:"run"`
	// PipelineSpec is the spec the run executed (inline, or its pipeline version's).
	PipelineSpec json.RawMessage `json:"pipeline_spec"`
	Experiment   *Experiment     `json:"experiment,omitempty"`
	Artifacts    []Artifact      `json:"artifacts,omitempty"`
	Logs         []Log           `json:"logs,omitempty"`
}

// Origin is where the run was exported from.
type Origin struct {
	Server  string `json:"server"`
	RunID   string `json:"run_id"`
	Version string `json:"version,omitempty"`
}

// Experiment is the run's experiment on the origin.
type Experiment struct {
	DisplayName string `json:"display_name"`
	Description string `json:"description,omitempty"`
}

// Artifact is one artifact record; File is its member ("" when its bytes are not in the
// archive: metadata-only artifacts such as metrics, or URIs the origin did not store).
type Artifact struct {
	ArtifactID  string         `json:"artifact_id"`
	Name        string         `json:"name"`
	SchemaTitle string         `json:"schema_title,omitempty"`
	URI         string         `json:"uri"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	TaskName    string         `json:"task_name,omitempty"`
	CreatedAt   string         `json:"created_at,omitempty"`
	Folder      bool           `json:"folder,omitempty"`
	Size        int64          `json:"size,omitempty"`
	File        string         `json:"file,omitempty"`
}

// Log is one task's log.
type Log struct {
	TaskID string `json:"task_id"`
	File   string `json:"file"`
}

// ArtifactMember is where an artifact's bytes are.
func ArtifactMember(id string) string { return "artifacts/" + id }

// LogMember is where a task's log is.
func LogMember(taskID string) string { return "logs/" + taskID + ".log" }

// Validate checks what an importer relies on: the format, a run, a spec, and member names
// that stay inside their folders.
func (m *Manifest) Validate() error {
	if m.Format != Format {
		return fmt.Errorf("format %q is not %q", m.Format, Format)
	}
	if len(m.Run) == 0 || len(m.PipelineSpec) == 0 {
		return fmt.Errorf("the manifest has no run or no pipeline spec")
	}
	seen := map[string]bool{}
	for _, a := range m.Artifacts {
		if !SafeID(a.ArtifactID) || seen[a.ArtifactID] {
			return fmt.Errorf("artifact id %q is empty, repeated or not a plain name", a.ArtifactID)
		}
		seen[a.ArtifactID] = true
		if a.File != "" && a.File != ArtifactMember(a.ArtifactID) {
			return fmt.Errorf("artifact %s: file %q is not %q", a.ArtifactID, a.File, ArtifactMember(a.ArtifactID))
		}
	}
	for _, l := range m.Logs {
		if !SafeID(l.TaskID) || l.File != LogMember(l.TaskID) {
			return fmt.Errorf("log of task %q: file %q is not %q", l.TaskID, l.File, LogMember(l.TaskID))
		}
	}
	return nil
}

// SafeID reports whether id can be one path element.
func SafeID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\\\x00") && len(id) <= 200
}

// SplitArtifactMember splits artifacts/<id>[/<rel>]; ok is false for any other name or a
// rel that is not a clean relative path.
func SplitArtifactMember(name string) (id, rel string, ok bool) {
	rest, found := strings.CutPrefix(name, "artifacts/")
	if !found {
		return "", "", false
	}
	id, rel, _ = strings.Cut(rest, "/")
	if !SafeID(id) {
		return "", "", false
	}
	if rel != "" && (path.Clean(rel) != rel || strings.HasPrefix(rel, "/") || rel == ".." || strings.HasPrefix(rel, "../") || strings.Contains(rel, "\x00")) {
		return "", "", false
	}
	return id, rel, true
}
