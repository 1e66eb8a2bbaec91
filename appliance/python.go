package appliance

import (
	"context"
	"net"
	"net/http"
	"path/filepath"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/appliance/pyenv"
	"github.com/kfp-box/kfp-box/appliance/spec"
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
	if a.runtime != nil && a.runtime.Name() == "host" {
		plog := a.logger.With("component", "pyenv")
		if a.python.Problem != "" {
			plog.Warn("host tasks that run Python will fail", "problem", a.python.Problem)
		} else {
			plog.Info("host Python", "path", a.python.Path, "version", a.python.Version, "externally_managed", a.python.ExternallyManaged)
		}
		a.pyenvs = pyenv.NewManager(pyenv.Config{
			Interpreter: a.python, Dir: filepath.Join(a.cfg.DataDir, "pyenv"),
			IndexURL: func() string { return a.packageIndexURL("") }, Upstream: a.upstreamURL(), Logger: plog,
		})
	}
	return nil
}

func (a *Appliance) upstreamURL() string {
	if a.upstream == nil {
		return ""
	}
	return a.upstream.URL()
}

// packageIndexURL is the URL of the box's package index as a task of runID reaches it
// (tasks share the host network, so loopback works on both runtimes). It is the engine's
// one source of PIP_INDEX_URL.
func (a *Appliance) packageIndexURL(runID string) string {
	_ = runID // a run-scoped credential goes here once the API requires one
	if a.httpLn == nil {
		return ""
	}
	addr, ok := a.httpLn.Addr().(*net.TCPAddr)
	if !ok {
		return ""
	}
	host := addr.IP
	if host == nil || host.IsUnspecified() {
		host = net.IPv4(127, 0, 0, 1)
		if addr.IP != nil && addr.IP.To4() == nil {
			host = net.IPv6loopback
		}
	}
	return "http://" + net.JoinHostPort(host.String(), itoa(addr.Port)) + pypiPrefix + "/simple/"
}

func itoa(n int) string {
	b := [20]byte{}
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
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
	return pyenv.Preflight(p, pyenv.PreflightOptions{Wheels: a.wheels, Upstream: a.upstreamURL(), ContainerRuntime: a.runtime.Name() != "host"})
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
