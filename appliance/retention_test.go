package appliance_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance"
)

// artifactFile is the local file behind a run's only output artifact named name.
func (b *box) artifactFile(t *testing.T, runID, name string) string {
	t.Helper()
	var arts struct {
		Artifacts []struct {
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"artifacts"`
	}
	b.do("GET", "/runs/"+runID+"/artifacts", nil, "", &arts)
	for _, a := range arts.Artifacts {
		if a.Name == name {
			return filepath.Join(b.data, "objects", strings.TrimPrefix(a.URI, "minio://"))
		}
	}
	t.Fatalf("run %s has no artifact %q: %+v", runID, name, arts)
	return ""
}

func waitGone(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists 30 s after its run was deleted", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRetention deletes runs and checks that their artifacts go, except those a cache hit
// of another run still uses, and that gc --dry-run reports without deleting.
func TestRetention(t *testing.T) {
	b := startBox(t, func(c *appliance.Config) { c.Runtime = "host" })
	pid := b.upload(filepath.Join(testdata, "cached_report.yaml"), "cached-report")
	first := b.runPipeline(pid, map[string]any{})
	second := b.runPipeline(pid, map[string]any{})
	if first.State != "SUCCEEDED" || second.State != "SUCCEEDED" {
		t.Fatalf("runs ended %s and %s", first.State, second.State)
	}
	file := b.artifactFile(t, first.RunID, "report")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the first run's artifact: %v", err)
	}

	// The second run is a cache hit on the first: deleting the first keeps the file.
	if code := b.do("DELETE", "/runs/"+first.RunID, nil, "", nil); code != http.StatusOK {
		t.Fatalf("delete: HTTP %d", code)
	}
	var rep struct {
		DryRun bool `json:"dry_run"`
		Items  []struct {
			URI  string `json:"uri"`
			Kept int    `json:"kept"`
		} `json:"items"`
		Objects int `json:"objects"`
	}
	if second.task(t, "report").CacheSource == nil {
		t.Fatalf("the second run was not a cache hit: %+v", second.RunDetails.TaskDetails)
	}
	b.do("POST", "/gc", nil, "", &rep)
	if rep.DryRun {
		t.Fatalf("gc report: %+v", rep)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("an artifact a cache hit still uses was deleted: %v", err)
	}

	// Once no run uses it, deleting the last user removes it.
	if code := b.do("DELETE", "/runs/"+second.RunID, nil, "", nil); code != http.StatusOK {
		t.Fatalf("delete: HTTP %d", code)
	}
	waitGone(t, file)

	// A run without cache users: its files go as soon as it is deleted.
	pid = b.upload(filepath.Join(testdata, "limits.yaml"), "limits-probe")
	r := b.runPipeline(pid, map[string]any{})
	report := b.artifactFile(t, r.RunID, "report")
	b.do("POST", "/gc?dry_run=true", nil, "", &rep)
	if !rep.DryRun {
		t.Fatalf("dry run report: %+v", rep)
	}
	for _, it := range rep.Items {
		if strings.Contains(it.URI, r.RunID) {
			t.Fatalf("gc would delete the files of a run that exists: %+v", it)
		}
	}
	if code := b.do("DELETE", "/runs/"+r.RunID, nil, "", nil); code != http.StatusOK {
		t.Fatalf("delete: HTTP %d", code)
	}
	waitGone(t, report)
}
