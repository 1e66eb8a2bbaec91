// Package wheeltest builds small, valid, installable wheels for tests, and finds the shared
// wheels of the real KFP SDK (../shared/python/wheels beside the repository).
package wheeltest

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Wheel describes a pure-Python wheel.
type Wheel struct {
	// Name is the distribution name as written in the file name (underscores).
	Name, Version string
	// RequiresPython and Requires (Requires-Dist lines) go into METADATA.
	RequiresPython string
	Requires       []string
	// Files maps paths inside the wheel (for example "mod/__init__.py") to contents.
	Files map[string]string
}

// FileName is the wheel's PEP 427 file name.
func (w Wheel) FileName() string { return fmt.Sprintf("%s-%s-py3-none-any.whl", w.Name, w.Version) }

// Bytes builds the wheel: the files, METADATA, WHEEL and a RECORD with hashes.
func (w Wheel) Bytes() []byte {
	info := fmt.Sprintf("%s-%s.dist-info/", w.Name, w.Version)
	md := fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", w.Name, w.Version)
	if w.RequiresPython != "" {
		md += "Requires-Python: " + w.RequiresPython + "\n"
	}
	for _, r := range w.Requires {
		md += "Requires-Dist: " + r + "\n"
	}
	files := map[string]string{
		info + "METADATA": md,
		info + "WHEEL":    "Wheel-Version: 1.0\nGenerator: kfp-box-wheeltest\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
	}
	for k, v := range w.Files {
		files[k] = v
	}
	names := make([]string, 0, len(files))
	for k := range files {
		names = append(names, k)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	for _, n := range names {
		f, _ := zw.Create(n)
		_, _ = f.Write([]byte(files[n]))
		sum := sha256.Sum256([]byte(files[n]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", n, base64.RawURLEncoding.EncodeToString(sum[:]), len(files[n]))
	}
	record.WriteString(info + "RECORD,,\n")
	f, _ := zw.Create(info + "RECORD")
	_, _ = f.Write([]byte(record.String()))
	_ = zw.Close()
	return buf.Bytes()
}

// Write writes the wheel into dir and returns its path.
func (w Wheel) Write(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, w.FileName())
	if err := os.WriteFile(p, w.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// SharedWheels is the directory of the shared KFP SDK wheels: $KFPBOX_WHEELS, or
// ../shared/python/wheels above repoRoot. It skips the test, naming the reason, when they
// are missing, and fails it under CI=true, where missing test material is an error.
func SharedWheels(t testing.TB, repoRoot string) string {
	t.Helper()
	d := os.Getenv("KFPBOX_WHEELS")
	if d == "" {
		d = filepath.Join(repoRoot, "..", "shared", "python", "wheels")
	}
	if m, _ := filepath.Glob(filepath.Join(d, "kfp-*.whl")); len(m) == 0 {
		msg := fmt.Sprintf("the KFP SDK wheels are not at %s (set KFPBOX_WHEELS to their directory)", d)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	abs, _ := filepath.Abs(d)
	return abs
}
