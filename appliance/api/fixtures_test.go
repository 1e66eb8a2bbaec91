package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/internal/testmaterial"
)

// TestUploadEverySharedFixture uploads every valid KFP IR fixture and creates a run from each
// with no parameters: the upload must succeed, and the run must either be created or be
// refused only for a missing required parameter.
func TestUploadEverySharedFixture(t *testing.T) {
	dir := os.Getenv("KFPBOX_FIXTURES")
	if dir == "" {
		dir = "../../../shared/fixtures/kfp-ir"
	}
	files, _ := filepath.Glob(filepath.Join(dir, "valid", "*.yaml"))
	more, _ := filepath.Glob(filepath.Join(dir, "valid", "*", "*.yaml"))
	files = append(files, more...)
	if len(files) == 0 {
		testmaterial.Missing(t, "no KFP IR fixtures under %s (set KFPBOX_FIXTURES to their directory)", dir)
	}
	a := newTestAPI(t)
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		st, p := a.upload("/pipelines/upload?name="+strings.TrimSuffix(name, ".yaml")+string(rune('a'+i%26)), name, data)
		if st != 200 {
			t.Errorf("%s: upload = %d %v", f, st, p)
			continue
		}
		st, run := a.do("POST", "/runs", map[string]any{
			"display_name":               name,
			"pipeline_version_reference": map[string]any{"pipeline_id": p["pipeline_id"]},
		})
		if st != 200 {
			msg, _ := run["message"].(string)
			if st != 400 || !strings.Contains(msg, "required") {
				t.Errorf("%s: run = %d %v", f, st, run)
			}
		}
	}
}

// TestUploadRejectsEveryInvalidFixture: each invalid fixture is a 4xx with a message.
func TestUploadRejectsEveryInvalidFixture(t *testing.T) {
	dir := os.Getenv("KFPBOX_FIXTURES")
	if dir == "" {
		dir = "../../../shared/fixtures/kfp-ir"
	}
	files, _ := filepath.Glob(filepath.Join(dir, "invalid", "*"))
	if len(files) == 0 {
		testmaterial.Missing(t, "no KFP IR fixtures under %s (set KFPBOX_FIXTURES to their directory)", dir)
	}
	a := newTestAPI(t)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		st, body := a.upload("/pipelines/upload?name=x", filepath.Base(f), data)
		msg, _ := body["error_message"].(string)
		if st/100 != 4 || msg == "" {
			t.Errorf("%s: upload = %d %v, want a 4xx with a message", f, st, body)
		}
	}
}
