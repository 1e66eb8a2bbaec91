package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/semaphore"

	"github.com/kfp-box/kfp-box/appliance/spec"
	rt "github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
	"github.com/kfp-box/kfp-box/storage/objects"
)

// Engine is what the API needs from the run engine. Runs are stored by the API first; the
// engine is only told their ids.
type Engine interface {
	// Submit hands a stored PENDING run to the engine.
	Submit(ctx context.Context, runID string) error
	// Terminate stops a run: CANCELING, then FAILED once its tasks stopped (as KFP does).
	Terminate(ctx context.Context, runID string) error
	// Retry re-executes the failed parts of a FAILED run.
	Retry(ctx context.Context, runID string) error
}

// RunDeletedNotifier is implemented by engines that want to hear at once that a run was
// deleted, to stop its tasks and give back what they hold without waiting for their next
// event.
type RunDeletedNotifier interface {
	// RunDeleted is called after a run that had not ended was deleted from the store.
	RunDeleted(runID string)
}

// Deps are the parts of the box the API uses. Nil optional fields disable their routes.
type Deps struct {
	Logger *slog.Logger
	Meta   *meta.Store
	Engine Engine
	// UI serves the web app for every path the API does not own (optional).
	UI http.Handler
	// Version is reported by healthz.
	Version string
	// MaxBodyBytes bounds request bodies (default 32 MiB).
	MaxBodyBytes int64
	// GPUs is the GPU inventory behind GET /gpus (optional).
	GPUs GPUInventory
	// Objects is the object store behind the artifact routes (optional).
	Objects objects.Store
	// Metrics serves /metrics in the Prometheus format (optional).
	Metrics http.Handler
	// Routes add routes outside /apis/v2beta1, such as the Kubernetes-compatible subset.
	Routes []func(gin.IRouter)
	// System describes the box for GET /system: version, runtime, storage use (optional).
	System func(ctx context.Context) any
	// GC reclaims the artifacts of deleted runs for POST /gc (?dry_run=true reports only).
	GC func(ctx context.Context, dryRun bool) (any, error)
	// OnRunDeleted is told each deleted run, to reclaim its artifacts (optional).
	OnRunDeleted func(runID string)
	// Guard is the front door's policy: hosts, origins, content types and credentials.
	Guard GuardConfig
	// Tokens manages named tokens and login codes (optional; nil removes the token routes).
	Tokens TokenManager
	// BodyBudget bounds the bytes of request bodies being handled at once (default
	// MaxBodyBytes): a request waits for its share, so that concurrent large bodies cannot
	// exhaust memory. Paths in StreamPaths (bodies streamed to disk) take no share.
	BodyBudget int64
	// StreamPaths are routes (exact, or prefixes ending in "/") whose handlers stream their
	// bodies to disk under limits of their own.
	StreamPaths []string
	// BodyReadTimeout bounds how long a client may take to send a body (default 2 minutes):
	// a client that trickles one holds a connection, and its share of the budget, no longer.
	BodyReadTimeout time.Duration
	// PackageURLHosts are hosts ("name" or "name:port") whose package_url may resolve to a
	// loopback or private address; others are refused there.
	PackageURLHosts []string
	// Wheels is the Python wheelhouse behind /wheels (optional).
	Wheels Wheelhouse
	// Preflight lists, when a run is created, the tasks that will fail and why (for
	// example a pip requirement the box cannot satisfy); the run keeps them as warnings.
	Preflight func(ctx context.Context, p *spec.Pipeline) []string
	// Images is the runtime's image store behind /images (optional: nil answers 503, as a
	// box with the host runtime keeps no images).
	Images rt.ImageStore
	// LogDir is where imported runs' task logs are written (runs:import needs it and
	// Objects).
	LogDir string
}

// Server is the HTTP API.
type Server struct {
	d       Deps
	g       *gin.Engine
	budget  *semaphore.Weighted
	fetcher *packageFetcher
}

// New builds the API server and its routes.
func New(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 32 << 20
	}
	d.Guard.UploadPaths = append(d.Guard.UploadPaths, "/apis/v2beta1/pipelines/upload", "/apis/v2beta1/pipelines/upload_version", ImportPath, ImageImportPath)
	d.StreamPaths = append(d.StreamPaths, ImportPath, "/apis/v2beta1/wheels", ImageImportPath) // they stream to disk under their own bounds
	if d.BodyReadTimeout <= 0 {
		d.BodyReadTimeout = 2 * time.Minute
	}
	if d.BodyBudget <= 0 {
		d.BodyBudget = d.MaxBodyBytes
	}
	gin.SetMode(gin.ReleaseMode)
	g := gin.New()
	s := &Server{d: d, g: g, budget: semaphore.NewWeighted(d.BodyBudget), fetcher: newPackageFetcher(d.PackageURLHosts)}
	g.Use(gin.Recovery(), s.guard, s.limitBody)
	s.loginRoutes()
	s.routes()
	g.NoRoute(s.noRoute)
	return s
}

// noRoute answers unknown API paths in KFP's error shape and hands everything else to the UI.
func (s *Server) noRoute(c *gin.Context) {
	if strings.HasPrefix(c.Request.URL.Path, "/apis/") || s.d.UI == nil {
		abort(c, fmt.Errorf("no such API route: %s %s: %w", c.Request.Method, c.Request.URL.Path, ErrNotFound))
		return
	}
	c.Status(http.StatusOK) // gin presets 404 for unmatched routes; the UI decides
	s.d.UI.ServeHTTP(c.Writer, c.Request)
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := serviceProxyPath(r.URL.Path); ok {
			r2 := r.Clone(r.Context())
			r2.URL.Path, r2.URL.RawPath = rest, ""
			r = r2
		}
		s.g.ServeHTTP(w, r)
	})
}

// serviceProxyPath maps Kubernetes' service proxy path for KFP's API and UI services,
// /api/v1/namespaces/NS/services/ml-pipeline:http/proxy/REST, to /REST: the kfp SDK sends
// its requests there when kfp.Client() has no host and reads a kubeconfig, so a kubeconfig
// pointing at the box is enough for the SDK, the kfp CLI and kubectl.
func serviceProxyPath(p string) (string, bool) {
	const pre = "/api/v1/namespaces/"
	if !strings.HasPrefix(p, pre) {
		return "", false
	}
	parts := strings.SplitN(p[len(pre):], "/", 5) // NS, services, SVC, proxy, rest
	if len(parts) < 4 || parts[1] != "services" || parts[3] != "proxy" {
		return "", false
	}
	switch parts[2] {
	case "ml-pipeline", "ml-pipeline:http", "ml-pipeline:8888", "ml-pipeline-ui", "ml-pipeline-ui:80", "ml-pipeline-ui:http":
	default:
		return "", false
	}
	rest := "/"
	if len(parts) == 5 {
		rest = "/" + strings.TrimLeft(parts[4], "/")
	}
	return rest, true
}

func (s *Server) routes() {
	v2 := s.g.Group("/apis/v2beta1")
	v2.GET("/healthz", s.healthz)
	if s.d.GPUs != nil {
		registerGPURoutes(v2, s.d.GPUs)
	}
	if s.d.System != nil {
		v2.GET("/system", func(c *gin.Context) { c.JSON(http.StatusOK, s.d.System(c.Request.Context())) })
	}
	if s.d.GC != nil {
		v2.POST("/gc", func(c *gin.Context) {
			rep, err := s.d.GC(c.Request.Context(), c.Query("dry_run") == "true" || c.Query("dry_run") == "1")
			if err != nil {
				abort(c, err)
				return
			}
			c.JSON(http.StatusOK, rep)
		})
	}
	if s.d.Metrics != nil {
		s.g.GET("/metrics", gin.WrapH(s.d.Metrics))
	}
	if s.d.Wheels != nil {
		registerWheelRoutes(v2, s.d.Wheels)
	}
	s.imageRoutes(v2)
	for _, add := range s.d.Routes {
		add(s.g)
	}
	s.v1beta1Routes()
	if s.d.Meta == nil {
		return
	}
	if s.d.Objects != nil {
		registerArtifactRoutes(v2, MetaArtifacts{s.d.Meta}, s.d.Objects)
	}

	v2.POST("/experiments", s.createExperiment)
	v2.GET("/experiments", s.listExperiments)
	v2.GET("/experiments/:id", s.getExperiment)
	v2.DELETE("/experiments/:id", s.deleteExperiment)
	v2.POST("/experiments/:id", func(c *gin.Context) {
		id, action := splitAction(c.Param("id"))
		s.experimentAction(c, id, action)
	})

	v2.POST("/pipelines/upload", s.uploadPipeline)
	v2.POST("/pipelines/upload_version", s.uploadPipelineVersion)
	v2.POST("/pipelines", s.createPipeline)
	v2.POST("/pipelines/create", s.createPipelineAndVersion)
	v2.GET("/pipelines", s.listPipelines)
	v2.GET("/pipelines/names/:name", s.getPipelineByName)
	v2.GET("/pipelines/:id", s.getPipeline)
	v2.DELETE("/pipelines/:id", s.deletePipeline)
	v2.PATCH("/pipelines/:id", s.updatePipeline)
	v2.POST("/pipelines/:id/versions", s.createPipelineVersion)
	v2.GET("/pipelines/:id/versions", s.listPipelineVersions)
	v2.GET("/pipelines/:id/versions/:vid", s.getPipelineVersion)
	v2.DELETE("/pipelines/:id/versions/:vid", s.deletePipelineVersion)
	v2.PATCH("/pipelines/:id/versions/:vid", s.updatePipelineVersion)

	v2.POST("/runs", s.createRun)
	v2.POST(`/runs\:import`, s.importRun)
	v2.GET("/runs", s.listRuns)
	v2.GET("/runs/:id", s.getRun)
	v2.DELETE("/runs/:id", s.deleteRun)
	v2.POST("/runs/:id", s.runAction)
	v2.GET("/runs/:id/tasks/:task_id/logs", s.taskLogs)

	v2.POST("/recurringruns", s.createRecurringRun)
	v2.GET("/recurringruns", s.listRecurringRuns)
	v2.GET("/recurringruns/:id", s.getRecurringRun)
	v2.DELETE("/recurringruns/:id", s.deleteRecurringRun)
	v2.POST("/recurringruns/:id", s.recurringRunAction)
}

// healthz answers KFP's healthz (v2beta1 and v1beta1). pipeline_store is "database", as KFP
// reports for its SQL store (the other value, "kubernetes", means pipelines kept as
// Kubernetes objects); the box keeps them in its metadata database.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{
		"commit_sha":     s.d.Version,
		"tag_name":       s.d.Version,
		"multi_user":     false,
		"pipeline_store": "database",
	})
}

// bodyWait bounds how long a request waits for its share of the body budget.
const bodyWait = 2 * time.Minute

// limitBody caps each body at MaxBodyBytes and makes a request hold its share of the body
// budget (its declared length, or the cap when it declares none) while it is handled.
func (s *Server) limitBody(c *gin.Context) {
	r := c.Request
	if !hasBody(r) || matchPath(r.URL.Path, s.d.StreamPaths) {
		c.Next()
		return
	}
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(s.d.BodyReadTimeout))
	r.Body = http.MaxBytesReader(c.Writer, r.Body, s.d.MaxBodyBytes)
	n := r.ContentLength
	if n < 0 || n > s.d.MaxBodyBytes {
		n = s.d.MaxBodyBytes
	}
	ctx, cancel := context.WithTimeout(r.Context(), bodyWait)
	err := s.budget.Acquire(ctx, n)
	cancel()
	if err != nil {
		abort(c, fmt.Errorf("too many large requests at once; try again: %w", ErrUnavailable))
		return
	}
	defer s.budget.Release(n)
	if n >= largeShare {
		// A large body costs a few times its size while it is decoded: start it on a heap
		// without the garbage of the previous one, and give the memory back after it, so
		// that large requests in a row do not add up.
		runtime.GC()
		defer debug.FreeOSMemory()
	}
	c.Next()
}

// largeShare is the body size from which a request collects garbage before and after.
const largeShare = 8 << 20

// matchPath says whether p is one of paths (exact, or under a prefix ending in "/").
func matchPath(p string, paths []string) bool {
	for _, u := range paths {
		if p == u || (strings.HasSuffix(u, "/") && strings.HasPrefix(p, u)) {
			return true
		}
	}
	return false
}
