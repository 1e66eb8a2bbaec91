package appliance_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/appliance"
)

// TestBoxTaskRunToken: a task gets its run's token, never the admin one. With it the task
// reads the API, but neither writes nor reads Secrets, and the token dies with the run.
func TestBoxTaskRunToken(t *testing.T) {
	b := startBox(t, func(c *appliance.Config) { c.Runtime = "host" })
	r := b.runPipeline(b.upload(filepath.Join(testdata, "run_token.yaml"), "run-token"), map[string]any{"data": b.data})
	if r.State != "SUCCEEDED" {
		t.Fatalf("run %s: %+v", r.State, r.RunDetails.TaskDetails)
	}
	got, _ := r.task(t, "call").OutputParameters["codes"].(string)
	if want := "get=200 post=403 secrets=403 none=401 admin=hidden"; got != want {
		t.Fatalf("what the task's token could do: %q, want %q", got, want)
	}
	// The token the task held no longer works once its run has ended.
	files, _ := filepath.Glob(filepath.Join(b.data, "work", r.RunID, "*", "*", "token"))
	if len(files) != 1 {
		t.Fatalf("token files of the run: %v", files)
	}
	tok, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(tok), b.token) || !strings.HasPrefix(string(tok), "kfpbox-run.") {
		t.Fatalf("the task was given %q, not a run token", tok[:12])
	}
	req, _ := http.NewRequest("GET", b.base+"/runs/"+r.RunID, nil)
	req.Header.Set("Authorization", "Bearer "+string(tok))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a finished run's token: HTTP %d, want 401", resp.StatusCode)
	}
}
