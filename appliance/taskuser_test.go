package appliance

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/kfp-box/kfp-box/appliance/engine"
)

func TestParseUser(t *testing.T) {
	tests := []struct {
		spec string
		want *engine.TaskUser
	}{
		{"1234:5678", &engine.TaskUser{UID: 1234, GID: 5678}},
		{"0:0", &engine.TaskUser{UID: 0, GID: 0}},
		{"root", &engine.TaskUser{UID: 0, GID: 0}},
		{"nobody", &engine.TaskUser{UID: 65534, GID: 65534}},
		{"4242", &engine.TaskUser{UID: 4242, GID: 4242}}, // no such user: its own number as group
	}
	for _, tt := range tests {
		got, err := parseUser(tt.spec)
		if err != nil || *got != *tt.want {
			t.Errorf("parseUser(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
	}
	for _, bad := range []string{"no-such-user-kfpbox", "a:b", "1:", ":1", "-1", "1:2:3", "99999999999"} {
		if _, err := parseUser(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("parseUser(%q) = %v, want a configuration error", bad, err)
		}
	}
}

func TestHostTaskUser(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Geteuid() != 0 {
		if u, err := hostTaskUser("", log); u != nil || err != nil {
			t.Errorf("not root, no --host-user: %+v, %v; want kfp-box's own user", u, err)
		}
		if _, err := hostTaskUser("nobody", log); !errors.Is(err, ErrConfig) {
			t.Errorf("not root, --host-user nobody: %v; want a configuration error", err)
		}
		return
	}
	if u, err := hostTaskUser("root", log); u != nil || err != nil {
		t.Errorf("--host-user root = %+v, %v; want root (nil)", u, err)
	}
	if u, err := hostTaskUser("1234:5678", log); err != nil || *u != (engine.TaskUser{UID: 1234, GID: 5678}) {
		t.Errorf("--host-user 1234:5678 = %+v, %v", u, err)
	}
	u, err := hostTaskUser("", log)
	if err != nil || u == nil || u.UID == 0 {
		t.Fatalf("default = %+v, %v; want an unprivileged user", u, err)
	}
	if again, err := ensureSystemUser(DefaultHostUser); err != nil || *again != *u {
		t.Errorf("the default user is %+v, but %s is %+v, %v", u, DefaultHostUser, again, err)
	}
}
