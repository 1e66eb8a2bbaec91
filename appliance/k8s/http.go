package k8s

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
)

// KubernetesVersion is what the box reports at /version: the API level its subset follows.
const KubernetesVersion = "v1.32.0"

// Routes serves the Kubernetes API paths of the subset on g.
func (s *Store) Routes(g gin.IRouter) {
	g.GET("/version", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"major": "1", "minor": "32", "gitVersion": KubernetesVersion + "+kfp-box", "platform": "linux/amd64"})
	})
	g.GET("/api", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"kind": "APIVersions", "versions": []string{"v1"},
			"serverAddressByClientCIDRs": []gin.H{{"clientCIDR": "0.0.0.0/0", "serverAddress": c.Request.Host}}})
	})
	// OpenAPI v3 for core/v1 as kubectl's client-side validation reads it: the served kinds,
	// each an object whose fields are left to the server, which checks names and keys
	// (ADR 005); without it `kubectl apply` refuses to run unless told --validate=false.
	g.GET("/openapi/v3", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"paths": gin.H{"api/v1": gin.H{"serverRelativeURL": "/openapi/v3/api/v1"}}})
	})
	g.GET("/openapi/v3/api/v1", func(c *gin.Context) {
		schemas, paths := gin.H{}, gin.H{}
		for _, r := range []struct{ resource, kind string }{{"secrets", "Secret"}, {"configmaps", "ConfigMap"}, {"pods", "Pod"},
			{"persistentvolumeclaims", "PersistentVolumeClaim"}, {"namespaces", "Namespace"}} {
			gvk := gin.H{"group": "", "kind": r.kind, "version": "v1"}
			schemas["io.k8s.api.core.v1."+r.kind] = gin.H{"type": "object", "x-kubernetes-preserve-unknown-fields": true,
				"x-kubernetes-group-version-kind": []gin.H{gvk}}
			path := "/api/v1/namespaces/{namespace}/" + r.resource + "/{name}"
			if r.resource == "namespaces" {
				path = "/api/v1/namespaces/{name}"
			}
			if r.resource != "pods" {
				// fieldValidation is taken (kubectl then validates on the server's side,
				// where names and keys are checked; unknown fields are dropped, not refused).
				paths[path] = gin.H{"patch": gin.H{
					"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch",
					"parameters": []gin.H{{"name": "fieldValidation", "in": "query", "schema": gin.H{"type": "string"}}},
					"responses":  gin.H{"200": gin.H{"description": "OK"}},
				}}
			}
		}
		c.JSON(http.StatusOK, gin.H{"openapi": "3.0.0", "info": gin.H{"title": "kfp-box", "version": KubernetesVersion},
			"paths": paths, "components": gin.H{"schemas": schemas}})
	})
	g.GET("/apis", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"kind": "APIGroupList", "apiVersion": "v1", "groups": []any{}})
	})
	g.GET("/api/v1", func(c *gin.Context) {
		verbs := []string{"create", "delete", "get", "list", "patch", "update", "watch"}
		c.JSON(http.StatusOK, gin.H{"kind": "APIResourceList", "groupVersion": "v1", "resources": []gin.H{
			{"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace", "verbs": verbs, "shortNames": []string{"ns"}},
			{"name": "persistentvolumeclaims", "singularName": "persistentvolumeclaim", "namespaced": true, "kind": "PersistentVolumeClaim", "verbs": verbs, "shortNames": []string{"pvc"}},
			{"name": "secrets", "singularName": "secret", "namespaced": true, "kind": "Secret", "verbs": verbs},
			{"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap", "verbs": verbs, "shortNames": []string{"cm"}},
			{"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": []string{"delete", "get", "list", "watch"}, "shortNames": []string{"po"}, "categories": []string{"all"}},
			{"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": []string{"get"}},
			{"name": "events", "singularName": "event", "namespaced": true, "kind": "Event", "verbs": []string{"list"}, "shortNames": []string{"ev"}},
		}})
	})
	// Namespaces go through the same handlers as namespaced objects, as resource
	// "namespaces" named by the path's {ns}.
	asNamespace := func(h gin.HandlerFunc) gin.HandlerFunc {
		return func(c *gin.Context) {
			name := c.Param("ns")
			c.Params = append(c.Params[:0:0], gin.Param{Key: "resource", Value: "namespaces"}, gin.Param{Key: "ns", Value: ""}, gin.Param{Key: "name", Value: name})
			h(c)
		}
	}
	g.GET("/api/v1/namespaces", func(c *gin.Context) { s.listAll(c, "namespaces") })
	g.POST("/api/v1/namespaces", asNamespace(s.create))
	g.GET("/api/v1/namespaces/:ns", asNamespace(s.get))
	g.PUT("/api/v1/namespaces/:ns", asNamespace(s.update))
	g.PATCH("/api/v1/namespaces/:ns", asNamespace(s.patchHTTP))
	g.DELETE("/api/v1/namespaces/:ns", asNamespace(s.remove))
	g.GET("/api/v1/namespaces/:ns/:resource", s.list)
	g.POST("/api/v1/namespaces/:ns/:resource", s.create)
	g.GET("/api/v1/namespaces/:ns/:resource/:name", s.get)
	g.PUT("/api/v1/namespaces/:ns/:resource/:name", s.update)
	g.PATCH("/api/v1/namespaces/:ns/:resource/:name", s.patchHTTP)
	g.DELETE("/api/v1/namespaces/:ns/:resource/:name", s.remove)
	g.GET("/api/v1/namespaces/:ns/:resource/:name/:sub", s.subresource)
	g.GET("/api/v1/pods", func(c *gin.Context) { s.listPodsHTTP(c, "") })
	g.GET("/api/v1/events", s.events)
	g.GET("/api/v1/secrets", func(c *gin.Context) { s.listAll(c, "secrets") })
	g.GET("/api/v1/configmaps", func(c *gin.Context) { s.listAll(c, "configmaps") })
	g.GET("/api/v1/persistentvolumeclaims", func(c *gin.Context) { s.listAll(c, "persistentvolumeclaims") })
}

// status writes a Kubernetes Status failure.
func status(c *gin.Context, err error) {
	code, reason := http.StatusInternalServerError, "InternalError"
	switch {
	case errors.Is(err, ErrNotFound):
		code, reason = http.StatusNotFound, "NotFound"
	case errors.Is(err, ErrAlreadyExists):
		code, reason = http.StatusConflict, "AlreadyExists"
	case errors.Is(err, ErrConflict):
		code, reason = http.StatusConflict, "Conflict"
	case errors.Is(err, ErrInvalid):
		code, reason = http.StatusUnprocessableEntity, "Invalid"
	case errors.Is(err, ErrForbidden):
		code, reason = http.StatusForbidden, "Forbidden"
	}
	c.AbortWithStatusJSON(code, gin.H{"kind": "Status", "apiVersion": "v1", "metadata": gin.H{},
		"status": "Failure", "message": err.Error(), "reason": reason, "code": code})
}

func (s *Store) list(c *gin.Context) {
	switch c.Param("resource") {
	case "pods":
		s.listPodsHTTP(c, c.Param("ns"))
		return
	case "events":
		s.events(c)
		return
	}
	if isWatch(c) {
		s.watchObjects(c, c.Param("resource"), c.Param("ns"))
		return
	}
	items, rev, err := s.List(c.Request.Context(), c.Param("resource"), c.Param("ns"))
	if err != nil {
		status(c, err)
		return
	}
	s.writeList(c, c.Param("resource"), items, rev)
}

// subresource serves GET .../{resource}/{name}/{sub}: pods/log.
func (s *Store) subresource(c *gin.Context) {
	if c.Param("resource") != "pods" || c.Param("sub") != "log" {
		status(c, fmt.Errorf("%s/%s: %w", c.Param("resource"), c.Param("sub"), ErrNotFound))
		return
	}
	s.podLog(c, c.Param("ns"), c.Param("name"))
}

func (s *Store) listAll(c *gin.Context, resource string) {
	if isWatch(c) {
		s.watchObjects(c, resource, "")
		return
	}
	items, rev, err := s.List(c.Request.Context(), resource, "")
	if err != nil {
		status(c, err)
		return
	}
	s.writeList(c, resource, items, rev)
}

func (s *Store) writeList(c *gin.Context, resource string, items []*Object, rev int64) {
	if items == nil {
		items = []*Object{}
	}
	if wantsTable(c) && hasTable(resource) {
		c.JSON(http.StatusOK, objectTable(resource, items, rev, c.Query("includeObject")))
		return
	}
	s.withUsage(items...)
	c.JSON(http.StatusOK, gin.H{"kind": kinds[resource] + "List", "apiVersion": "v1",
		"metadata": gin.H{"resourceVersion": strconv.FormatInt(rev, 10)}, "items": items})
}

func decode(c *gin.Context) (*Object, error) {
	b, err := io.ReadAll(c.Request.Body)
	if err != nil {
		return nil, errors.Join(ErrInvalid, err)
	}
	return DecodeBody(c.ContentType(), b)
}

func (s *Store) create(c *gin.Context) {
	ctx, err := writeContext(c)
	var o *Object
	if err == nil {
		o, err = decode(c)
	}
	if err == nil {
		o, err = s.Create(ctx, c.Param("resource"), c.Param("ns"), o)
	}
	if err != nil {
		status(c, err)
		return
	}
	c.JSON(http.StatusCreated, o)
}

func (s *Store) get(c *gin.Context) {
	if c.Param("resource") == "pods" {
		s.getPodHTTP(c, c.Param("ns"), c.Param("name"))
		return
	}
	o, err := s.Get(c.Request.Context(), c.Param("resource"), c.Param("ns"), c.Param("name"))
	if err != nil {
		status(c, err)
		return
	}
	s.withUsage(o)
	if wantsTable(c) && hasTable(c.Param("resource")) {
		c.JSON(http.StatusOK, objectTable(c.Param("resource"), []*Object{o}, 0, c.Query("includeObject")))
		return
	}
	c.JSON(http.StatusOK, o)
}

func (s *Store) update(c *gin.Context) {
	ctx, err := writeContext(c)
	var o *Object
	if err == nil {
		o, err = decode(c)
	}
	if err == nil {
		o, err = s.Update(ctx, c.Param("resource"), c.Param("ns"), c.Param("name"), o)
	}
	if err != nil {
		status(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

func (s *Store) remove(c *gin.Context) {
	if c.Param("resource") == "pods" {
		s.deletePodHTTP(c, c.Param("ns"), c.Param("name"))
		return
	}
	ctx, err := deleteContext(c)
	var o *Object
	if err == nil {
		o, err = s.Delete(ctx, c.Param("resource"), c.Param("ns"), c.Param("name"))
	}
	if err != nil {
		status(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

// DecodeBody decodes a request body given its content type (JSON or Kubernetes protobuf).
func DecodeBody(contentType string, b []byte) (*Object, error) {
	if isProtobuf(contentType, b) {
		return decodeProtobuf(b)
	}
	var o Object
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, errors.Join(ErrInvalid, err)
	}
	return &o, nil
}
