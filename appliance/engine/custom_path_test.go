package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/storage/meta"
)

// TestCustomArtifactPath: an output artifact written at a custom path reaches its object
// (as KFP's launcher uploads it from there), so its consumer reads it.
func TestCustomArtifactPath(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	dir := filepath.Join(os.TempDir(), "kfpbox-custom-path-"+strings.ReplaceAll(t.Name(), "/", "-")+"-"+time.Now().Format("150405.000000000"))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	id := h.submit(testdataPipeline(t, "custom_path.yaml"), map[string]any{"dir": dir})
	h.check(id, h.waitRun(id, 30*time.Second), expectation{state: meta.RunSucceeded,
		tasks:   map[string]string{"produce": meta.ExecSucceeded, "consume": meta.ExecSucceeded},
		outputs: map[string]map[string]any{"consume": {"Output": "written at a custom path"}}})
}
