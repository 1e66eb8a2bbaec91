package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLintExitCodes: 0 without findings, 1 with findings (a table of them, or JSON), 2 for
// input that is not a pipeline or a bad target.
func TestLintExitCodes(t *testing.T) {
	dir := t.TempDir()
	rr := filepath.Join(dir, "rr.json")
	if err := os.WriteFile(rr, []byte(`{"display_name":"nightly","trigger":{"cron_schedule":{"cron":"0 0 9 * * *","time_zone":"Europe/Berlin"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.yaml")
	if err := os.WriteFile(junk, []byte("just: text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"lint", pipelineFile(t)}, 0, "no findings for kfp-2.15"},
		{[]string{"lint", "../../testdata/pipelines/loops.yaml"}, 1, "artifact-iterator"},
		{[]string{"lint", "../../testdata/pipelines/loops.yaml", "-o", "json"}, 1, `"rule": "artifact-iterator"`},
		{[]string{"lint", rr}, 1, "cron-time-zone"},
		{[]string{"lint", "../../testdata/pipelines/workspace_and_lists.yaml", "--target", "kfp-2.x"}, 1, "workspace"},
		{[]string{"lint", junk}, 2, ""},
		{[]string{"lint", pipelineFile(t), "--target", "kfp-1.8"}, 2, ""},
		{[]string{"lint"}, 2, ""},
	} {
		out, err := runCLI(t, tc.args...)
		if exitCode(err) != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("%v: exit %d (%v), want %d; output %q lacks %q", tc.args, exitCode(err), err, tc.code, out, tc.out)
		}
	}
}
