package wheelhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// remoteFile is a wheel an upstream index lists.
type remoteFile struct {
	Name           string
	URL            string
	SHA256         string
	RequiresPython string
}

// Upstream is a PEP 503 / PEP 691 index that misses are fetched from.
type Upstream struct {
	base   *url.URL
	client *http.Client
	log    *slog.Logger
	ttl    time.Duration

	mu    sync.Mutex
	pages map[string]upstreamPage // by normalized project
	// inflight serializes downloads of one file.
	inflight map[string]*sync.Mutex
}

type upstreamPage struct {
	files   []remoteFile
	fetched time.Time
}

// NewUpstream returns the upstream index at base (for example https://pypi.org/simple/).
func NewUpstream(base string, log *slog.Logger) (*Upstream, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream index %q: want an http(s) URL of a simple index: %w", base, ErrInvalid)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Upstream{base: u, client: &http.Client{Timeout: 10 * time.Minute}, log: log, ttl: 5 * time.Minute,
		pages: map[string]upstreamPage{}, inflight: map[string]*sync.Mutex{}}, nil
}

// URL is the upstream's base URL without credentials, for logs and messages.
func (u *Upstream) URL() string {
	c := *u.base
	c.User = nil
	return c.String()
}

const (
	mediaJSON = "application/vnd.pypi.simple.v1+json"
	mediaHTML = "application/vnd.pypi.simple.v1+html"
)

// Files lists the wheels the upstream has for project, from a page fetched at most ttl ago.
func (u *Upstream) Files(ctx context.Context, project string) ([]remoteFile, error) {
	project = Normalize(project)
	u.mu.Lock()
	p, ok := u.pages[project]
	u.mu.Unlock()
	if ok && time.Since(p.fetched) < u.ttl {
		return p.files, nil
	}
	files, err := u.fetchPage(ctx, project)
	if err != nil {
		if ok {
			u.log.Warn("upstream index unreachable; using its last answer", "project", project, "err", err)
			return p.files, nil
		}
		return nil, err
	}
	u.mu.Lock()
	u.pages[project] = upstreamPage{files: files, fetched: time.Now()}
	u.mu.Unlock()
	return files, nil
}

func (u *Upstream) fetchPage(ctx context.Context, project string) ([]remoteFile, error) {
	page := u.base.ResolveReference(&url.URL{Path: project + "/"})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, page.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", mediaJSON+", "+mediaHTML+";q=0.1, text/html;q=0.01")
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", u.URL(), err, ErrUpstream)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s for %q: %w", u.URL(), resp.Status, project, ErrUpstream)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", u.URL(), err, ErrUpstream)
	}
	base := resp.Request.URL // after redirects
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct == mediaJSON {
		return parseJSONPage(base, body)
	}
	return parseHTMLPage(base, body), nil
}

func parseJSONPage(base *url.URL, body []byte) ([]remoteFile, error) {
	var p struct {
		Files []struct {
			Filename       string            `json:"filename"`
			URL            string            `json:"url"`
			Hashes         map[string]string `json:"hashes"`
			RequiresPython string            `json:"requires-python"`
			Yanked         any               `json:"yanked"`
		} `json:"files"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("bad PEP 691 page: %v: %w", err, ErrUpstream)
	}
	var out []remoteFile
	for _, f := range p.Files {
		if !strings.HasSuffix(f.Filename, ".whl") || isYanked(f.Yanked) {
			continue
		}
		ref, err := url.Parse(f.URL)
		if err != nil {
			continue
		}
		out = append(out, remoteFile{Name: f.Filename, URL: base.ResolveReference(ref).String(), SHA256: strings.ToLower(f.Hashes["sha256"]), RequiresPython: f.RequiresPython})
	}
	return out, nil
}

func isYanked(v any) bool {
	switch y := v.(type) {
	case bool:
		return y
	case string:
		return true
	}
	return false
}

var (
	anchorRe = regexp.MustCompile(`(?is)<a\s([^>]*)>`)
	attrRe   = regexp.MustCompile(`(?is)([a-z][a-z0-9-]*)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)`)
)

// parseHTMLPage reads the anchors of a PEP 503 page: href with #sha256=, and
// data-requires-python; yanked files are skipped.
func parseHTMLPage(base *url.URL, body []byte) []remoteFile {
	var out []remoteFile
	for _, m := range anchorRe.FindAllSubmatch(body, -1) {
		attrs := map[string]string{}
		for _, a := range attrRe.FindAllSubmatch(m[1], -1) {
			v := strings.Trim(string(a[2]), `"'`)
			attrs[strings.ToLower(string(a[1]))] = html.UnescapeString(v)
		}
		if _, y := attrs["data-yanked"]; y {
			continue
		}
		ref, err := url.Parse(attrs["href"])
		if err != nil || ref.Path == "" {
			continue
		}
		abs := base.ResolveReference(ref)
		name := abs.Path[strings.LastIndex(abs.Path, "/")+1:]
		if n, err := url.PathUnescape(name); err == nil {
			name = n
		}
		if !strings.HasSuffix(name, ".whl") {
			continue
		}
		sum := ""
		if k, v, ok := strings.Cut(abs.Fragment, "="); ok && k == "sha256" {
			sum = strings.ToLower(v)
		}
		abs.Fragment = ""
		out = append(out, remoteFile{Name: name, URL: abs.String(), SHA256: sum, RequiresPython: attrs["data-requires-python"]})
	}
	return out
}

// Fetch downloads one wheel the upstream lists for its project into the store, verified
// against the published sha256. A wheel the upstream publishes without a sha256 is refused.
func (u *Upstream) Fetch(ctx context.Context, s *Store, name string) (File, error) {
	wn, err := ParseWheelName(name)
	if err != nil {
		return File{}, err
	}
	u.mu.Lock()
	l := u.inflight[name]
	if l == nil {
		l = &sync.Mutex{}
		u.inflight[name] = l
	}
	u.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	if f, ok := s.Get(name); ok {
		return f, nil // fetched by a concurrent request
	}
	files, err := u.Files(ctx, wn.Project)
	if err != nil {
		return File{}, err
	}
	var rf *remoteFile
	for i := range files {
		if files[i].Name == name {
			rf = &files[i]
		}
	}
	if rf == nil {
		return File{}, fmt.Errorf("wheel %q: not listed by %s: %w", name, u.URL(), ErrNotFound)
	}
	if rf.SHA256 == "" {
		return File{}, fmt.Errorf("wheel %q: %s publishes no sha256 for it, so it cannot be verified: %w", name, u.URL(), ErrUpstream)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rf.URL, nil)
	if err != nil {
		return File{}, err
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return File{}, fmt.Errorf("wheel %q: %v: %w", name, err, ErrUpstream)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return File{}, fmt.Errorf("wheel %q: upstream answered %s: %w", name, resp.Status, ErrUpstream)
	}
	f, err := s.Import(name, resp.Body, rf.SHA256)
	if err != nil {
		return File{}, err
	}
	u.log.Info("wheel fetched from upstream", "file", name, "upstream", u.URL())
	return f, nil
}

// Matching returns the file names of the wheels of r's newest matching version that the
// upstream lists and that suit a Linux machine of architecture arch ("x86_64"): pure-Python
// wheels and platform wheels naming that architecture.
func (u *Upstream) Matching(ctx context.Context, r Requirement, arch string) ([]string, error) {
	files, err := u.Files(ctx, r.Project)
	if err != nil {
		return nil, err
	}
	sp, err := ParseSpecifier(r.Specifier)
	if err != nil {
		return nil, err
	}
	var best *Version
	byVersion := map[string][]string{}
	for _, f := range files {
		wn, err := ParseWheelName(f.Name)
		if err != nil || wn.Project != r.Project {
			continue
		}
		if wn.Platform != "any" && !(strings.Contains(wn.Platform, "linux") && strings.Contains(wn.Platform, arch)) {
			continue
		}
		v, err := ParseVersion(wn.Version)
		if err != nil || !sp.Match(v) {
			continue
		}
		key := v.String()
		byVersion[key] = append(byVersion[key], f.Name)
		if best == nil || Compare(v, *best) > 0 {
			vv := v
			best = &vv
		}
	}
	if best == nil {
		return nil, nil
	}
	return byVersion[best.String()], nil
}
