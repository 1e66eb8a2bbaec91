package wheelhouse

import (
	"archive/zip"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/textproto"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// File is one wheel of the wheelhouse.
type File struct {
	// Name is the file name (PEP 427).
	Name string `json:"filename"`
	// Project is the normalized project name; Version the version as in the file name.
	Project string `json:"project"`
	Version string `json:"version"`
	// Size in bytes and SHA256 (hex) of the file.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// RequiresPython is the wheel's Requires-Python ("" when it declares none).
	RequiresPython string `json:"requires_python,omitempty"`
	// AddedAt is when the file was imported or fetched.
	AddedAt time.Time `json:"added_at"`
}

// Store is the wheelhouse directory with an in-memory index of its files. It is safe for
// concurrent use; imports and removals are visible at once.
type Store struct {
	dir string
	log *slog.Logger

	mu    sync.RWMutex
	files map[string]File // by file name
}

// Open opens (creating it) the wheelhouse in dir and indexes its wheels. Wheels copied in
// by hand (without metadata) are hashed once and their metadata written.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{dir, filepath.Join(dir, ".meta"), filepath.Join(dir, ".tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	s := &Store{dir: dir, log: log, files: map[string]File{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".whl") {
			continue
		}
		f, err := s.loadMeta(e.Name())
		if err != nil {
			log.Warn("wheelhouse: ignoring a file that is not a valid wheel", "file", e.Name(), "err", err)
			continue
		}
		s.files[f.Name] = f
	}
	return s, nil
}

// Dir is the wheelhouse directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) metaPath(name string) string { return filepath.Join(s.dir, ".meta", name+".json") }

// loadMeta reads a wheel's metadata file, or computes and writes it.
func (s *Store) loadMeta(name string) (File, error) {
	fi, err := os.Stat(filepath.Join(s.dir, name))
	if err != nil {
		return File{}, err
	}
	if b, err := os.ReadFile(s.metaPath(name)); err == nil {
		var f File
		if json.Unmarshal(b, &f) == nil && f.Name == name && f.Size == fi.Size() && f.SHA256 != "" {
			return f, nil
		}
	}
	in, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		return File{}, err
	}
	defer in.Close()
	h := sha256.New()
	if _, err := io.Copy(h, in); err != nil {
		return File{}, err
	}
	f, err := describe(filepath.Join(s.dir, name), name, hex.EncodeToString(h.Sum(nil)), fi.Size(), fi.ModTime())
	if err != nil {
		return File{}, err
	}
	return f, s.writeMeta(f)
}

func (s *Store) writeMeta(f File) error {
	b, _ := json.Marshal(f)
	tmp := s.metaPath(f.Name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.metaPath(f.Name))
}

// describe checks that path is a wheel of the project and version its name says and reads
// its Requires-Python.
func describe(path, name, sum string, size int64, added time.Time) (File, error) {
	wn, err := ParseWheelName(name)
	if err != nil {
		return File{}, err
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		return File{}, fmt.Errorf("wheel %q is not a zip archive: %v: %w", name, err, ErrInvalid)
	}
	defer zr.Close()
	var md *zip.File
	for _, f := range zr.File {
		dir, base, ok := strings.Cut(f.Name, "/")
		if ok && base == "METADATA" && strings.HasSuffix(dir, ".dist-info") {
			if Normalize(strings.SplitN(strings.TrimSuffix(dir, ".dist-info"), "-", 2)[0]) == wn.Project {
				md = f
				break
			}
		}
	}
	if md == nil {
		return File{}, fmt.Errorf("wheel %q has no %s-*.dist-info/METADATA: %w", name, wn.Project, ErrInvalid)
	}
	rc, err := md.Open()
	if err != nil {
		return File{}, fmt.Errorf("wheel %q: METADATA: %v: %w", name, err, ErrInvalid)
	}
	defer rc.Close()
	hdr, err := textproto.NewReader(bufio.NewReader(io.LimitReader(rc, 4<<20))).ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) && len(hdr) == 0 {
		return File{}, fmt.Errorf("wheel %q: METADATA: %v: %w", name, err, ErrInvalid)
	}
	return File{Name: name, Project: wn.Project, Version: wn.Version, Size: size, SHA256: sum,
		RequiresPython: strings.TrimSpace(hdr.Get("Requires-Python")), AddedAt: added.UTC()}, nil
}

// Import adds a wheel read from r under its file name. wantSHA256, when not empty, must
// match the content (hex). A wheel of the same name and content is accepted again; a
// different content under an existing name is an error.
func (s *Store) Import(name string, r io.Reader, wantSHA256 string) (File, error) {
	if _, err := ParseWheelName(name); err != nil {
		return File{}, err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, ".tmp"), "import-*")
	if err != nil {
		return File{}, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return File{}, fmt.Errorf("wheel %q: %w", name, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if wantSHA256 != "" && !strings.EqualFold(sum, wantSHA256) {
		return File{}, fmt.Errorf("wheel %q: sha256 %s does not match the published %s: %w", name, sum, wantSHA256, ErrUpstream)
	}
	f, err := describe(tmp.Name(), name, sum, n, time.Now())
	if err != nil {
		return File{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.files[name]; ok {
		if old.SHA256 == sum {
			return old, nil
		}
		return File{}, fmt.Errorf("wheel %q is already in the wheelhouse with other content (sha256 %s); remove it first: %w", name, old.SHA256, ErrInvalid)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return File{}, err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.dir, name)); err != nil {
		return File{}, err
	}
	if err := s.writeMeta(f); err != nil {
		return File{}, err
	}
	s.files[name] = f
	s.log.Info("wheel added", "file", name, "sha256", sum)
	return f, nil
}

// List returns every wheel, sorted by project, version and name.
func (s *Store) List() []File {
	s.mu.RLock()
	out := make([]File, 0, len(s.files))
	for _, f := range s.files {
		out = append(out, f)
	}
	s.mu.RUnlock()
	sortFiles(out)
	return out
}

func sortFiles(fs []File) {
	sort.Slice(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Project != b.Project {
			return a.Project < b.Project
		}
		va, ea := ParseVersion(a.Version)
		vb, eb := ParseVersion(b.Version)
		if ea == nil && eb == nil {
			if c := Compare(va, vb); c != 0 {
				return c < 0
			}
		}
		return a.Name < b.Name
	})
}

// Project returns the wheels of one project (any spelling of its name).
func (s *Store) Project(name string) []File {
	p := Normalize(name)
	var out []File
	s.mu.RLock()
	for _, f := range s.files {
		if f.Project == p {
			out = append(out, f)
		}
	}
	s.mu.RUnlock()
	sortFiles(out)
	return out
}

// Projects returns the normalized names of the projects that have wheels, sorted.
func (s *Store) Projects() []string {
	seen := map[string]bool{}
	s.mu.RLock()
	for _, f := range s.files {
		seen[f.Project] = true
	}
	s.mu.RUnlock()
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Get returns the wheel of that file name.
func (s *Store) Get(name string) (File, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f, ok := s.files[name]
	return f, ok
}

// Path is the file of a wheel on disk.
func (s *Store) Path(name string) string { return filepath.Join(s.dir, filepath.Base(name)) }

// Remove deletes wheels: a file name, a project name (every version) or NAME==VERSION.
// It returns the files removed, and ErrNotFound when nothing matched.
func (s *Store) Remove(what string) ([]File, error) {
	var victims []File
	if strings.HasSuffix(what, ".whl") {
		if f, ok := s.Get(what); ok {
			victims = append(victims, f)
		}
	} else {
		name, ver, _ := strings.Cut(what, "==")
		var want *Version
		if ver != "" {
			v, err := ParseVersion(ver)
			if err != nil {
				return nil, err
			}
			want = &v
		}
		for _, f := range s.Project(strings.TrimSpace(name)) {
			if want != nil {
				v, err := ParseVersion(f.Version)
				if err != nil || Compare(v, *want) != 0 {
					continue
				}
			}
			victims = append(victims, f)
		}
	}
	if len(victims) == 0 {
		return nil, fmt.Errorf("wheel %q: %w", what, ErrNotFound)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range victims {
		if err := os.Remove(filepath.Join(s.dir, f.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		_ = os.Remove(s.metaPath(f.Name))
		delete(s.files, f.Name)
		s.log.Info("wheel removed", "file", f.Name)
	}
	return victims, nil
}

// Satisfies returns the newest wheel of the wheelhouse that satisfies r (markers are not
// evaluated), and false when none does.
func (s *Store) Satisfies(r Requirement) (File, bool) {
	sp, err := ParseSpecifier(r.Specifier)
	if err != nil {
		return File{}, false
	}
	fs := s.Project(r.Project)
	for i := len(fs) - 1; i >= 0; i-- {
		v, err := ParseVersion(fs[i].Version)
		if err == nil && sp.Match(v) {
			return fs[i], true
		}
	}
	return File{}, false
}
