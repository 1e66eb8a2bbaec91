package wheelhouse

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
)

// Index serves the wheelhouse over HTTP under a prefix (for example "/pypi"):
//
//	GET <prefix>/simple/             the projects (PEP 503 HTML, or PEP 691 JSON by Accept)
//	GET <prefix>/simple/<project>/   the project's wheels with #sha256= links
//	GET <prefix>/files/<file>        a wheel
//
// With an Upstream, project pages list the upstream's wheels too, and a wheel not yet in
// the wheelhouse is fetched, verified and kept on first download.
type Index struct {
	Store    *Store
	Upstream *Upstream // nil: offline
	Prefix   string
}

// ServeHTTP implements http.Handler.
func (ix *Index) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the package index is read-only", http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, strings.TrimRight(ix.Prefix, "/")+"/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch {
	case rest == "simple" || rest == "simple/":
		if rest == "simple" {
			http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
			return
		}
		ix.serveRoot(w, r)
	case strings.HasPrefix(rest, "simple/"):
		name := strings.TrimPrefix(rest, "simple/")
		if n := Normalize(strings.TrimSuffix(name, "/")); name != n+"/" {
			http.Redirect(w, r, strings.TrimRight(ix.Prefix, "/")+"/simple/"+n+"/", http.StatusMovedPermanently)
			return
		}
		ix.serveProject(w, r, strings.TrimSuffix(name, "/"))
	case strings.HasPrefix(rest, "files/"):
		ix.serveFile(w, r, strings.TrimPrefix(rest, "files/"))
	default:
		http.NotFound(w, r)
	}
}

// wantsJSON reports whether the client prefers PEP 691 JSON (pip 22.2 and later ask for it).
func wantsJSON(r *http.Request) bool {
	if r.URL.Query().Get("format") == mediaJSON {
		return true
	}
	best, bestQ := "", -1.0
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		fields := strings.Split(part, ";")
		media := strings.TrimSpace(fields[0])
		q := 1.0
		for _, f := range fields[1:] {
			if k, v, ok := strings.Cut(strings.TrimSpace(f), "="); ok && k == "q" {
				fmt.Sscanf(v, "%g", &q)
			}
		}
		if (media == mediaJSON || media == mediaHTML || media == "text/html") && q > bestQ {
			best, bestQ = media, q
		}
	}
	return best == mediaJSON
}

func (ix *Index) serveRoot(w http.ResponseWriter, r *http.Request) {
	projects := ix.Store.Projects()
	if wantsJSON(r) {
		type proj struct {
			Name string `json:"name"`
		}
		body := struct {
			Meta     map[string]string `json:"meta"`
			Projects []proj            `json:"projects"`
		}{Meta: map[string]string{"api-version": "1.0"}, Projects: []proj{}}
		for _, p := range projects {
			body.Projects = append(body.Projects, proj{p})
		}
		writeIndexJSON(w, body)
		return
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>kfp-box wheelhouse</title></head><body>\n")
	for _, p := range projects {
		fmt.Fprintf(&b, "<a href=\"%s/\">%s</a><br>\n", url.PathEscape(p), html.EscapeString(p))
	}
	b.WriteString("</body></html>\n")
	writeIndexHTML(w, b.String())
}

// entry is one file a project page lists.
type entry struct {
	name, sha, requiresPython string
}

func (ix *Index) serveProject(w http.ResponseWriter, r *http.Request, project string) {
	seen := map[string]bool{}
	var files []entry
	for _, f := range ix.Store.Project(project) {
		seen[f.Name] = true
		files = append(files, entry{f.Name, f.SHA256, f.RequiresPython})
	}
	if ix.Upstream != nil {
		remote, err := ix.Upstream.Files(r.Context(), project)
		if err != nil {
			ix.Store.log.Warn("upstream index unreachable; serving the wheelhouse only", "project", project, "err", err)
		}
		for _, f := range remote {
			if !seen[f.Name] && f.SHA256 != "" {
				seen[f.Name] = true
				files = append(files, entry{f.Name, f.SHA256, f.RequiresPython})
			}
		}
	}
	if len(files) == 0 {
		msg := fmt.Sprintf("project %q is not in the kfp-box wheelhouse; add it with: kfp-box wheels import FILE.whl", project)
		if ix.Upstream != nil {
			msg = fmt.Sprintf("project %q is neither in the kfp-box wheelhouse nor on %s", project, ix.Upstream.URL())
		}
		http.Error(w, msg, http.StatusNotFound)
		return
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	if wantsJSON(r) {
		type file struct {
			Filename       string            `json:"filename"`
			URL            string            `json:"url"`
			Hashes         map[string]string `json:"hashes"`
			RequiresPython string            `json:"requires-python,omitempty"`
		}
		body := struct {
			Meta  map[string]string `json:"meta"`
			Name  string            `json:"name"`
			Files []file            `json:"files"`
		}{Meta: map[string]string{"api-version": "1.0"}, Name: project}
		for _, f := range files {
			body.Files = append(body.Files, file{f.name, "../../files/" + url.PathEscape(f.name), map[string]string{"sha256": f.sha}, f.requiresPython})
		}
		writeIndexJSON(w, body)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Links for %s</title></head><body>\n<h1>Links for %s</h1>\n", html.EscapeString(project), html.EscapeString(project))
	for _, f := range files {
		rp := ""
		if f.requiresPython != "" {
			rp = fmt.Sprintf(" data-requires-python=\"%s\"", html.EscapeString(f.requiresPython))
		}
		fmt.Fprintf(&b, "<a href=\"../../files/%s#sha256=%s\"%s>%s</a><br>\n", url.PathEscape(f.name), f.sha, rp, html.EscapeString(f.name))
	}
	b.WriteString("</body></html>\n")
	writeIndexHTML(w, b.String())
}

func (ix *Index) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	if n, err := url.PathUnescape(name); err == nil {
		name = n
	}
	if _, err := ParseWheelName(name); err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	f, ok := ix.Store.Get(name)
	if !ok && ix.Upstream != nil {
		var err error
		f, err = ix.Upstream.Fetch(r.Context(), ix.Store, name)
		if err != nil {
			status := http.StatusBadGateway
			if errors.Is(err, ErrNotFound) {
				status = http.StatusNotFound
			}
			ix.Store.log.Warn("pull-through failed", "file", name, "err", err)
			http.Error(w, err.Error(), status)
			return
		}
		ok = true
	}
	if !ok {
		http.Error(w, fmt.Sprintf("wheel %q is not in the kfp-box wheelhouse; add it with: kfp-box wheels import %s", name, name), http.StatusNotFound)
		return
	}
	fh, err := os.Open(ix.Store.Path(f.Name))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	defer fh.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+f.SHA256+`"`)
	http.ServeContent(w, r, f.Name, f.AddedAt, fh)
}

func writeIndexJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", mediaJSON)
	w.Header().Set("Vary", "Accept")
	_ = json.NewEncoder(w).Encode(v)
}

func writeIndexHTML(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", mediaHTML)
	w.Header().Set("Vary", "Accept")
	_, _ = w.Write([]byte(body))
}
