package kv

import (
	"errors"
	"fmt"
	"strings"
)

// ErrEndpoint is returned by EndpointBackend for a datastore endpoint no backend serves.
var ErrEndpoint = errors.New("unsupported datastore endpoint")

// EndpointBackend names the backend that serves a datastore endpoint: "bolt" for "" (the
// box's own file), "kine" for postgres://, postgresql:// and mysql:// URLs.
func EndpointBackend(endpoint string) (string, error) {
	if endpoint == "" {
		return "bolt", nil
	}
	scheme, rest, ok := strings.Cut(endpoint, "://")
	if ok && rest != "" {
		switch scheme {
		case "postgres", "postgresql", "mysql":
			return "kine", nil
		}
	}
	return "", fmt.Errorf("%q: want empty (bbolt), postgres://... or mysql://...: %w", RedactEndpoint(endpoint), ErrEndpoint)
}

// RedactEndpoint hides the password of a datastore URL (scheme://user:password@...).
func RedactEndpoint(endpoint string) string {
	scheme, rest, ok := strings.Cut(endpoint, "://")
	if !ok {
		return endpoint
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return endpoint
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return endpoint
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
