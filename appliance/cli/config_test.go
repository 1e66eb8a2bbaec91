package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/appliance"
)

// TestConfigShow merges a file, the environment and a flag, checks that each value names
// its source, that secrets are redacted, and that the output read back as a configuration
// file gives the same configuration.
func TestConfigShow(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte("listen: 127.0.0.1:7000\nruntime: host\nhost_user: \"1234:5678\"\nmax_parallel_tasks: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KFPBOX_MAX_PARALLEL_TASKS", "5")
	t.Setenv("KFPBOX_OBJECT_STORE", "s3://bkt?endpoint=http%3A%2F%2Fminio%3A9000&access_key=AK&secret_key=very-secret-key")
	t.Setenv("KFPBOX_SHUTDOWN_TIMEOUT", "")
	out, err := runCLI(t, "config", "show", "--config", file, "--shutdown-timeout", "7s", "--data-dir", dir)
	if err != nil {
		t.Fatalf("config show: %v\n%s", err, out)
	}
	for _, want := range []string{
		`listen: "127.0.0.1:7000"`, "# file " + file,
		"max_parallel_tasks: 5", "# env KFPBOX_MAX_PARALLEL_TASKS",
		"shutdown_timeout: 7s", "# flag --shutdown-timeout",
		`s3_listen: "127.0.0.1:9000"`, "# default",
		"secret_key=REDACTED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config show lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		key, _, _ := strings.Cut(line, ":")
		src := line[strings.LastIndex(line, "# ")+2:]
		want := map[string]string{"listen": "file " + file, "runtime": "file " + file, "max_parallel_tasks": "env KFPBOX_MAX_PARALLEL_TASKS",
			"shutdown_timeout": "flag --shutdown-timeout", "data_dir": "flag --data-dir", "object_store": "env KFPBOX_OBJECT_STORE", "host_user": "file " + file}[key]
		if want == "" {
			want = "default"
		}
		if src != want {
			t.Errorf("%s: source %q, want %q", key, src, want)
		}
	}
	if strings.Contains(out, "very-secret-key") {
		t.Fatalf("config show printed the secret key:\n%s", out)
	}

	// The output is a configuration file: read back alone, it gives the same values (but
	// the redacted secret).
	back := filepath.Join(dir, "back.yaml")
	if err := os.WriteFile(back, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := appliance.Load(file, func(k string) string { return os.Getenv(k) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	want.ShutdownTimeout, want.DataDir = 7e9, dir
	got, err := appliance.Load(back, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatalf("the output does not load as a configuration file: %v\n%s", err, out)
	}
	want.ObjectStore = appliance.RedactSecrets(want.ObjectStore)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back:\n%+v\nwant\n%+v", got, want)
	}

	jout, err := runCLI(t, "config", "show", "-o", "json", "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	var settings []appliance.Setting
	if err := json.Unmarshal([]byte(jout), &settings); err != nil || len(settings) == 0 {
		t.Fatalf("json output: %v\n%s", err, jout)
	}
	for _, s := range settings {
		if s.Key == "runtime" && (s.Value != "host" || s.Source != appliance.Source("file "+file) || s.Help == "") {
			t.Errorf("runtime setting: %+v", s)
		}
	}

	for name, args := range map[string][]string{
		"bad output":  {"config", "show", "-o", "xml"},
		"bad value":   {"config", "show", "--runtime", "docker"},
		"unknown key": {"config", "show", "--config", "../testdata/typo.yaml"},
		"no file":     {"config", "show", "--config", filepath.Join(dir, "none.yaml")},
	} {
		_, err := runCLI(t, args...)
		if exitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: exit %d (%v), want 2 and one line", name, exitCode(err), err)
		}
	}
}
