package host

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/internal/registry"
	"github.com/kfp-box/kfp-box/runtime"
)

// TestSettings: defaults, validation, unknown keys, and that runtime.Open validates.
func TestSettings(t *testing.T) {
	d := NewSettings()
	if *d != (Settings{MountNamespaces: true}) || d.Validate() != nil {
		t.Fatalf("defaults = %+v (%v)", *d, d.Validate())
	}
	if s := runtime.Backends().NewSection(ID); s == nil || *(s.(*Settings)) != *d {
		t.Fatalf("registered section = %#v", s)
	}
	s := NewSettings()
	s.Shim = "bin/kfp-box"
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), `shim "bin/kfp-box": want an absolute path`) {
		t.Errorf("relative shim: %v", err)
	}
	if _, err := runtime.Open(context.Background(), ID, runtime.Options{DataDir: t.TempDir()}, s); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("Open with a relative shim: %v, want ErrInvalid", err)
	}
	keys, err := registry.Decode(s, map[string]any{"mount_namespaces": false, "shim": "/usr/bin/kfp-box"})
	if err != nil || len(keys) != 2 || s.MountNamespaces || s.Shim != "/usr/bin/kfp-box" {
		t.Errorf("decode: %v %v %+v", keys, err, s)
	}
	if _, err := registry.Decode(s, map[string]any{"mount_namespace": false}); !errors.Is(err, registry.ErrUnknownKey) || !strings.Contains(err.Error(), "valid: shim, mount_namespaces") {
		t.Errorf("unknown key: %v", err)
	}
}
