package testmaterial

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissing runs itself in a child process with CI set both ways: without CI the child
// skips, with CI=true it fails, and both say the reason in one line.
func TestMissing(t *testing.T) {
	if os.Getenv("TESTMATERIAL_CHILD") == "1" {
		Missing(t, "fixtures not found at %s (set KFPBOX_FIXTURES)", "/nowhere")
		return
	}
	for _, c := range []struct {
		ci      string
		wantErr bool
		want    string
	}{
		{"", false, "--- SKIP: TestMissing"},
		{"true", true, "--- FAIL: TestMissing"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTMATERIAL_CHILD=1", "CI="+c.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.wantErr {
			t.Fatalf("CI=%q: err = %v\n%s", c.ci, err, out)
		}
		if !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "fixtures not found at /nowhere (set KFPBOX_FIXTURES)") {
			t.Errorf("CI=%q: output lacks %q and the reason:\n%s", c.ci, c.want, out)
		}
	}
}
