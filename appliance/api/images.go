package api

import (
	"context"
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
//	POST   /apis/v2beta1/images:pull         {"ref": REF}; answers {"name": FULL_REF}
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
	mr, err := c.Request.MultipartReader()
	if err != nil {
		abort(c, fmt.Errorf("POST %s takes multipart/form-data with the tarball as \"uploadfile\": %v: %w", ImageImportPath, err, ErrInvalid))
		return
	}
	var part io.Reader
	for part == nil {
		p, err := mr.NextPart()
		if err != nil {
			abort(c, fmt.Errorf("no multipart field \"uploadfile\" holding the image tarball: %w", ErrInvalid))
			return
		}
		if p.FormName() == "uploadfile" {
			part = p
		}
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

// pullImage serves POST /images:pull; it answers when the image is stored and unpacked.
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
	name, err := is.PullImage(c.Request.Context(), in.Ref, nil)
	if err != nil {
		abort(c, fmt.Errorf("pull %s: %w", in.Ref, err))
		return
	}
	s.d.Logger.Info("pulled an image", "image", name)
	writeJSON(c, gin.H{"name": name})
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
