package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/storage/wheelhouse"
)

// Wheelhouse is the box's Python package store behind /apis/v2beta1/wheels.
type Wheelhouse interface {
	// List returns every wheel.
	List() []wheelhouse.File
	// Import adds a wheel read from r under its file name.
	Import(name string, r io.Reader, wantSHA256 string) (wheelhouse.File, error)
	// Remove deletes wheels by file name, project name or NAME==VERSION.
	Remove(what string) ([]wheelhouse.File, error)
}

// MaxWheelBytes bounds one uploaded wheel (large ML wheels reach gigabytes).
const MaxWheelBytes = 8 << 30

func init() {
	registerClassifier(func(err error) (int, bool) {
		switch {
		case errors.Is(err, wheelhouse.ErrInvalid):
			return codeInvalidArgument, true
		case errors.Is(err, wheelhouse.ErrNotFound):
			return codeNotFound, true
		case errors.Is(err, wheelhouse.ErrUpstream):
			return codeUnavailable, true
		}
		return 0, false
	})
}

// registerWheelRoutes adds the wheelhouse's management routes:
//
//	GET    /wheels                    {"wheels": [...]}
//	POST   /wheels?filename=F.whl     the body is the wheel (application/octet-stream)
//	DELETE /wheels/{file|name|name==version}
func registerWheelRoutes(v2 gin.IRouter, w Wheelhouse) {
	v2.GET("/wheels", func(c *gin.Context) {
		files := w.List()
		if files == nil {
			files = []wheelhouse.File{}
		}
		writeJSON(c, gin.H{"wheels": files})
	})
	v2.POST("/wheels", func(c *gin.Context) {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxWheelBytes)
		name := c.Query("filename")
		// Only a raw body typed application/octet-stream: a browser cannot send that across
		// origins without a CORS preflight the box never grants, while a plain HTML form
		// (multipart, text/plain) could plant a wheel every task would then install.
		if ct := c.GetHeader("Content-Type"); !strings.HasPrefix(ct, "application/octet-stream") {
			abort(c, fmt.Errorf("send the wheel as the raw body with Content-Type: application/octet-stream (got %q): %w", ct, ErrInvalid))
			return
		}
		var body io.Reader = c.Request.Body
		if name == "" {
			abort(c, fmt.Errorf("give the wheel's file name: POST /wheels?filename=NAME-VERSION-PY-ABI-PLATFORM.whl: %w", ErrInvalid))
			return
		}
		f, err := w.Import(name, body, c.Query("sha256"))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = fmt.Errorf("wheel %q is larger than %d bytes: %w", name, mbe.Limit, ErrInvalid)
			}
			abort(c, err)
			return
		}
		writeJSON(c, f)
	})
	v2.DELETE("/wheels/:what", func(c *gin.Context) {
		what, err := url.PathUnescape(c.Param("what"))
		if err != nil {
			abort(c, fmt.Errorf("%v: %w", err, ErrInvalid))
			return
		}
		removed, err := w.Remove(what)
		if err != nil {
			abort(c, err)
			return
		}
		writeJSON(c, gin.H{"removed": removed})
	})
}
