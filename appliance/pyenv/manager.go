package pyenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kfp-box/kfp-box/runtime"
)

// ErrUnavailable is wrapped by errors that say the host has no usable Python; the message
// carries the apt command that fixes it.
var ErrUnavailable = errors.New("host Python unavailable")

// AptFix is the Debian command that provides what host tasks need.
const AptFix = "apt-get install python3 python3-venv"

// Interpreter is the host Python that host tasks run with, as probed at start.
type Interpreter struct {
	// Requested is --host-python as given; Path the absolute interpreter it resolved to.
	Requested string `json:"requested"`
	Path      string `json:"path,omitempty"`
	// Version is sys.version_info as X.Y.Z; Short is X.Y.
	Version string `json:"version,omitempty"`
	Short   string `json:"-"`
	// ExternallyManaged is true for a PEP 668 interpreter (Debian's): pip refuses to
	// install into it, which the per-task venvs avoid.
	ExternallyManaged bool `json:"externally_managed,omitempty"`
	// Problem says what is missing, with the fix ("" when usable).
	Problem string `json:"problem,omitempty"`
}

// Probe resolves and checks the interpreter: it must run, and have venv and ensurepip
// (pip comes from ensurepip into each environment).
func Probe(ctx context.Context, requested string) Interpreter {
	in := Interpreter{Requested: requested}
	p, err := exec.LookPath(requested)
	if err != nil {
		in.Problem = fmt.Sprintf("host Python %q not found: %s (or point --host-python at an interpreter)", requested, AptFix)
		return in
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	in.Path = p
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	const script = `import sys, sysconfig, os, json
r = {"version": "%d.%d.%d" % sys.version_info[:3], "short": "%d.%d" % sys.version_info[:2]}
r["executable"] = getattr(sys, "_base_executable", "") or sys.executable
r["em"] = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
missing = []
for m in ("venv", "ensurepip"):
    try:
        __import__(m)
    except Exception:
        missing.append(m)
try:
    import ensurepip
    ensurepip.version()
except Exception:
    if "ensurepip" not in missing:
        missing.append("ensurepip")
r["missing"] = missing
print(json.dumps(r))`
	out, err := exec.CommandContext(ctx, p, "-I", "-c", script).Output()
	if err != nil {
		in.Problem = fmt.Sprintf("host Python %s does not run (%v): %s", p, err, AptFix)
		return in
	}
	var r struct {
		Version, Short, Executable string
		EM                         bool `json:"em"`
		Missing                    []string
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		in.Problem = fmt.Sprintf("host Python %s: unexpected answer %q", p, out)
		return in
	}
	in.Version, in.Short, in.ExternallyManaged = r.Version, r.Short, r.EM
	// A launcher (a pyenv shim, a wrapper script) is not the interpreter: task venvs must
	// link to the real one, which is where Python looks for their pyvenv.cfg.
	if filepath.IsAbs(r.Executable) {
		in.Path = r.Executable
	}
	if len(r.Missing) > 0 {
		in.Problem = fmt.Sprintf("host Python %s has no %s, so tasks cannot get an environment with pip: apt-get install python3-venv", p, strings.Join(r.Missing, " or "))
	}
	return in
}

// Config configures a Manager.
type Config struct {
	// Interpreter is the probed host Python.
	Interpreter Interpreter
	// Dir holds the cached environments ($DATA/pyenv).
	Dir string
	// IndexURL is the box's own package index, used to fill cached environments.
	IndexURL func() string
	// Upstream is the --pypi-upstream URL, for messages ("" when offline).
	Upstream string
	// MountAt is where a task sees its environments: MountAt/env (the cached one) and
	// MountAt/venv (its own). Empty means at their host paths, for callers that run the
	// environment directly on the host; the box sets it, because the data directory that
	// holds them is hidden from tasks, and its parents need not be open to the task's user.
	MountAt string
	Logger  *slog.Logger
}

// Manager prepares host tasks' Python environments.
type Manager struct {
	cfg Config
	log *slog.Logger
	mu  sync.Mutex
	// building serializes the build of one environment; done caches ready ones.
	building map[string]*sync.Mutex
	ready    map[string]bool
}

// NewManager returns a Manager; it builds nothing until a task needs it.
func NewManager(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, log: cfg.Logger, building: map[string]*sync.Mutex{}, ready: map[string]bool{}}
}

// Interpreter is the host Python the manager uses.
func (m *Manager) Interpreter() Interpreter { return m.cfg.Interpreter }

func (m *Manager) root() string {
	id := sha256.Sum256([]byte(m.cfg.Interpreter.Path + "\x00" + m.cfg.Interpreter.Version))
	return filepath.Join(m.cfg.Dir, hex.EncodeToString(id[:])[:12])
}

// Env is a cached environment ready for tasks.
type Env struct {
	// Dir is the environment; SitePackages its site-packages directory.
	Dir, SitePackages string
}

// Environment returns the cached environment holding c's installs, building it the first
// time (pip from the box's index into a venv); onWait (may be nil) is told when a build
// starts. Concurrent calls for one set wait for one build. The error of a failed install is
// one line with the fix.
func (m *Manager) Environment(ctx context.Context, c Command, onWait func(string)) (Env, error) {
	in := m.cfg.Interpreter
	if in.Problem != "" {
		return Env{}, fmt.Errorf("%s: %w", in.Problem, ErrUnavailable)
	}
	sum := sha256.Sum256([]byte(c.Key()))
	key := hex.EncodeToString(sum[:])[:16]
	dir := filepath.Join(m.root(), "sets", key)
	env := Env{Dir: dir, SitePackages: filepath.Join(dir, "lib", "python"+in.Short, "site-packages")}
	marker := filepath.Join(dir, ".ready")
	m.mu.Lock()
	if m.ready[key] {
		m.mu.Unlock()
		if _, err := os.Stat(marker); err == nil {
			return env, nil
		}
		m.mu.Lock()
		delete(m.ready, key) // deleted under us: build it again
	}
	l := m.building[key]
	if l == nil {
		l = &sync.Mutex{}
		m.building[key] = l
	}
	m.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	if _, err := os.Stat(marker); err == nil {
		m.mu.Lock()
		m.ready[key] = true
		m.mu.Unlock()
		return env, nil
	}
	start := time.Now()
	if onWait != nil {
		onWait("preparing its Python environment (" + strings.ReplaceAll(strings.TrimSpace(c.Key()), "\n", "; ") + ")")
	}
	if err := m.build(ctx, dir, c); err != nil {
		_ = os.RemoveAll(dir)
		return Env{}, err
	}
	m.mu.Lock()
	m.ready[key] = true
	m.mu.Unlock()
	m.log.Info("python environment ready", "env", dir, "installs", strings.TrimSpace(c.Key()), "took", time.Since(start).Round(time.Millisecond))
	return env, nil
}

// base returns the interpreter's base venv (with pip), made once.
func (m *Manager) base(ctx context.Context) (string, error) {
	dir := filepath.Join(m.root(), "base")
	if _, err := os.Stat(filepath.Join(dir, ".ready")); err == nil {
		return dir, nil
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(m.root(), 0o755); err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, m.cfg.Interpreter.Path, "-I", "-m", "venv", "--system-site-packages", dir).CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("host Python %s could not make a venv (%v: %s): apt-get install python3-venv: %w", m.cfg.Interpreter.Path, err, lastLine(string(out)), ErrUnavailable)
	}
	return dir, os.WriteFile(filepath.Join(dir, ".ready"), nil, 0o644)
}

var baseMu sync.Mutex

// build makes the environment at dir: a copy of the base venv, then each install.
func (m *Manager) build(ctx context.Context, dir string, c Command) error {
	baseMu.Lock()
	base, err := m.base(ctx)
	baseMu.Unlock()
	if err != nil {
		return err
	}
	_ = os.RemoveAll(dir)
	if err := copyTree(base, dir); err != nil {
		return fmt.Errorf("python environment: %w", err)
	}
	_ = os.Remove(filepath.Join(dir, ".ready"))
	py := filepath.Join(dir, "bin", "python")
	for _, in := range c.Installs {
		if len(in.Requirements) == 0 {
			continue
		}
		args := []string{"-I", "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--no-warn-script-location", "--quiet"}
		switch {
		case len(in.IndexURLs) > 0: // the component's own index (pip_index_urls), as written
			args = append(args, "--index-url", in.IndexURLs[0])
			for _, u := range in.IndexURLs[1:] {
				args = append(args, "--extra-index-url", u)
			}
			for _, u := range in.IndexURLs {
				args = append(args, "--trusted-host", hostOf(u))
			}
		}
		if in.NoDeps {
			args = append(args, "--no-deps")
		}
		args = append(args, in.Requirements...)
		cmd := exec.CommandContext(ctx, py, args...)
		cmd.Env = append(pipFreeEnv(), "PIP_NO_CACHE_DIR=1", "PIP_CONFIG_FILE=/dev/null")
		if len(in.IndexURLs) == 0 && m.cfg.IndexURL != nil {
			// The box's index goes in the environment, not the command line: its URL carries
			// a token, and any local user can read a process's arguments.
			idx := m.cfg.IndexURL()
			cmd.Env = append(cmd.Env, "PIP_INDEX_URL="+idx, "PIP_TRUSTED_HOST="+hostOf(idx))
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			if len(in.IndexURLs) > 0 {
				return fmt.Errorf("pip install %s from the component's own index %s (pip_index_urls, used as written) failed: %s", strings.Join(in.Requirements, " "), strings.Join(in.IndexURLs, " "), lastLine(string(out)))
			}
			if hint := MissingHint(string(out), m.cfg.Upstream); hint != "" {
				return errors.New(hint)
			}
			return fmt.Errorf("pip install %s failed: %s", strings.Join(in.Requirements, " "), lastLine(string(out)))
		}
	}
	// Compile once so that tasks, which get the environment read-only, never try to.
	_ = exec.CommandContext(ctx, py, "-I", "-m", "compileall", "-q", env(dir, m.cfg.Interpreter.Short)).Run()
	if err := makeReadable(dir); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ".ready"), nil, 0o644)
}

func env(dir, short string) string { return filepath.Join(dir, "lib", "python"+short, "site-packages") }

// makeReadable lets any user read and traverse the environment (tasks may run as another
// user); nothing in it is writable but by its owner.
func makeReadable(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm() | 0o044
		if d.IsDir() || fi.Mode().Perm()&0o100 != 0 {
			mode |= 0o011
		}
		mode &^= 0o022
		if mode != fi.Mode().Perm() {
			return os.Chmod(p, mode)
		}
		return nil
	})
}

// copyTree copies a directory tree, keeping symlinks as links and file modes.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.IsDir():
			return os.MkdirAll(target, fi.Mode().Perm())
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, fi.Mode().Perm())
		}
	})
}

// TaskEnv makes a task's own venv in dir, which the task sees at at, chained to env (as the
// task sees it), and returns the environment variables to set (PATH first) for it.
// prevPATH is the PATH the task would get otherwise.
func (m *Manager) TaskEnv(dir, at string, e Env, prevPATH string) ([]string, error) {
	in := m.cfg.Interpreter
	site := filepath.Join(dir, "lib", "python"+in.Short, "site-packages")
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{site, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	cfg := fmt.Sprintf("home = %s\ninclude-system-site-packages = true\nversion = %s\n", filepath.Dir(in.Path), in.Version)
	files := map[string]string{
		filepath.Join(dir, "pyvenv.cfg"):           cfg,
		filepath.Join(site, "_kfp_box_cached.pth"): e.SitePackages + "\n",
	}
	pipScript := "#!/bin/sh\nexec \"$(dirname \"$0\")/python3\" -m pip \"$@\"\n"
	for p, body := range files {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{"pip", "pip3", "pip" + in.Short} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(pipScript), 0o755); err != nil {
			return nil, err
		}
	}
	links := map[string]string{"python3": in.Path, "python": "python3", "python" + in.Short: "python3"}
	for name, target := range links {
		p := filepath.Join(bin, name)
		_ = os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			return nil, err
		}
	}
	// pip's cache stays in the task's own directory too, not in a HOME shared with others.
	return []string{"PATH=" + filepath.Join(at, "bin") + ":" + prevPATH, "VIRTUAL_ENV=" + at, "PIP_CACHE_DIR=" + filepath.Join(at, "pip-cache")}, nil
}

// hostOf is the host[:port] of a URL, for PIP_TRUSTED_HOST.
func hostOf(u string) string {
	rest := u
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	return rest
}

// HostOf is the host[:port] of an index URL, without credentials (PIP_TRUSTED_HOST).
func HostOf(u string) string { return hostOf(u) }

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// Prepare implements the engine's PythonEnvs: the cached environment for the task's pip
// installs, and a venv of the task's own in dir chained to it. The task gets PATH and
// VIRTUAL_ENV for its venv, the cached environment mounted read-only and its own venv
// read-write (both at their host paths).
func (m *Manager) Prepare(ctx context.Context, args []string, dir, path string, onWait func(string)) ([]string, []runtime.Mount, error) {
	cmd := ParseCommand(args)
	env, err := m.Environment(ctx, cmd, onWait)
	if err != nil {
		return nil, nil, err
	}
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	seen, at := env, dir // the cached environment and the task's venv as the task sees them
	if m.cfg.MountAt != "" {
		rel, err := filepath.Rel(env.Dir, env.SitePackages)
		if err != nil {
			return nil, nil, err
		}
		seen = Env{Dir: m.cfg.MountAt + "/env", SitePackages: filepath.Join(m.cfg.MountAt, "env", rel)}
		at = m.cfg.MountAt + "/venv"
	}
	vars, err := m.TaskEnv(dir, at, seen, path)
	if err != nil {
		return nil, nil, fmt.Errorf("python environment of the task: %w", err)
	}
	return vars, []runtime.Mount{
		{Source: env.Dir, Target: seen.Dir, ReadOnly: true},
		{Source: dir, Target: at},
	}, nil
}

// pipFreeEnv is the box's environment without PIP_* settings (an inherited PIP_FIND_LINKS
// or PIP_INDEX_URL would bypass the index the environment must come from).
func pipFreeEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PIP_") {
			out = append(out, kv)
		}
	}
	return out
}

// UsableBy says whether the user uid (group gid) can run the interpreter at path: every
// directory on the way is searchable by that user and the file (links followed) executable.
func UsableBy(path string, uid, gid int) bool {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	allowed := func(p string, bit os.FileMode) bool {
		fi, err := os.Stat(p)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return false
		}
		m := fi.Mode().Perm()
		switch {
		case int(st.Uid) == uid:
			return m&(bit<<6) != 0
		case int(st.Gid) == gid:
			return m&(bit<<3) != 0
		}
		return m&bit != 0
	}
	for _, p := range []string{path, real} {
		for d := filepath.Dir(p); ; d = filepath.Dir(d) {
			if !allowed(d, 0o1) {
				return false
			}
			if d == "/" {
				break
			}
		}
	}
	return allowed(real, 0o1) && allowed(real, 0o4)
}
