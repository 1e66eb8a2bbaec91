package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/appliance/auth"
)

// TokenManager manages named tokens and login codes (auth.Store).
type TokenManager interface {
	// Create makes a named token; the secret is returned once.
	Create(ctx context.Context, name string, scope auth.Scope, ttl time.Duration) (string, auth.Token, error)
	// List returns the tokens, without secrets.
	List() []auth.Token
	// Revoke deletes a named token.
	Revoke(ctx context.Context, name string) error
	// LoginCode makes a one-time code for the UI login link.
	LoginCode(ttl time.Duration) (string, error)
}

// LoginCodeTTL is how long a login link works.
const LoginCodeTTL = 15 * time.Minute

func init() {
	registerClassifier(func(err error) (int, bool) {
		switch {
		case errors.Is(err, auth.ErrInvalid):
			return codeInvalidArgument, true
		case errors.Is(err, auth.ErrNotFound):
			return codeNotFound, true
		case errors.Is(err, auth.ErrAlreadyExists):
			return codeAlreadyExists, true
		case errors.Is(err, auth.ErrUnauthenticated):
			return codeUnauthenticated, true
		}
		return 0, false
	})
}

func (s *Server) loginRoutes() {
	s.g.GET("/login", s.loginPage)
	s.g.POST("/login", s.loginForm)
	s.g.POST("/logout", s.logout)
	if s.d.Tokens == nil {
		return
	}
	v2 := s.g.Group("/apis/v2beta1")
	v2.GET("/tokens", s.listTokens)
	v2.POST("/tokens", s.createToken)
	v2.DELETE("/tokens/:name", s.revokeToken)
	v2.POST("/login-codes", s.createLoginCode)
}

// localNext keeps a post-login redirect on this box: a path, never another host.
func localNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/login") {
		return "/"
	}
	return next
}

func (s *Server) loginPage(c *gin.Context) {
	next := localNext(c.Query("next"))
	a := s.d.Guard.Auth
	if a == nil {
		c.Redirect(http.StatusSeeOther, next)
		return
	}
	if code := c.Query("code"); code != "" {
		secret, _, err := a.Login(c.Request.Context(), code)
		if err != nil {
			s.renderLogin(c, http.StatusUnauthorized, next, err.Error())
			return
		}
		setSession(c, secret)
		c.Redirect(http.StatusSeeOther, next)
		return
	}
	s.renderLogin(c, http.StatusOK, next, "")
}

func (s *Server) loginForm(c *gin.Context) {
	next := localNext(c.PostForm("next"))
	a := s.d.Guard.Auth
	if a == nil {
		c.Redirect(http.StatusSeeOther, next)
		return
	}
	secret, _, err := a.Login(c.Request.Context(), strings.TrimSpace(c.PostForm("token")))
	if err != nil {
		s.renderLogin(c, http.StatusUnauthorized, next, "That token is not valid here: "+err.Error())
		return
	}
	setSession(c, secret)
	c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) logout(c *gin.Context) {
	if a := s.d.Guard.Auth; a != nil {
		if secret, fromCookie := credential(c.Request); fromCookie {
			_ = a.Logout(c.Request.Context(), secret)
		}
	}
	clearSession(c)
	c.Redirect(http.StatusSeeOther, "/login")
}

// renderLogin writes the login form: plain HTML, no script, so that the strict CSP holds.
func (s *Server) renderLogin(c *gin.Context, status int, next, msg string) {
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>kfp-box: log in</title><link rel="icon" href="data:,">`)
	b.WriteString(`<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#111}input[type=password]{width:100%;padding:.5rem;font-family:monospace}button{margin-top:.75rem;padding:.4rem 1rem}.err{color:#b00020}code{background:#f4f4f5;padding:0 .2rem}</style></head><body>`)
	b.WriteString(`<h1>kfp-box</h1>`)
	if msg != "" {
		b.WriteString(`<p class="err" role="alert">` + htmlEscape(msg) + `</p>`)
	}
	b.WriteString(`<form method="post" action="/login"><label for="token">Token</label><input id="token" name="token" type="password" autocomplete="off" autofocus required>`)
	b.WriteString(`<input type="hidden" name="next" value="` + htmlEscape(next) + `"><button type="submit">Log in</button></form>`)
	b.WriteString(`<p>Use the login link that <code>kfp-box serve</code> printed, <code>kfp-box token login-link</code> for a new one, or paste a token (the admin token is in <code>$DATA/auth/admin-token</code>).</p></body></html>`)
	c.Header("Cache-Control", "no-store")
	c.Data(status, "text/html; charset=utf-8", []byte(b.String()))
}

type wireToken struct {
	Name      string `json:"name"`
	Scope     string `json:"scope"`
	Token     string `json:"token,omitempty"`
	CreatedAt *ts    `json:"created_at,omitempty"`
	ExpiresAt *ts    `json:"expires_at,omitempty"`
	Session   bool   `json:"session,omitempty"`
}

func toWireToken(t auth.Token) wireToken {
	return wireToken{Name: t.Name, Scope: string(t.Scope), CreatedAt: tsOpt(t.CreatedAt), ExpiresAt: tsOpt(t.ExpiresAt), Session: t.Session}
}

func (s *Server) listTokens(c *gin.Context) {
	out := []wireToken{}
	for _, t := range s.d.Tokens.List() {
		out = append(out, toWireToken(t))
	}
	writeJSON(c, gin.H{"tokens": out})
}

func (s *Server) createToken(c *gin.Context) {
	var in struct {
		Name  string `json:"name"`
		Scope string `json:"scope"`
		// TTL is a Go duration ("24h"); empty means the token does not expire.
		TTL string `json:"ttl"`
	}
	if err := decodeBody(c, shape{}, &in); err != nil {
		abort(c, err)
		return
	}
	var ttl time.Duration
	if in.TTL != "" {
		d, err := time.ParseDuration(in.TTL)
		if err != nil {
			abort(c, fmt.Errorf("ttl %q: %v: %w", in.TTL, err, ErrInvalid))
			return
		}
		ttl = d
	}
	if in.Scope == "" {
		in.Scope = string(auth.ScopeRead)
	}
	secret, t, err := s.d.Tokens.Create(c.Request.Context(), in.Name, auth.Scope(in.Scope), ttl)
	if err != nil {
		abort(c, err)
		return
	}
	w := toWireToken(t)
	w.Token = secret
	writeJSON(c, w)
}

func (s *Server) revokeToken(c *gin.Context) {
	if err := s.d.Tokens.Revoke(c.Request.Context(), c.Param("name")); err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, empty)
}

func (s *Server) createLoginCode(c *gin.Context) {
	if s.d.Guard.Auth == nil {
		abort(c, fmt.Errorf("%v: %w", errNoAuth, ErrFailedPrecondition))
		return
	}
	code, err := s.d.Tokens.LoginCode(LoginCodeTTL)
	if err != nil {
		abort(c, err)
		return
	}
	writeJSON(c, gin.H{"path": "/login?code=" + url.QueryEscape(code), "expires_in_seconds": int(LoginCodeTTL / time.Second)})
}
