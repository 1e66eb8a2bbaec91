package appliance

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestLoadPrecedence(t *testing.T) {
	env := map[string]string{"KFPBOX_LISTEN": "127.0.0.1:7777", "KFPBOX_MAX_PARALLEL_TASKS": "5"}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse([]string{"--max-parallel-tasks=9"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load("testdata/full.yaml", func(k string) string { return env[k] }, fs)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"file beats default", cfg.DataDir, "/srv/kfp"},
		{"env beats file", cfg.Listen, "127.0.0.1:7777"},
		{"flag beats env", cfg.MaxParallelTasks, 9},
		{"file bool", cfg.CacheEnabled, false},
		{"file duration", cfg.ShutdownTimeout, 5 * time.Second},
		{"default kept", cfg.S3Listen, "127.0.0.1:9000"},
		{"file runtime", cfg.Runtime, "host"},
		{"file host user", cfg.HostUser, "1234:5678"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name string
		file string
		env  map[string]string
	}{
		{"unknown key", "testdata/typo.yaml", nil},
		{"missing file", "testdata/nope.yaml", nil},
		{"bad runtime", "", map[string]string{"KFPBOX_RUNTIME": "docker"}},
		{"bad int", "", map[string]string{"KFPBOX_MAX_PARALLEL_TASKS": "many"}},
		{"bad store", "", map[string]string{"KFPBOX_OBJECT_STORE": "gs://x"}},
		{"bad datastore", "", map[string]string{"KFPBOX_DATASTORE_ENDPOINT": "sqlite:///tmp/x.db"}},
		{"datastore without scheme", "", map[string]string{"KFPBOX_DATASTORE_ENDPOINT": "localhost:5432"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(c.file, func(k string) string { return c.env[k] }, nil)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
		})
	}
}

func TestDataDirMadeAbsolute(t *testing.T) {
	cfg, err := Load("", func(k string) string {
		if k == "KFPBOX_DATA_DIR" {
			return "rel/data"
		}
		return ""
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(cfg.DataDir) || !strings.HasSuffix(cfg.DataDir, "rel/data") {
		t.Fatalf("DataDir = %q, want an absolute path ending in rel/data", cfg.DataDir)
	}
}

// TestDatastoreBackend: the endpoint table is kv's (storage/kv/endpoint_test.go); here, that
// the configuration wraps it as ErrConfig and never shows the password.
func TestDatastoreBackend(t *testing.T) {
	if got, err := DatastoreBackend("postgres://u:p@127.0.0.1:5432/kfp"); err != nil || got != "kine" {
		t.Fatalf("DatastoreBackend(postgres) = %q, %v; want kine", got, err)
	}
	_, err := DatastoreBackend("redis://user:hunter2@host/0")
	if !errors.Is(err, ErrConfig) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("unsupported scheme: %v (want ErrConfig without the password)", err)
	}
	if got := RedactDSN("postgres://kfp:hunter2@db:5432/kfp"); got != "postgres://kfp:xxxxx@db:5432/kfp" {
		t.Fatalf("redactDSN = %q", got)
	}
}

// TestDefaultConfigFile: without --config and KFPBOX_CONFIG the packaged file is read when it
// exists (values say "file PATH"); /dev/null reads none; a missing default file is no error.
func TestDefaultConfigFile(t *testing.T) {
	def := filepath.Join(t.TempDir(), "config.yaml")
	saved := defaultConfigFile
	defaultConfigFile = def
	t.Cleanup(func() { defaultConfigFile = saved })
	noEnv := func(string) string { return "" }

	cfg, src, err := LoadWithSources("", noEnv, nil)
	if err != nil || cfg.Runtime != "auto" || src["runtime"] != "default" {
		t.Fatalf("without the default file: %v %q %q", err, cfg.Runtime, src["runtime"])
	}
	if err := os.WriteFile(def, []byte("runtime: host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, src, err = LoadWithSources("", noEnv, nil)
	if err != nil || cfg.Runtime != "host" || src["runtime"] != Source("file "+def) || src["listen"] != "default" {
		t.Fatalf("with the default file: %v %q %q %q", err, cfg.Runtime, src["runtime"], src["listen"])
	}
	cfg, _, err = LoadWithSources("", func(k string) string {
		if k == "KFPBOX_CONFIG" {
			return "/dev/null"
		}
		return ""
	}, nil)
	if err != nil || cfg.Runtime != "auto" {
		t.Fatalf("KFPBOX_CONFIG=/dev/null: %v %q", err, cfg.Runtime)
	}
}

// TestSectionSources: backend section fields come from the file, the environment (the
// section's own variable beating the legacy one) and flags (the section's own flag beating
// the legacy one), each recorded under FAMILY.ID.KEY.
func TestSectionSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("runtime:\n  containerd:\n    snapshotter: native\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"KFPBOX_CONTAINERD_ADDRESS":            "/run/legacy.sock",
		"KFPBOX_RUNTIME_CONTAINERD_ADDRESS":    "/run/new.sock",
		"KFPBOX_RUNTIME_HOST_MOUNT_NAMESPACES": "false",
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse([]string{"--runtime-containerd-pull-timeout=2m", "--containerd-address=/run/flag.sock"}); err != nil {
		t.Fatal(err)
	}
	cfg, src, err := LoadWithSources(file, func(k string) string { return env[k] }, fs)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range cfg.Settings(src) {
		got[s.Key] = s.Value + " <- " + string(s.Source)
	}
	for key, want := range map[string]string{
		"runtime.containerd.snapshotter":  "native <- file " + file,
		"runtime.containerd.address":      "/run/flag.sock <- flag --containerd-address",
		"runtime.containerd.pull_timeout": "2m0s <- flag --runtime-containerd-pull-timeout",
		"runtime.host.mount_namespaces":   "false <- env KFPBOX_RUNTIME_HOST_MOUNT_NAMESPACES",
		"runtime.containerd.namespace":    "kfp-box <- default",
		"runtime.backend":                 "auto <- default",
	} {
		if got[key] != want {
			t.Errorf("%s = %q, want %q", key, got[key], want)
		}
	}
	delete(env, "KFPBOX_RUNTIME_CONTAINERD_ADDRESS")
	cfg, src, err = LoadWithSources(file, func(k string) string { return env[k] }, nil)
	if err != nil || src["runtime.containerd.address"] != "env KFPBOX_CONTAINERD_ADDRESS" {
		t.Fatalf("legacy env: %v %q", err, src["runtime.containerd.address"])
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("the legacy environment variable warned: %v", cfg.Warnings)
	}
}

// TestPackagedConfig: the file the Debian package installs as /etc/kfp-box/config.yaml
// loads without errors or deprecation warnings.
func TestPackagedConfig(t *testing.T) {
	cfg, src, err := LoadWithSources("../packaging/config.yaml", func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 || cfg.Runtime != "auto" || src["runtime"] != "file ../packaging/config.yaml" {
		t.Fatalf("packaged config: warnings %v, runtime %q from %q", cfg.Warnings, cfg.Runtime, src["runtime"])
	}
}
