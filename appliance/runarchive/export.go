package runarchive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/kfp-box/kfp-box/appliance/client"
)

// ErrNotFinished is an export of a run that has not finished.
var ErrNotFinished = errors.New("the run has not finished")

// Export writes the archive of a finished run of the box c reaches to w. version is the
// exporting program's version, recorded in the origin.
func Export(ctx context.Context, c *client.Client, runID, version string, w io.Writer) (*Manifest, error) {
	var rawRun json.RawMessage
	if err := c.Do(ctx, "GET", "/runs/"+url.PathEscape(runID), nil, &rawRun); err != nil {
		return nil, err
	}
	var run client.Run
	if err := json.Unmarshal(rawRun, &run); err != nil {
		return nil, err
	}
	switch run.State {
	case "SUCCEEDED", "FAILED", "SKIPPED", "CANCELED":
	default:
		return nil, fmt.Errorf("run %s is %s: %w", runID, run.State, ErrNotFinished)
	}
	m := &Manifest{Format: Format, ExportedAt: time.Now().UTC(), Run: rawRun,
		Origin: Origin{Server: c.Base(), RunID: run.RunID, Version: version}}
	m.PipelineSpec = run.PipelineSpec
	if len(m.PipelineSpec) == 0 || string(m.PipelineSpec) == "null" {
		ref := run.PipelineVersionReference
		if ref == nil || ref.PipelineVersionID == "" {
			return nil, fmt.Errorf("run %s has neither an inline spec nor a pipeline version", runID)
		}
		v, err := c.GetPipelineVersion(ctx, ref.PipelineID, ref.PipelineVersionID)
		if err != nil {
			return nil, fmt.Errorf("the run's pipeline version: %w", err)
		}
		m.PipelineSpec = v.PipelineSpec
	}
	if run.ExperimentID != "" {
		if e, err := c.GetExperiment(ctx, run.ExperimentID); err == nil {
			m.Experiment = &Experiment{DisplayName: e.DisplayName, Description: e.Description}
		}
	}
	arts, err := c.RunArtifacts(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("the run's artifacts: %w", err)
	}
	for _, a := range arts {
		ma := Artifact{ArtifactID: a.ArtifactID, Name: a.Name, SchemaTitle: a.SchemaTitle, URI: a.URI,
			Metadata: a.Metadata, TaskName: a.TaskName, CreatedAt: a.CreatedAt, Folder: a.IsFolder}
		if ma.SchemaTitle == "" {
			ma.SchemaTitle = a.Type
		}
		if a.SizeBytes != nil {
			// Stored bytes (metadata-only artifacts such as metrics have none).
			ma.File, ma.Size = ArtifactMember(a.ArtifactID), *a.SizeBytes
		}
		m.Artifacts = append(m.Artifacts, ma)
	}
	// Logs are read before the manifest is written, so that it lists exactly what follows.
	logs := map[string][]byte{}
	for _, t := range client.RunDetailsOf(&run) {
		if t.PodName == "" && t.Kind != "CONTAINER" {
			continue
		}
		b, err := fetchLog(ctx, c, runID, t.TaskID)
		if err != nil {
			if client.IsStatus(err, 404) {
				continue
			}
			return nil, fmt.Errorf("the log of task %s: %w", t.DisplayName, err)
		}
		logs[t.TaskID] = b
		m.Logs = append(m.Logs, Log{TaskID: t.TaskID, File: LogMember(t.TaskID)})
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeMember(tw, ManifestName, mb, m.ExportedAt); err != nil {
		return nil, err
	}
	for _, a := range m.Artifacts {
		if a.File == "" {
			continue
		}
		if err := copyArtifact(ctx, c, tw, a, m.ExportedAt); err != nil {
			return nil, fmt.Errorf("artifact %s (%s): %w", a.Name, a.ArtifactID, err)
		}
	}
	for _, l := range m.Logs {
		if err := writeMember(tw, l.File, logs[l.TaskID], m.ExportedAt); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return m, zw.Close()
}

func fetchLog(ctx context.Context, c *client.Client, runID, taskID string) ([]byte, error) {
	resp, err := c.Stream(ctx, "/runs/"+url.PathEscape(runID)+"/tasks/"+url.PathEscape(taskID)+"/logs?timestamps=true")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func writeMember(tw *tar.Writer, name string, data []byte, at time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o600, ModTime: at, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// copyArtifact streams an artifact's download into the archive: a file as one member, a
// folder (downloaded as a tar stream) as one member per file.
func copyArtifact(ctx context.Context, c *client.Client, tw *tar.Writer, a Artifact, at time.Time) error {
	resp, err := c.Stream(ctx, "/artifacts/"+url.PathEscape(a.ArtifactID)+"/download")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if !a.Folder {
		size := resp.ContentLength
		if size < 0 {
			size = a.Size
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: a.File, Size: size, Mode: 0o600, ModTime: at, Format: tar.FormatPAX}); err != nil {
			return err
		}
		n, err := io.Copy(tw, resp.Body)
		if err == nil && n != size {
			err = fmt.Errorf("downloaded %d bytes, expected %d", n, size)
		}
		return err
	}
	tr := tar.NewReader(resp.Body)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := a.File + "/" + h.Name
		if _, _, ok := SplitArtifactMember(name); !ok {
			return fmt.Errorf("the folder holds an unsafe name %q", h.Name)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: h.Size, Mode: 0o600, ModTime: h.ModTime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// ReadManifest reads and validates the manifest at the start of an archive.
func ReadManifest(r io.Reader) (*Manifest, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a run archive (gzip): %w", err)
	}
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil || h.Name != ManifestName {
		return nil, fmt.Errorf("not a run archive: the first member is not %s", ManifestName)
	}
	if h.Size > MaxManifestBytes {
		return nil, fmt.Errorf("%s is larger than %s bytes", ManifestName, strconv.Itoa(MaxManifestBytes))
	}
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(tr, MaxManifestBytes)).Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}
