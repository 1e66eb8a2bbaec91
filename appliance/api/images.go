package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/runtime"
)

// The box's image routes (a kfp-box extension; KFP has none): the images its containerd
// runtime keeps for tasks, so that `kfp-box image` works against a running box, remote or
// local, without access to its containerd socket.
//
//	GET    /apis/v2beta1/images              {"images": [{name, digest, size, created_at}]}
//	POST   /apis/v2beta1/images:import       multipart, the tarball as "uploadfile"; ?name=REF
//	                                         names an OCI layout image whose index names none
//	POST   /apis/v2beta1/images:pull         {"ref": REF}; answers {"name": FULL_REF}; with
//	                                         "Accept: application/x-ndjson", one JSON object
//	                                         per line while it pulls (PullEvent): progress,
//	                                         then the name or an error in KFP's shape
//	DELETE /apis/v2beta1/images/REF          REF may hold slashes (docker.io/library/x:1)
const (
	ImagesPath      = "/apis/v2beta1/images"
	ImageImportPath = "/apis/v2beta1/images:import"
	ImagePullPath   = "/apis/v2beta1/images:pull"
)

// imageReadTimeout bounds how long a client may take to send an image tarball.
const imageReadTimeout = time.Hour

// MaxImageBytes bounds one image tarball sent to images:import.
const MaxImageBytes = 64 << 30

func init() {
	registerClassifier(func(err error) (int, bool) {
		switch {
		case errors.Is(err, runtime.ErrImageNotFound):
			return codeNotFound, true
		case errors.Is(err, runtime.ErrInvalid):
			return codeInvalidArgument, true
		}
		return 0, false
	})
}

func (s *Server) imageRoutes(v2 gin.IRouter) {
	v2.GET("/images", s.listImages)
	v2.POST(`/images\:import`, s.importImages)
	v2.POST(`/images\:pull`, s.pullImage)
	v2.DELETE("/images/*ref", s.removeImage)
}

// images returns the box's image store, or aborts with 503 when its runtime keeps none.
func (s *Server) images(c *gin.Context) (runtime.ImageStore, bool) {
	if s.d.Images == nil {
		abort(c, fmt.Errorf("this box runs tasks as host processes and keeps no images (start it with --runtime containerd or auto where containerd works): %w", ErrUnavailable))
		return nil, false
	}
	return s.d.Images, true
}

type wireImage struct {
	Name      string `json:"name"`
	Digest    string `json:"digest"`
	Size      string `json:"size"` // int64 as a string, as KFP's JSON writes 64-bit integers
	CreatedAt *ts    `json:"created_at,omitempty"`
}

func (s *Server) listImages(c *gin.Context) {
	is, ok := s.images(c)
	if !ok {
		return
	}
	imgs, err := is.Images(c.Request.Context())
	if err != nil {
		abort(c, err)
		return
	}
	out := make([]wireImage, 0, len(imgs))
	for _, i := range imgs {
		out = append(out, wireImage{Name: i.Name, Digest: i.Digest, Size: fmt.Sprint(i.Size), CreatedAt: tsOpt(i.CreatedAt)})
	}
	writeJSON(c, gin.H{"images": out})
}

// importImages serves POST /images:import, streaming the tarball into containerd.
func (s *Server) importImages(c *gin.Context) {
	is, ok := s.images(c)
	if !ok {
		return
	}
	name := c.Query("name")
	if name != "" {
		if _, err := reference.ParseDockerRef(name); err != nil {
			abort(c, fmt.Errorf("name %q is not an image reference: %v: %w", name, err, ErrInvalid))
			return
		}
	}
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(imageReadTimeout))
	part, ok := uploadPart(c, ImageImportPath, "image tarball")
	if !ok {
		return
	}
	lr := &io.LimitedReader{R: part, N: MaxImageBytes + 1}
	names, err := is.ImportImages(c.Request.Context(), lr, name)
	if lr.N <= 0 {
		abort(c, fmt.Errorf("the image tarball is larger than %d bytes: %w", int64(MaxImageBytes), ErrInvalid))
		return
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		abort(c, err)
		return
	}
	s.d.Logger.Info("imported images", "images", names)
	writeJSON(c, gin.H{"images": names})
}

// PullStreamType is the media type a client accepts to get images:pull's progress.
const PullStreamType = "application/x-ndjson"

// PullEvent is one line of a streamed images:pull answer: Progress lines while the pull
// runs (bytes fetched and known so far, both growing as manifests reveal layers), then one
// line with Name (the pulled image) or Error (KFP's error shape, as a failed request has).
type PullEvent struct {
	Progress *PullProgress `json:"progress,omitempty"`
	Name     string        `json:"name,omitempty"`
	Error    *PullError    `json:"error,omitempty"`
}

// PullProgress is the bytes of a pull so far.
type PullProgress struct {
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
}

// PullError is a failed pull: the google.rpc code and message KFP's error shape carries,
// and the HTTP status the same failure has without streaming.
type PullError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  int    `json:"http_status"`
}

// pullImage serves POST /images:pull; it answers when the image is stored and unpacked, or,
// for a client that accepts PullStreamType, streams PullEvents as the pull goes.
func (s *Server) pullImage(c *gin.Context) {
	is, ok := s.images(c)
	if !ok {
		return
	}
	var in struct {
		Ref string `json:"ref"`
	}
	if err := decodeBody(c, shape{}, &in); err != nil {
		abort(c, err)
		return
	}
	if _, err := reference.ParseDockerRef(in.Ref); err != nil {
		abort(c, fmt.Errorf("ref %q is not an image reference: %v: %w", in.Ref, err, ErrInvalid))
		return
	}
	if strings.Contains(c.GetHeader("Accept"), PullStreamType) {
		s.pullImageStream(c, is, in.Ref)
		return
	}
	name, err := is.PullImage(c.Request.Context(), in.Ref, nil)
	if err != nil {
		abort(c, fmt.Errorf("pull %s: %w", in.Ref, err))
		return
	}
	s.d.Logger.Info("pulled an image", "image", name)
	writeJSON(c, gin.H{"name": name})
}

// pullImageStream runs a pull whose request was valid, writing its progress as it comes:
// the status is 200 once the first line is out, so a failure is the last line's Error.
func (s *Server) pullImageStream(c *gin.Context, is runtime.ImageStore, ref string) {
	c.Header("Content-Type", PullStreamType)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	rc := http.NewResponseController(c.Writer)
	enc := json.NewEncoder(c.Writer)
	send := func(ev PullEvent) {
		// A client that went away ends the request's context, and with it the pull.
		if enc.Encode(ev) == nil {
			_ = rc.Flush()
		}
	}
	send(PullEvent{Progress: &PullProgress{}})
	var last PullProgress
	name, err := is.PullImage(c.Request.Context(), ref, func(done, total int64) {
		if p := (PullProgress{Done: done, Total: total}); p != last {
			last = p
			send(PullEvent{Progress: &p})
		}
	})
	if err != nil {
		err = fmt.Errorf("pull %s: %w", ref, err)
		send(PullEvent{Error: &PullError{Code: grpcCode(err), Message: err.Error(), Status: httpStatus(grpcCode(err))}})
		return
	}
	s.d.Logger.Info("pulled an image", "image", name)
	send(PullEvent{Name: name})
}

// removeImage serves DELETE /images/REF.
func (s *Server) removeImage(c *gin.Context) {
	is, ok := s.images(c)
	if !ok {
		return
	}
	ref := strings.TrimPrefix(c.Param("ref"), "/")
	if _, err := reference.ParseDockerRef(ref); err != nil {
		abort(c, fmt.Errorf("%q is not an image reference: %v: %w", ref, err, ErrInvalid))
		return
	}
	if err := is.RemoveImage(c.Request.Context(), ref); err != nil {
		abort(c, err)
		return
	}
	s.d.Logger.Info("removed an image", "image", ref)
	writeJSON(c, gin.H{})
}
