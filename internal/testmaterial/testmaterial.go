// Package testmaterial decides what a test does when material it needs from outside the
// repository is missing (the KFP fixtures and wheels in ../shared, a binary): it skips with
// the reason and the variable that supplies the material, or, when CI=true, fails with that
// same one line, because in CI missing test material is an error and not a pass.
package testmaterial

import (
	"fmt"
	"os"
	"testing"
)

// CI reports whether the tests run in CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// Missing ends the test: t.Fatal under CI=true, t.Skip otherwise. The message names what is
// missing, where it was looked for and how to supply it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatal(msg + " (CI=true: missing test material is a failure)")
	}
	t.Skip(msg + " (CI=true turns this skip into a failure)")
}
