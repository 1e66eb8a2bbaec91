package api

import (
	"errors"
	"net/http"
	"syscall"

	"github.com/gin-gonic/gin"
)

// gRPC status codes used in KFP's error body (google.rpc.Status).
const (
	codeInvalidArgument    = 3
	codeNotFound           = 5
	codeAlreadyExists      = 6
	codePermissionDenied   = 7
	codeResourceExhausted  = 8
	codeFailedPrecondition = 9
	codeInternal           = 13
	codeUnavailable        = 14
	codeUnauthenticated    = 16
)

// Sentinel errors understood by the API layer. Other packages' sentinels are mapped in
// classify; handlers may also wrap these directly.
var (
	ErrInvalid            = errors.New("invalid argument")
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrUnavailable        = errors.New("unavailable")
	// ErrUnsupportedMediaType is a body in a content type the route does not take (415).
	ErrUnsupportedMediaType = errors.New("unsupported media type")
)

// classifiers map errors from other packages to a gRPC code; backends add theirs in init
// with registerClassifier so that this file does not import every backend.
var classifiers []func(error) (int, bool)

// registerClassifier adds a mapping from an error to a gRPC code.
func registerClassifier(f func(error) (int, bool)) { classifiers = append(classifiers, f) }

func grpcCode(err error) int {
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrUnsupportedMediaType):
		return codeInvalidArgument
	case errors.Is(err, ErrNotFound):
		return codeNotFound
	case errors.Is(err, ErrAlreadyExists):
		return codeAlreadyExists
	case errors.Is(err, ErrFailedPrecondition):
		return codeFailedPrecondition
	case errors.Is(err, ErrUnavailable):
		return codeUnavailable
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return codeResourceExhausted
	}
	for _, f := range classifiers {
		if c, ok := f(err); ok {
			return c
		}
	}
	return codeInternal
}

func httpStatus(code int) int {
	switch code {
	case codeInvalidArgument, codeFailedPrecondition:
		return http.StatusBadRequest
	case codeNotFound:
		return http.StatusNotFound
	case codeAlreadyExists:
		return http.StatusConflict
	case codePermissionDenied:
		return http.StatusForbidden
	case codeUnauthenticated:
		return http.StatusUnauthorized
	case codeUnavailable:
		return http.StatusServiceUnavailable
	case codeResourceExhausted:
		// A full disk: 507 Insufficient Storage says exactly that. Not grpc-gateway's 429,
		// which asks the client to slow down, nor 503, which clients and proxies retry as
		// an overload that passes; this lasts until someone frees space.
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

// rpcStatus is the google.rpc.Status body grpc-gateway writes for errors.
type rpcStatus struct {
	Code    int         `json:"code"`
	Message string      `json:"message"`
	Details []rpcDetail `json:"details,omitempty"`
}

type rpcDetail struct {
	Type    string `json:"@type"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// abort writes err in KFP's error shape and stops the handler chain.
func abort(c *gin.Context, err error) {
	code := grpcCode(err)
	msg := err.Error()
	status := httpStatus(code)
	if errors.Is(err, ErrUnsupportedMediaType) {
		status = http.StatusUnsupportedMediaType
	}
	c.AbortWithStatusJSON(status, rpcStatus{
		Code:    code,
		Message: msg,
		Details: []rpcDetail{{Type: "type.googleapis.com/google.rpc.Status", Code: code, Message: msg}},
	})
}

// abortUpload writes err in the plain shape the upload handlers use.
func abortUpload(c *gin.Context, err error) {
	c.AbortWithStatusJSON(httpStatus(grpcCode(err)), gin.H{
		"error_message": err.Error(),
		"error_details": err.Error(),
	})
}
