package containerd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/internal/registry"
	"github.com/kfp-box/kfp-box/runtime"
)

// TestSettings: the section's defaults are what New used to pick for zero values, each
// invalid value fails Validate with a message naming its key, unknown keys name the valid
// ones, and runtime.Open refuses an invalid section before touching containerd.
func TestSettings(t *testing.T) {
	d := NewSettings()
	if *d != (Settings{Namespace: DefaultNamespace, Snapshotter: "overlayfs", PullTimeout: 10 * time.Minute}) {
		t.Fatalf("defaults = %+v", *d)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if s := runtime.Backends().NewSection(ID); s == nil || *(s.(*Settings)) != *d {
		t.Fatalf("registered section = %#v, want the defaults", s)
	}
	for name, c := range map[string]struct {
		set  func(*Settings)
		want string
	}{
		"relative address": {func(s *Settings) { s.Address = "run/ctd.sock" }, `address "run/ctd.sock"`},
		"bad namespace":    {func(s *Settings) { s.Namespace = "kfp box" }, `namespace "kfp box"`},
		"empty namespace":  {func(s *Settings) { s.Namespace = "" }, `namespace ""`},
		"no snapshotter":   {func(s *Settings) { s.Snapshotter = "" }, "snapshotter is empty"},
		"zero timeout":     {func(s *Settings) { s.PullTimeout = 0 }, "pull_timeout 0s"},
	} {
		s := NewSettings()
		c.set(s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
	for _, ok := range []string{"/run/containerd/containerd.sock", "unix:///run/x.sock"} {
		s := NewSettings()
		s.Address = ok
		if err := s.Validate(); err != nil {
			t.Errorf("address %q: %v", ok, err)
		}
	}
	_, err := registry.Decode(NewSettings(), map[string]any{"snapshoter": "native"})
	if !errors.Is(err, registry.ErrUnknownKey) || !strings.Contains(err.Error(), "valid: address, namespace, snapshotter, init_binary, log_binary, pull_timeout") {
		t.Errorf("unknown key: %v", err)
	}
	bad := NewSettings()
	bad.Namespace = "no spaces allowed"
	if _, err := runtime.Open(context.Background(), ID, runtime.Options{DataDir: t.TempDir()}, bad); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("Open with an invalid section: %v, want ErrInvalid", err)
	}
	if _, err := runtime.Open(context.Background(), ID, runtime.Options{DataDir: t.TempDir()}, &wrongSection{}); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "*containerd.Settings") {
		t.Errorf("Open with another backend's section: %v, want ErrInvalid naming the type", err)
	}
}

type wrongSection struct{}

func (*wrongSection) Validate() error { return nil }
