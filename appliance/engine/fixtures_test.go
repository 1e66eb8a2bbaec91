package engine

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fixturesDir finds KFP's compiled fixtures: $KFPBOX_FIXTURES or ../shared/fixtures/kfp-ir
// beside the repository.
func fixturesDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("KFPBOX_FIXTURES")
	if d == "" {
		d = filepath.Join(repoRoot(), "..", "shared", "fixtures", "kfp-ir")
	}
	if _, err := os.Stat(filepath.Join(d, "valid")); err != nil {
		t.Skipf("KFP fixtures not found at %s (set KFPBOX_FIXTURES): %v", d, err)
	}
	return d
}

func TestFixtureHelloWorld(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	p := loadPipeline(t, filepath.Join(fixturesDir(t), "valid", "hello_world.yaml"))
	id := h.submit(p, nil)
	r := h.waitRun(id, 20*time.Second)
	h.check(id, r, expectation{state: "SUCCEEDED", tasks: map[string]string{"echo": "SUCCEEDED"}})
}
