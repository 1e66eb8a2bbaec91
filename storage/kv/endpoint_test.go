package kv

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func strconvQuote(s string) string { return strconv.Quote(s) }

func TestEndpointBackend(t *testing.T) {
	cases := []struct{ endpoint, want string }{
		{"", "bolt"},
		{"postgres://u:p@127.0.0.1:5432/kfp?sslmode=disable", "kine"},
		{"postgresql://u@/kfp?host=/run/postgresql", "kine"},
		{"mysql://u:p@tcp(127.0.0.1:3306)/kfp", "kine"},
	}
	for _, c := range cases {
		if got, err := EndpointBackend(c.endpoint); err != nil || got != c.want {
			t.Errorf("EndpointBackend(%q) = %q, %v; want %q", c.endpoint, got, err, c.want)
		}
	}
	for _, bad := range []string{"redis://user:hunter2@host/0", "localhost:5432", "postgres://", "sqlite:///x.db"} {
		if _, err := EndpointBackend(bad); !errors.Is(err, ErrEndpoint) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("EndpointBackend(%q): %v (want ErrEndpoint without the password)", bad, err)
		}
	}
	if got := RedactEndpoint("postgres://kfp:hunter2@db:5432/kfp"); got != "postgres://kfp:xxxxx@db:5432/kfp" {
		t.Fatalf("RedactEndpoint = %q", got)
	}
}

// FuzzEndpointBackend feeds arbitrary datastore endpoints: never a panic, errors wrap
// ErrEndpoint, and the password of a user:password@ URL never shows in a message.
func FuzzEndpointBackend(f *testing.F) {
	f.Add("postgres://kfp:secret@127.0.0.1:5432/kfp?sslmode=disable")
	f.Add("mysql://u:p@tcp(h:3306)/db")
	f.Add("redis://u:pass@@h/0")
	f.Add("://:@")
	f.Fuzz(func(t *testing.T, endpoint string) {
		id, err := EndpointBackend(endpoint)
		red := RedactEndpoint(endpoint)
		if _, rest, ok := strings.Cut(endpoint, "://"); ok {
			if at := strings.LastIndex(rest, "@"); at >= 0 {
				user, pass, hasPass := strings.Cut(rest[:at], ":")
				// Only a password that occurs nowhere else in the URL can be checked for.
				if hasPass && pass != "" && strings.Count(endpoint, pass) == 1 && !strings.Contains(user+rest[at:], pass) {
					scheme, _, _ := strings.Cut(endpoint, "://")
					if want := scheme + "://" + user + ":xxxxx" + rest[at:]; red != want {
						t.Fatalf("RedactEndpoint(%q) = %q, want %q", endpoint, red, want)
					}
					// The message quotes the endpoint only in its redacted form.
					if err != nil && strings.Contains(strings.ReplaceAll(err.Error(), strconvQuote(red), ""), strconvQuote(endpoint)) {
						t.Fatalf("error quotes the endpoint with its password: %v", err)
					}
				}
			}
		}
		if err != nil {
			if !strings.Contains(err.Error(), strconvQuote(red)) {
				t.Fatalf("error %v does not quote the redacted endpoint %q", err, red)
			}
			if !errors.Is(err, ErrEndpoint) {
				t.Fatalf("error %v does not wrap ErrEndpoint", err)
			}
			return
		}
		if (endpoint == "") != (id == "bolt") {
			t.Fatalf("EndpointBackend(%q) = %q", endpoint, id)
		}
	})
}
