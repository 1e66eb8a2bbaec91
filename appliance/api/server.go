package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/appliance/spec"
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
	// Wheels is the Python wheelhouse behind /wheels (optional).
	Wheels Wheelhouse
	// Preflight lists, when a run is created, the tasks that will fail and why (for
	// example a pip requirement the box cannot satisfy); the run keeps them as warnings.
	Preflight func(ctx context.Context, p *spec.Pipeline) []string
}

// Server is the HTTP API.
type Server struct {
	d Deps
	g *gin.Engine
}

// New builds the API server and its routes.
func New(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 32 << 20
	}
	gin.SetMode(gin.ReleaseMode)
	g := gin.New()
	g.Use(gin.Recovery(), limitBody(d.MaxBodyBytes))
	s := &Server{d: d, g: g}
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
func (s *Server) Handler() http.Handler { return s.g }

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
	for _, add := range s.d.Routes {
		add(s.g)
	}
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
	v2.POST("/pipelines/:id/versions", s.createPipelineVersion)
	v2.GET("/pipelines/:id/versions", s.listPipelineVersions)
	v2.GET("/pipelines/:id/versions/:vid", s.getPipelineVersion)
	v2.DELETE("/pipelines/:id/versions/:vid", s.deletePipelineVersion)

	v2.POST("/runs", s.createRun)
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

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{
		"commit_sha":     s.d.Version,
		"tag_name":       s.d.Version,
		"multi_user":     false,
		"pipeline_store": "bolt",
	})
}

func limitBody(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Body != nil && c.Request.URL.Path != "/apis/v2beta1/wheels" { // wheels set their own bound
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		}
		c.Next()
	}
}
