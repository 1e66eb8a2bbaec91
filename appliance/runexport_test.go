package appliance_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/client"
	"github.com/kfp-box/kfp-box/appliance/runarchive"
)

// download returns an artifact's bytes as the box serves them.
func download(t *testing.T, c *client.Client, id string) []byte {
	t.Helper()
	resp, err := c.Stream(context.Background(), "/artifacts/"+url.PathEscape(id)+"/download")
	if err != nil {
		t.Fatalf("download %s: %v", id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// taskLog returns a task's log, with the runtime's timestamps.
func taskLog(t *testing.T, c *client.Client, runID, taskID string) string {
	t.Helper()
	resp, err := c.Stream(context.Background(), "/runs/"+runID+"/tasks/"+taskID+"/logs?timestamps=true")
	if err != nil {
		t.Fatalf("log of %s: %v", taskID, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

type fullTask struct {
	TaskID           string         `json:"task_id"`
	DisplayName      string         `json:"display_name"`
	State            string         `json:"state"`
	Kind             string         `json:"kind"`
	OutputParameters map[string]any `json:"output_parameters"`
	InputParameters  map[string]any `json:"input_parameters"`
	Outputs          map[string]struct {
		ArtifactIDs []string `json:"artifact_ids"`
	} `json:"outputs"`
	Inputs map[string]struct {
		ArtifactIDs []string `json:"artifact_ids"`
	} `json:"inputs"`
}

func tasksOf(t *testing.T, r *client.Run) map[string]fullTask {
	t.Helper()
	var d struct {
		TaskDetails []fullTask `json:"task_details"`
	}
	if err := json.Unmarshal(r.RunDetails, &d); err != nil {
		t.Fatal(err)
	}
	out := map[string]fullTask{}
	for _, td := range d.TaskDetails {
		out[td.DisplayName] = td
	}
	return out
}

func waitRun(t *testing.T, c *client.Client, id string) *client.Run {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		r, err := c.GetRun(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		switch r.State {
		case "SUCCEEDED", "FAILED", "CANCELED", "SKIPPED":
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s", id, r.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRunExportImportRoundTrip runs a pipeline with a file artifact, a folder artifact,
// metrics, output parameters and logs on one box, exports it, imports it on another box
// (a finished run marked as imported, its artifacts downloading byte for byte, its logs and
// parameters the same), and runs it again there with --from-export.
func TestRunExportImportRoundTrip(t *testing.T) {
	ctx := context.Background()
	a, ca, urlA := hostBox(t)
	b, cb, urlB := hostBox(t)
	tokA, tokB := a.a.AdminTokenPath(), b.a.AdminTokenPath()
	dir := t.TempDir()

	out, code := kfpbox(t, "run", "submit", filepath.Join(testdata, "export_me.yaml"), "-p", "tag=blue", "--experiment", "exports", "--watch", "--interval", "50ms", "--server", urlA, "--token-file", tokA)
	if code != 0 {
		t.Fatalf("submit: exit %d\n%s", code, out)
	}
	srcID := strings.Fields(out)[1]
	src := waitRun(t, ca, srcID)
	srcTasks := tasksOf(t, src)
	if srcTasks["train"].OutputParameters["accuracy"] != 0.91 || srcTasks["evaluate"].OutputParameters["verdict"] != "ok 265" {
		t.Fatalf("source run outputs: %+v", srcTasks)
	}

	// An unfinished run cannot be exported; an unknown one is exit 2.
	if out, code := kfpbox(t, "run", "export", "no-such-run", "-o", filepath.Join(dir, "x.tgz"), "--server", urlA, "--token-file", tokA); code != 2 {
		t.Fatalf("export of an unknown run: exit %d\n%s", code, out)
	}

	archive := filepath.Join(dir, "run.tar.gz")
	out, code = kfpbox(t, "run", "export", srcID, "-o", archive, "--server", urlA, "--token-file", tokA)
	t.Log(out)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s", code, out)
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	m, err := runarchive.ReadManifest(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if m.Origin.RunID != srcID || len(m.Logs) != 2 || len(m.Artifacts) != 3 {
		t.Fatalf("manifest: origin %+v, %d logs, %d artifacts", m.Origin, len(m.Logs), len(m.Artifacts))
	}

	out, code = kfpbox(t, "run", "import", archive, "--server", urlB, "--token-file", tokB)
	t.Log(out)
	if code != 0 {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	// Importing the same archive again is refused (the run exists); --new-id makes a copy.
	if out, code := kfpbox(t, "run", "import", archive, "--server", urlB, "--token-file", tokB); code != 2 || !strings.Contains(out, "new_id") {
		t.Fatalf("second import: exit %d\n%s", code, out)
	}

	imp, err := cb.GetRun(ctx, srcID)
	if err != nil {
		t.Fatal(err)
	}
	if imp.State != "SUCCEEDED" || imp.ImportedFrom == nil || imp.ImportedFrom.RunID != srcID || imp.ImportedFrom.Server != urlA {
		t.Fatalf("imported run: state %s, imported_from %+v", imp.State, imp.ImportedFrom)
	}
	if imp.DisplayName != src.DisplayName || imp.RuntimeConfig.Parameters["tag"] != "blue" || !sameJSON(t, imp.RuntimeConfig.Parameters, src.RuntimeConfig.Parameters) {
		t.Fatalf("imported run: %s %+v", imp.DisplayName, imp.RuntimeConfig)
	}
	if d1, _ := client.SpecDigest(imp.PipelineSpec); d1 == "" {
		t.Fatal("the imported run has no pipeline spec")
	}
	// It is listed like any other run, in an experiment of the same name.
	exps, _ := cb.ListExperiments(ctx, `{"predicates":[{"operation":"EQUALS","key":"display_name","string_value":"exports"}]}`)
	if len(exps) != 1 || imp.ExperimentID != exps[0].ExperimentID {
		t.Fatalf("experiment: %+v, run's %s", exps, imp.ExperimentID)
	}
	impTasks := tasksOf(t, imp)
	for _, name := range []string{"train", "evaluate"} {
		st, it := srcTasks[name], impTasks[name]
		if it.State != st.State || !sameJSON(t, it.OutputParameters, st.OutputParameters) || !sameJSON(t, it.InputParameters, st.InputParameters) {
			t.Errorf("task %s: imported %+v, source %+v", name, it, st)
		}
		if got, want := taskLog(t, cb, srcID, it.TaskID), taskLog(t, ca, srcID, st.TaskID); got != want || !strings.Contains(got, "stdout") && name == "train" {
			t.Errorf("task %s log: imported %q, source %q", name, got, want)
		}
	}
	if !strings.Contains(taskLog(t, cb, srcID, impTasks["train"].TaskID), "training blue for 2 epochs") {
		t.Errorf("the imported train log lacks its line")
	}
	// Inputs point at the imported model artifact.
	if ids := impTasks["evaluate"].Inputs["model"].ArtifactIDs; len(ids) != 1 || ids[0] != impTasks["train"].Outputs["model"].ArtifactIDs[0] {
		t.Errorf("evaluate's input model %v, train's output %v", ids, impTasks["train"].Outputs["model"].ArtifactIDs)
	}

	// Artifacts: the same names, URIs, metadata, and bytes (a folder comes as the same files).
	srcArts, _ := ca.RunArtifacts(ctx, srcID)
	impArts, _ := cb.RunArtifacts(ctx, srcID)
	byName := func(as []client.Artifact) map[string]client.Artifact {
		out := map[string]client.Artifact{}
		for _, a := range as {
			out[a.Name] = a
		}
		return out
	}
	sa, ia := byName(srcArts), byName(impArts)
	if len(ia) != 3 {
		t.Fatalf("imported artifacts: %+v", impArts)
	}
	for name, s := range sa {
		i := ia[name]
		if i.URI != s.URI || !sameJSON(t, i.Metadata, s.Metadata) || i.IsFolder != s.IsFolder {
			t.Errorf("artifact %s: imported %+v, source %+v", name, i, s)
		}
		if s.SizeBytes == nil {
			continue
		}
		if s.IsFolder {
			if got, want := folderFiles(t, download(t, cb, i.ArtifactID)), folderFiles(t, download(t, ca, s.ArtifactID)); !sameJSON(t, got, want) || len(got) != 2 {
				t.Errorf("folder %s: imported %v, source %v", name, got, want)
			}
			continue
		}
		got, want := download(t, cb, i.ArtifactID), download(t, ca, s.ArtifactID)
		if string(got) != string(want) || len(got) != 265 {
			t.Errorf("artifact %s: %d bytes imported, %d at the source, equal %v", name, len(got), len(want), string(got) == string(want))
		}
	}
	if md := ia["metrics"].Metadata; md["accuracy"] != 0.91 {
		t.Errorf("metrics: %+v", md)
	}
	// An imported run keeps its results: retry is refused.
	if err := cb.Do(ctx, "POST", "/runs/"+srcID+":retry", nil, nil); !client.IsStatus(err, 400) {
		t.Errorf("retry of an imported run: %v", err)
	}

	// Run it again from the archive on the second box.
	out, code = kfpbox(t, "run", "submit", "--from-export", archive, "--watch", "--interval", "50ms", "--server", urlB, "--token-file", tokB)
	t.Log(out)
	if code != 0 {
		t.Fatalf("submit --from-export: exit %d\n%s", code, out)
	}
	rerun := waitRun(t, cb, strings.Fields(out)[1])
	rt := tasksOf(t, rerun)
	if rerun.ImportedFrom != nil || rerun.RuntimeConfig.Parameters["tag"] != "blue" || rt["train"].OutputParameters["accuracy"] != 0.91 || rerun.ExperimentID != imp.ExperimentID {
		t.Fatalf("re-run: %+v %+v", rerun.RuntimeConfig, rt)
	}
	rdSrc, _ := client.SpecDigest(src.PipelineSpec)
	rdNew, _ := client.SpecDigest(rerun.PipelineSpec)
	if rdSrc != rdNew {
		t.Fatalf("re-run spec digest %s, source %s", rdNew, rdSrc)
	}
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// folderFiles lists a folder download's (tar) members with their contents.
func folderFiles(t *testing.T, tarball []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tarReader(tarball)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = string(b)
	}
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return out
}

func tarReader(b []byte) *tar.Reader { return tar.NewReader(bytes.NewReader(b)) }
