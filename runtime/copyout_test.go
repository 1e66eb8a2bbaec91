package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCopyOut(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o600))
	must(os.MkdirAll(filepath.Join(root, "tmp", "dir", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(root, "tmp", "file"), []byte("one"), 0o644))
	must(os.WriteFile(filepath.Join(root, "tmp", "dir", "sub", "a"), []byte("two"), 0o644))
	must(os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "tmp", "escape")))
	must(os.Symlink("../../..", filepath.Join(root, "tmp", "up")))
	must(os.Symlink("file", filepath.Join(root, "tmp", "inside")))

	dst := t.TempDir()
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// A file, replacing what dst held; a symbolic link that stays inside the root.
	must(os.WriteFile(filepath.Join(dst, "f"), []byte("old"), 0o644))
	must(CopyOut(root, "/tmp/file", filepath.Join(dst, "f")))
	must(CopyOut(root, "/tmp/inside", filepath.Join(dst, "nested", "g")))
	if read(filepath.Join(dst, "f")) != "one" || read(filepath.Join(dst, "nested", "g")) != "one" {
		t.Fatal("file copies differ")
	}
	// A directory tree.
	must(CopyOut(root, "/tmp/dir", filepath.Join(dst, "d")))
	if read(filepath.Join(dst, "d", "sub", "a")) != "two" {
		t.Fatal("directory copy differs")
	}
	// Nothing leaves the root: not through a symbolic link, not through "..".
	for _, p := range []string{"/tmp/escape", "/tmp/up/secret", "/../../" + filepath.Join(outside, "secret")} {
		err := CopyOut(root, p, filepath.Join(dst, "x"))
		if err == nil {
			t.Errorf("CopyOut(%q) copied %q from outside the root", p, read(filepath.Join(dst, "x")))
		}
	}
	if err := CopyOut(root, "/tmp/missing", filepath.Join(dst, "m")); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing path: %v, want ErrNotFound", err)
	}
}

// FuzzCopyOut: whatever path a task names, CopyOut never copies anything from outside the
// root (here a secret reachable through a symbolic link and "..").
func FuzzCopyOut(f *testing.F) {
	base := f.TempDir()
	root := filepath.Join(base, "root")
	if err := os.MkdirAll(filepath.Join(root, "tmp", "d"), 0o755); err != nil {
		f.Fatal(err)
	}
	secret := filepath.Join(base, "secret")
	_ = os.WriteFile(secret, []byte("host secret"), 0o600)
	_ = os.WriteFile(filepath.Join(root, "tmp", "ok"), []byte("fine"), 0o644)
	_ = os.Symlink(secret, filepath.Join(root, "tmp", "link"))
	_ = os.Symlink("../..", filepath.Join(root, "tmp", "d", "up"))
	for _, s := range []string{"/tmp/ok", "/tmp/link", "/tmp/d/up/../secret", "../secret", "/tmp/d", "/", "", "\x00", "/tmp/d/up/up/up/secret"} {
		f.Add(s)
	}
	dst := filepath.Join(f.TempDir(), "out")
	f.Fuzz(func(t *testing.T, path string) {
		if err := CopyOut(root, path, dst); err != nil {
			return
		}
		_ = filepath.Walk(dst, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				if b, _ := os.ReadFile(p); string(b) == "host secret" {
					t.Fatalf("CopyOut(%q) copied the secret from outside the root", path)
				}
			}
			return nil
		})
	})
}
