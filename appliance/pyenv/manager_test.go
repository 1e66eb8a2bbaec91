package pyenv

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/storage/wheelhouse"
	"github.com/kfp-box/kfp-box/storage/wheelhouse/wheeltest"
)

// realPython is Debian's python3 with venv, or $KFPBOX_TEST_PYTHON; the test is skipped
// (failed under CI=true) without one.
func realPython(t *testing.T) Interpreter {
	t.Helper()
	p := os.Getenv("KFPBOX_TEST_PYTHON")
	if p == "" {
		p = "/usr/bin/python3"
	}
	in := Probe(context.Background(), p)
	if in.Problem != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(in.Problem)
		}
		t.Skip(in.Problem + " (scripts/ensure-deps.sh installs it)")
	}
	return in
}

// TestTaskEnvsAreIsolated: two tasks with the same pip installs share one cached
// environment, built once from the box's index; what one task installs at run time lands
// in its own venv only, never in the cached environment or the other task's.
func TestTaskEnvsAreIsolated(t *testing.T) {
	in := realPython(t)
	st, err := wheelhouse.Open(filepath.Join(t.TempDir(), "wh"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []wheeltest.Wheel{
		{Name: "demo_pkg", Version: "1.0", Files: map[string]string{"demo_pkg/__init__.py": "V = 'demo'\n"}},
		{Name: "other_pkg", Version: "1.0", Files: map[string]string{"other_pkg/__init__.py": "V = 'other'\n"}},
	} {
		if _, err := st.Import(w.FileName(), bytes.NewReader(w.Bytes()), ""); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/pypi/", &wheelhouse.Index{Store: st, Prefix: "/pypi"})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	index := srv.URL + "/pypi/simple/"
	m := NewManager(Config{Interpreter: in, Dir: filepath.Join(t.TempDir(), "pyenv"), IndexURL: func() string { return index }})

	argv := []string{"sh", "-c", "python3 -m pip install --quiet 'demo_pkg==1.0' && \"$0\" \"$@\"", "python3", "-c", "import demo_pkg; print(demo_pkg.V)"}
	run := func(dir string, script string) (string, error) {
		env, mounts, err := m.Prepare(context.Background(), argv, dir, "/usr/bin:/bin", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(mounts) != 2 || !mounts[0].ReadOnly || mounts[1].ReadOnly {
			t.Fatalf("mounts %+v: want the cached environment read-only and the task's own venv", mounts)
		}
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(env, "HOME="+dir, "PIP_INDEX_URL="+index, "PIP_DISABLE_PIP_VERSION_CHECK=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	base := t.TempDir()
	t1, t2 := filepath.Join(base, "t1"), filepath.Join(base, "t2")
	if out, err := run(t1, "python3 -m pip install --quiet 'demo_pkg==1.0' && python3 -c 'import demo_pkg; print(demo_pkg.V)'"); err != nil || !strings.Contains(out, "demo") {
		t.Fatalf("task 1 with its requirements: %v\n%s", err, out)
	}
	// Task 1 installs something at run time, past what its command declared.
	if out, err := run(t1, `python3 -c "import subprocess, sys; subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--quiet', 'other_pkg==1.0'])" && python3 -c 'import other_pkg; print(other_pkg.V)'`); err != nil || !strings.Contains(out, "other") {
		t.Fatalf("task 1 installing at run time: %v\n%s", err, out)
	}
	if out, err := run(t2, "python3 -c 'import demo_pkg; import other_pkg'"); err == nil || !strings.Contains(out, "No module named 'other_pkg'") {
		t.Errorf("task 2 sees task 1's install: %v\n%s", err, out)
	}
	matches, _ := filepath.Glob(filepath.Join(m.root(), "sets", "*", "lib", "python*", "site-packages", "other_pkg"))
	if len(matches) != 0 {
		t.Errorf("a task's install reached the cached environment: %v", matches)
	}
	if m2, _ := filepath.Glob(filepath.Join(t1, "lib", "python*", "site-packages", "other_pkg")); len(m2) != 1 {
		t.Errorf("task 1's install is not in its own venv")
	}
	sets, _ := filepath.Glob(filepath.Join(m.root(), "sets", "*"))
	if len(sets) != 1 {
		t.Errorf("%d cached environments for one set of installs", len(sets))
	}
	// Everything in the cached environment is readable by other users, nothing writable.
	_ = filepath.Walk(sets[0], func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeSymlink == 0 && (fi.Mode().Perm()&0o004 == 0 || fi.Mode().Perm()&0o022 != 0) {
			t.Errorf("%s has mode %v", p, fi.Mode().Perm())
			return filepath.SkipAll
		}
		return nil
	})
	// A requirement the index lacks fails with the one line.
	_, _, err = m.Prepare(context.Background(), []string{"sh", "-c", "pip install 'absent-pkg==3.1'"}, filepath.Join(base, "t3"), "", nil)
	if err == nil || !strings.Contains(err.Error(), "Python package absent-pkg (version 3.1) is not in the box's wheelhouse") || strings.Contains(err.Error(), "\n") {
		t.Errorf("missing requirement: %v", err)
	}
}

func TestUsableBy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make files owned by others")
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	closed := filepath.Join(dir, "closed")
	open := filepath.Join(dir, "open")
	for _, d := range []string{closed, open} {
		os.MkdirAll(filepath.Join(d, "bin"), 0o755)
		os.WriteFile(filepath.Join(d, "bin", "python3"), []byte("#!/bin/sh\n"), 0o755)
	}
	os.Chmod(closed, 0o700)
	os.Symlink(filepath.Join(closed, "bin", "python3"), filepath.Join(open, "bin", "link"))
	for p, want := range map[string]bool{
		filepath.Join(open, "bin", "python3"):   true,
		filepath.Join(closed, "bin", "python3"): false,
		filepath.Join(open, "bin", "link"):      false, // a link into a closed directory
		filepath.Join(open, "bin", "missing"):   false,
	} {
		if got := UsableBy(p, 65534, 65534); got != want {
			t.Errorf("UsableBy(%s, nobody) = %v, want %v", p, got, want)
		}
		if !UsableBy(filepath.Join(closed, "bin", "python3"), 0, 0) {
			t.Errorf("root's own files are closed to root")
		}
	}
}
