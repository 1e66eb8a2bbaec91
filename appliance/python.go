package appliance

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/appliance/pyenv"
	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/runtime/host"
	"github.com/kfp-box/kfp-box/storage/wheelhouse"
)

// pypiPrefix is where the box serves its package index: <prefix>/simple/ (PEP 503/691).
const pypiPrefix = "/pypi"

// setupWheelhouse opens $DATA/wheelhouse, the upstream index when --pypi-upstream is set,
// and, for the host runtime, probes --host-python.
func (a *Appliance) setupWheelhouse(ctx context.Context) error {
	log := a.logger.With("component", "wheelhouse")
	wh, err := wheelhouse.Open(filepath.Join(a.cfg.DataDir, "wheelhouse"), log)
	if err != nil {
		return err
	}
	a.wheels = wh
	if a.cfg.PypiUpstream != "" {
		up, err := wheelhouse.NewUpstream(a.cfg.PypiUpstream, log)
		if err != nil {
			return err
		}
		a.upstream = up
		log.Info("pulling missing wheels through from upstream", "upstream", up.URL())
	}
	a.python = pyenv.Probe(ctx, a.cfg.HostPython)
	if a.runtime != nil && a.runtime.Name() == host.ID && a.taskUser != nil && a.taskUser.UID != 0 && a.python.Problem == "" {
		a.python = a.pythonForTaskUser(ctx)
	}
	if a.runtime != nil && a.runtime.Name() == host.ID {
		plog := a.logger.With("component", "pyenv")
		if a.python.Problem != "" {
			plog.Warn("host tasks that run Python will fail", "problem", a.python.Problem)
		} else {
			plog.Info("host Python", "path", a.python.Path, "version", a.python.Version, "externally_managed", a.python.ExternallyManaged)
		}
		a.pyenvs = pyenv.NewManager(pyenv.Config{
			Interpreter: a.python, Dir: filepath.Join(a.cfg.DataDir, "pyenv"),
			IndexURL: func() string { return a.packageIndexURL("") }, Upstream: a.upstreamURL(), Logger: plog,
			MountAt: "/kfp-box/python", // the data directory is hidden from tasks
		})
	}
	return nil
}

// pythonForTaskUser makes sure the host Python can be run by the user tasks run as: an
// interpreter under root's home (a pyenv of root's) cannot. The default, python3 on the
// box's PATH, then falls back to the system's /usr/bin/python3; an interpreter named with
// --host-python is kept, with the problem reported.
func (a *Appliance) pythonForTaskUser(ctx context.Context) pyenv.Interpreter {
	uid, gid := int(a.taskUser.UID), int(a.taskUser.GID)
	in := a.python
	if pyenv.UsableBy(in.Path, uid, gid) {
		return in
	}
	if a.cfg.HostPython == Defaults().HostPython && in.Path != "/usr/bin/python3" {
		if sys := pyenv.Probe(ctx, "/usr/bin/python3"); sys.Problem == "" && pyenv.UsableBy(sys.Path, uid, gid) {
			a.logger.Warn("python3 on the box's PATH is closed to the task user; host tasks use the system's", "closed", in.Path, "using", sys.Path)
			return sys
		}
	}
	in.Problem = fmt.Sprintf("host Python %s cannot be run by the task user (uid %d): a directory on its path is closed to that user; point --host-python at an interpreter every user can run, such as /usr/bin/python3", in.Path, uid)
	return in
}

func (a *Appliance) upstreamURL() string {
	if a.upstream == nil {
		return ""
	}
	return a.upstream.URL()
}

// packageIndexURL is the URL of the box's package index as a task of runID reaches it
// (tasks share the host network, so loopback works on both runtimes). It is the engine's
// one source of PIP_INDEX_URL. When the box requires tokens, the URL carries the run's
// token as its Basic password (pip sends it, and masks it in what it prints); runID ""
// is the box's own pip, which gets a service token.
func (a *Appliance) packageIndexURL(runID string) string {
	base := a.taskAPIURL()
	if base == "" {
		return ""
	}
	if a.AuthEnabled() && a.auth != nil {
		tok := a.auth.ServiceToken("pyenv")
		if runID != "" {
			tok = a.auth.RunToken(runID)
		}
		base = strings.Replace(base, "://", "://kfp-box:"+tok+"@", 1)
	}
	return base + pypiPrefix + "/simple/"
}

// pypiRoutes serves the package index at /pypi/.
func (a *Appliance) pypiRoutes(r gin.IRouter) {
	ix := &wheelhouse.Index{Store: a.wheels, Upstream: a.upstream, Prefix: pypiPrefix}
	h := gin.WrapH(http.Handler(ix))
	r.GET(pypiPrefix+"/*path", h)
	r.HEAD(pypiPrefix+"/*path", h)
}

// preflight lists the tasks of a new run whose pip installs the box cannot satisfy.
func (a *Appliance) preflight(_ context.Context, p *spec.Pipeline) []string {
	return pyenv.Preflight(p, pyenv.PreflightOptions{Wheels: a.wheels, Upstream: a.upstreamURL(), ContainerRuntime: a.runtime.Name() != host.ID})
}

// pythonInfo is the "python" part of GET /system.
func (a *Appliance) pythonInfo() map[string]any {
	var n, size int64
	for _, f := range a.wheels.List() {
		n++
		size += f.Size
	}
	out := map[string]any{
		"host_python": a.python,
		"wheelhouse":  map[string]any{"dir": a.wheels.Dir(), "wheels": n, "bytes": size, "index_url": a.packageIndexURL("")},
	}
	if a.upstream != nil {
		out["pypi_upstream"] = a.upstream.URL()
	}
	return out
}
