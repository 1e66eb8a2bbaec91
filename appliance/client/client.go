package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// APIPrefix is the KFP v2beta1 REST prefix.
const APIPrefix = "/apis/v2beta1"

// Options say where a server is and how to authenticate to it. Server is required unless a
// Kubeconfig is given (then the KFP API is reached through the cluster's service proxy, as
// kfp.Client() does without a host).
type Options struct {
	// Server is the base URL (scheme://host[:port][/path]); API paths are appended to it.
	Server string
	// Token is a bearer token. TokenFile is a file holding one, read for every request.
	Token     string
	TokenFile string
	// TokenSource says where Token came from, for messages (never the token itself).
	TokenSource string
	// Kubeconfig is a kubeconfig file whose current (or Context) user's token, token file or
	// exec credential authenticates the requests, and whose cluster CA is trusted.
	Kubeconfig string
	Context    string
	// KFPNamespace is the namespace of KFP's ml-pipeline service behind the cluster's
	// service proxy ("kubeflow" when empty), used with Kubeconfig and no Server.
	KFPNamespace string
	// CAPEM is a PEM certificate (or bundle) to trust besides the system's roots.
	CAPEM []byte
	// Namespace is the user namespace of a multi-user KFP ("" for single-user servers).
	Namespace string
	// Timeout bounds each request (default 60 s); streams have none.
	Timeout time.Duration
}

// Client is a KFP v2beta1 client. It is safe for concurrent use.
type Client struct {
	base      string
	http      *http.Client
	stream    *http.Client
	token     func() (string, error)
	source    string
	namespace string
}

// New builds a client from o.
func New(o Options) (*Client, error) {
	c := &Client{namespace: o.Namespace}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	var rt http.RoundTripper
	switch {
	case o.Kubeconfig != "":
		k, err := loadKubeconfig(o.Kubeconfig, o.Context)
		if err != nil {
			return nil, err
		}
		rt, c.source = k.transport, "kubeconfig "+o.Kubeconfig
		c.base = strings.TrimRight(o.Server, "/")
		if c.base == "" {
			ns := o.KFPNamespace
			if ns == "" {
				ns = "kubeflow"
			}
			c.base = strings.TrimRight(k.host, "/") + "/api/v1/namespaces/" + ns + "/services/ml-pipeline:http/proxy"
		}
	default:
		if o.Server == "" {
			return nil, fmt.Errorf("no server URL: %w", ErrUsage)
		}
		c.base = strings.TrimRight(o.Server, "/")
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if len(o.CAPEM) > 0 {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(o.CAPEM) {
				return nil, fmt.Errorf("the CA certificate holds no PEM certificate: %w", ErrUsage)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		rt = tr
	}
	u, err := url.Parse(c.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q is not an http(s) URL: %w", c.base, ErrUsage)
	}
	switch {
	case o.Token != "":
		tok := o.Token
		c.token = func() (string, error) { return tok, nil }
		c.source = o.TokenSource
		if c.source == "" {
			c.source = "--token"
		}
	case o.TokenFile != "":
		if _, err := ReadTokenFile(o.TokenFile); err != nil {
			return nil, fmt.Errorf("token file: %v: %w", err, ErrUsage)
		}
		p := o.TokenFile
		c.token = func() (string, error) { return ReadTokenFile(p) }
		c.source = p
	}
	c.http = &http.Client{Timeout: timeout, Transport: rt}
	c.stream = &http.Client{Transport: rt}
	return c, nil
}

// ErrUsage marks a problem with the options (a bad URL, an unreadable token file).
var ErrUsage = errors.New("invalid client options")

// ReadTokenFile reads a token file, trimmed; an empty file is an error.
func ReadTokenFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("%s is empty", p)
	}
	return t, nil
}

// Base is the server's base URL.
func (c *Client) Base() string { return c.base }

// Namespace is the multi-user namespace requests are scoped to ("" for none).
func (c *Client) Namespace() string { return c.namespace }

// HasToken says whether requests carry a bearer token of the client's own (a kubeconfig's
// credentials are added by its transport).
func (c *Client) HasToken() bool { return c.token != nil }

// TokenSource says where the credentials come from ("" when none).
func (c *Client) TokenSource() string { return c.source }

// Error is an answer other than 2xx.
type Error struct {
	Status  int
	Message string
	// Method and Path are the request's.
	Method, Path string
}

func (e *Error) Error() string { return e.Message }

// IsStatus reports whether err is an Error with HTTP status code.
func IsStatus(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == code
}

// Unreachable is a request that got no answer at all.
type Unreachable struct {
	Base string
	Err  error
}

func (e *Unreachable) Error() string { return fmt.Sprintf("cannot reach %s: %v", e.Base, e.Err) }
func (e *Unreachable) Unwrap() error { return e.Err }

// URL is the full URL of an API path (which starts with "/" and may carry a query).
func (c *Client) URL(path string) string { return c.base + APIPrefix + path }

// Do sends a request with an optional JSON body (application/json) and decodes a JSON
// answer into out when it is not nil.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL(path), r)
	if err != nil {
		return fmt.Errorf("%s: %v: %w", c.base, err, ErrUsage)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, out)
}

// Upload posts data as the multipart file field "uploadfile" (as the SDK's upload routes
// take it), with query parameters q.
func (c *Client) Upload(ctx context.Context, path string, q url.Values, filename string, data []byte, out any) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("uploadfile", filename)
	if err != nil {
		return err
	}
	if _, err := fw.Write(data); err != nil {
		return err
	}
	if err := mw.Close(); err != nil {
		return err
	}
	return c.UploadStream(ctx, path, q, mw.FormDataContentType(), &buf, out)
}

// UploadStream posts a prepared multipart body (contentType carries its boundary) without
// a deadline: large archives take as long as they take.
func (c *Client) UploadStream(ctx context.Context, path string, q url.Values, contentType string, body io.Reader, out any) error {
	u := c.URL(path)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return fmt.Errorf("%s: %v: %w", c.base, err, ErrUsage)
	}
	req.Header.Set("Content-Type", contentType)
	return c.sendWith(c.stream, req, out)
}

// PostStream posts body without a deadline, accepting the media type accept, and returns
// the 200 answer for the caller to read and close (progress streams).
func (c *Client) PostStream(ctx context.Context, path, contentType, accept string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL(path), body)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", c.base, err, ErrUsage)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", accept)
	return c.doStream(req)
}

// Stream sends a GET without a deadline and returns the 200 answer for the caller to read
// and close (logs, downloads).
func (c *Client) Stream(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL(path), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", c.base, err, ErrUsage)
	}
	return c.doStream(req)
}

// doStream sends req with the streaming client and returns a 200 answer unread.
func (c *Client) doStream(req *http.Request) (*http.Response, error) {
	if err := c.authorize(req); err != nil {
		return nil, err
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		return nil, &Unreachable{Base: c.base, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, statusError(req, resp, raw)
	}
	return resp, nil
}

func (c *Client) authorize(req *http.Request) error {
	if c.token == nil {
		return nil
	}
	t, err := c.token()
	if err != nil {
		return fmt.Errorf("reading the token: %v: %w", err, ErrUsage)
	}
	req.Header.Set("Authorization", "Bearer "+t)
	return nil
}

func (c *Client) send(req *http.Request, out any) error { return c.sendWith(c.http, req, out) }

func (c *Client) sendWith(hc *http.Client, req *http.Request, out any) error {
	if err := c.authorize(req); err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &Unreachable{Base: c.base, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("reading the answer of %s: %w", req.URL.Path, err)
	}
	if resp.StatusCode/100 != 2 {
		return statusError(req, resp, raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("bad answer from %s: %w", req.URL.Path, err)
	}
	return nil
}

func statusError(req *http.Request, resp *http.Response, raw []byte) *Error {
	return &Error{Status: resp.StatusCode, Message: ErrorMessage(resp.Status, raw), Method: req.Method, Path: req.URL.Path}
}

// ErrorMessage extracts the message of a google.rpc.Status or upload error body, or quotes
// the start of any other answer with its status line.
func ErrorMessage(status string, raw []byte) string {
	var e struct {
		Message      string `json:"message"`
		ErrorMessage string `json:"error_message"`
	}
	if json.Unmarshal(raw, &e) == nil {
		if e.Message != "" {
			return e.Message
		}
		if e.ErrorMessage != "" {
			return e.ErrorMessage
		}
	}
	msg := strings.TrimSpace(string(raw))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return fmt.Sprintf("server answered %s: %s", status, msg)
}
