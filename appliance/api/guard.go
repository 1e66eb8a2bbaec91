package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/appliance/auth"
)

// This file is the box's front door: every request passes guard before any route. In
// order, it refuses a Host the box does not serve (DNS rebinding), a request a browser sent
// for a page of another origin (cross-site request forgery), a body in a content type the
// route does not document (the forms and text a page may post without a preflight), and,
// when authentication is on, a request without a credential or beyond its scope.

// Authenticator verifies credentials and turns them into UI sessions (auth.Store).
type Authenticator interface {
	// Verify says who the secret (a token or a session) belongs to.
	Verify(ctx context.Context, secret string) (auth.Principal, error)
	// Login turns a one-time code or a token into a session and returns its secret.
	Login(ctx context.Context, codeOrToken string) (string, auth.Principal, error)
	// Logout ends the session behind secret.
	Logout(ctx context.Context, secret string) error
}

// GuardConfig is the front door's policy.
type GuardConfig struct {
	// Auth verifies credentials; nil turns authentication off (`--auth none`, loopback only).
	Auth Authenticator
	// AllowedHosts are Host names served besides IP addresses and localhost names
	// (`--allowed-host`); "*" accepts any.
	AllowedHosts []string
	// DevOrigin is the web UI's development server, whose pages may call the API.
	DevOrigin string
	// UploadPaths are the routes (exact paths, or prefixes ending in "/") that take
	// multipart/form-data bodies.
	UploadPaths []string
}

// SessionCookie is the UI's session cookie.
const SessionCookie = "kfpbox_session"

// principalKey is where guard leaves the request's auth.Principal in the gin context.
const principalKey = "kfpbox.principal"

// contentSecurityPolicy lets the UI load its own scripts only; styles may be inline (artifact
// previews render HTML in a sandboxed frame without scripts).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (s *Server) guard(c *gin.Context) {
	r := c.Request
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // not no-referrer: it makes browsers send "Origin: null" on the UI's own form posts
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if s.d.Guard.DevOrigin == "" {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
	}
	g := s.d.Guard
	if !hostAllowed(r.Host, g.AllowedHosts) {
		deny(c, codePermissionDenied, fmt.Sprintf("host %q is not one this box serves (loopback names and IP addresses are; add a name with --allowed-host)", hostOnly(r.Host)))
		return
	}
	if why := crossSite(r, g.DevOrigin); why != "" {
		deny(c, codePermissionDenied, why)
		return
	}
	if why := refusedBody(r, g.UploadPaths); why != "" {
		c.Header("Accept", "application/json")
		deny415(c, why)
		return
	}
	if g.Auth == nil || public(r) {
		c.Next()
		return
	}
	secret, fromCookie := credential(r)
	if secret == "" {
		s.unauthenticated(c, "this box requires a token: send 'Authorization: Bearer TOKEN' (see 'kfp-box serve' output or docs/security.md)")
		return
	}
	p, err := g.Auth.Verify(r.Context(), secret)
	if err != nil {
		if fromCookie {
			clearSession(c)
		}
		s.unauthenticated(c, err.Error())
		return
	}
	if why := forbidden(p, r); why != "" {
		deny(c, codePermissionDenied, why)
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

// principalOf is the request's principal; ok is false when authentication is off.
func principalOf(c *gin.Context) (auth.Principal, bool) {
	v, ok := c.Get(principalKey)
	if !ok {
		return auth.Principal{}, false
	}
	p, ok := v.(auth.Principal)
	return p, ok
}

// deny answers in KFP's error shape.
func deny(c *gin.Context, code int, msg string) {
	c.AbortWithStatusJSON(httpStatus(code), rpcStatus{
		Code: code, Message: msg,
		Details: []rpcDetail{{Type: "type.googleapis.com/google.rpc.Status", Code: code, Message: msg}},
	})
}

func deny415(c *gin.Context, msg string) {
	c.AbortWithStatusJSON(http.StatusUnsupportedMediaType, rpcStatus{
		Code: codeInvalidArgument, Message: msg,
		Details: []rpcDetail{{Type: "type.googleapis.com/google.rpc.Status", Code: codeInvalidArgument, Message: msg}},
	})
}

// unauthenticated answers 401, or sends a browser that navigates to a page to the login form.
func (s *Server) unauthenticated(c *gin.Context, msg string) {
	r := c.Request
	if navigation(r) && uiPath(r.URL.Path) {
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" || r.Header.Get("Sec-Fetch-Site") == "same-site" {
			// A link from another site: SameSite=Strict kept the session cookie back. Load the
			// page again from this origin, which sends the cookie if there is one.
			c.Header("Cache-Control", "no-store")
			c.Data(http.StatusOK, "text/html; charset=utf-8", []byte(`<!doctype html><meta http-equiv="refresh" content="0;url=`+htmlEscape(r.URL.RequestURI())+`"><title>kfp-box</title>`))
			c.Abort()
			return
		}
		c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(r.URL.RequestURI()))
		c.Abort()
		return
	}
	c.Header("WWW-Authenticate", `Bearer realm="kfp-box"`)
	deny(c, codeUnauthenticated, msg)
}

// hostAllowed accepts IP literals (a page can only reach an address it names by that address,
// so it is its own origin), localhost names, and the configured names.
func hostAllowed(hostport string, allowed []string) bool {
	h := strings.ToLower(hostOnly(hostport))
	if h == "" {
		return false
	}
	if net.ParseIP(h) != nil || h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	for _, a := range allowed {
		a = strings.ToLower(a)
		if a == "*" || a == h || (strings.HasPrefix(a, "*.") && strings.HasSuffix(h, a[1:])) {
			return true
		}
	}
	return false
}

// hostOnly strips the port and IPv6 brackets from a Host header.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// crossSite says why a request a browser made for another origin's page is refused ("" when
// it is not). Requests from programs carry neither Origin nor Sec-Fetch-Site and pass; a
// browser always sends Origin with a POST and Sec-Fetch-Site with everything. A top-level
// navigation from another site (a link to a run) may GET a page.
func crossSite(r *http.Request, devOrigin string) string {
	if o := r.Header.Get("Origin"); o != "" {
		if o == devOrigin && devOrigin != "" {
			return ""
		}
		if !sameOrigin(o, r) {
			return fmt.Sprintf("cross-origin request from %q refused: the box's API answers its own pages and programs only", o)
		}
		return ""
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return ""
	}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get("Sec-Fetch-Mode") == "navigate" {
		return ""
	}
	return "cross-site request refused (Sec-Fetch-Site: " + r.Header.Get("Sec-Fetch-Site") + ")"
}

// sameOrigin compares an Origin header with the origin the request was sent to.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // includes "null": sandboxed frames, file: pages
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}

// refusedBody says why a request body's content type is refused ("" when it is not). Bodies
// of the types a page may send without a preflight are refused unless the route documents
// them: multipart uploads on upload routes, and the login form.
func refusedBody(r *http.Request, uploads []string) string {
	if !hasBody(r) {
		return ""
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return "a request body needs a Content-Type: application/json for the API (curl: -H 'Content-Type: application/json')"
	}
	switch mt {
	case "text/plain", "application/x-www-form-urlencoded", "multipart/form-data":
	default:
		return "" // not a type a page can send without a preflight; the handler checks it
	}
	p := r.URL.Path
	if mt == "application/x-www-form-urlencoded" && (p == "/login" || p == "/logout") {
		return ""
	}
	if mt == "multipart/form-data" && matchPath(p, uploads) {
		return ""
	}
	return fmt.Sprintf("content type %q is not accepted by %s %s: send JSON as application/json (uploads: multipart/form-data on their upload routes)", mt, r.Method, p)
}

func hasBody(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// public routes need no credential: health checks, the login form, and the UI's static
// files (the app itself holds no data; pages a browser navigates to go through the login).
func public(r *http.Request) bool {
	p := r.URL.Path
	switch p {
	case "/apis/v2beta1/healthz", "/apis/v1beta1/healthz", "/login", "/logout":
		return true
	}
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && uiPath(p) && !navigation(r)
}

// uiPath says whether a path belongs to the web UI rather than an API.
func uiPath(p string) bool {
	for _, api := range []string{"/apis", "/api", "/metrics", "/pypi", "/version", "/openapi", "/login", "/logout"} {
		if p == api || strings.HasPrefix(p, api+"/") {
			return false
		}
	}
	return true
}

// navigation says whether a browser is loading a page (rather than a script, an image or a
// program's request).
func navigation(r *http.Request) bool {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// credential finds the request's secret: a bearer token, a Basic password (pip and other
// tools that only speak Basic), or the UI's session cookie.
func credential(r *http.Request) (secret string, fromCookie bool) {
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, rest, _ := strings.Cut(a, " ")
		switch strings.ToLower(scheme) {
		case "bearer":
			return strings.TrimSpace(rest), false
		case "basic":
			if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest)); err == nil {
				_, pw, _ := strings.Cut(string(b), ":")
				return pw, false
			}
		}
		return "", false
	}
	if ck, err := r.Cookie(SessionCookie); err == nil {
		return ck.Value, true
	}
	return "", false
}

// forbidden says why p may not make request r ("" when it may). Admin may do everything;
// read and run tokens may read, but neither Secrets nor tokens.
func forbidden(p auth.Principal, r *http.Request) string {
	if p.Scope == auth.ScopeAdmin {
		return ""
	}
	path := r.URL.Path
	if r.Method == http.MethodPost && path == "/logout" {
		return ""
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return fmt.Sprintf("token %q has %s scope: it cannot %s %s", p.Name, p.Scope, r.Method, path)
	}
	if secretsPath(path) || strings.HasPrefix(path, "/apis/v2beta1/tokens") {
		return fmt.Sprintf("token %q has %s scope: it cannot read %s", p.Name, p.Scope, path)
	}
	return ""
}

// secretsPath matches the Kubernetes subset's Secrets, listed or single, in any namespace.
func secretsPath(p string) bool {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	for i, s := range parts {
		if s == "secrets" && i >= 2 && parts[0] == "api" {
			return true
		}
	}
	return false
}

// clearSession drops the session cookie.
func clearSession(c *gin.Context) {
	http.SetCookie(c.Writer, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: c.Request.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// setSession sets the session cookie: HttpOnly, SameSite=Strict, and Secure over HTTPS.
func setSession(c *gin.Context, secret string) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: SessionCookie, Value: secret, Path: "/", MaxAge: int(auth.SessionTTL / time.Second),
		HttpOnly: true, Secure: c.Request.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

var errNoAuth = errors.New("authentication is off on this box (--auth none)")

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}
