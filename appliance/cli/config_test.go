package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/storage/objects/s3"
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
		"object_store:\n  backend: \"s3\"",
		"    secret_key: \"REDACTED\"",
		"    endpoint: \"http://minio:9000\"",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config show lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{
		"runtime:\n  backend: \"host\"",
		"\n  containerd:\n    address: \"\"",
		"\n  host:\n    shim: \"\"",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config show lacks the nested section text %q:\n%s", want, out)
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
	want.Section("object_store", s3.ID).(*s3.Settings).SecretKey = "REDACTED"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back:\n%+v\nwant\n%+v", got, want)
	}

	jout, err := runCLI(t, "config", "show", "-o", "json", "--config", file, "--shutdown-timeout", "7s", "--data-dir", dir,
		"--containerd-address", "/run/ctd.sock")
	if err != nil {
		t.Fatal(err)
	}
	var settings []appliance.Setting
	if err := json.Unmarshal([]byte(jout), &settings); err != nil || len(settings) == 0 {
		t.Fatalf("json output: %v\n%s", err, jout)
	}
	wantSrc := map[string]string{"listen": "file " + file, "runtime.backend": "file " + file, "max_parallel_tasks": "env KFPBOX_MAX_PARALLEL_TASKS",
		"shutdown_timeout": "flag --shutdown-timeout", "data_dir": "flag --data-dir", "object_store": "env KFPBOX_OBJECT_STORE", "host_user": "file " + file,
		"runtime.containerd.address": "flag --containerd-address"}
	for _, k := range []string{"backend", "s3.bucket", "s3.endpoint", "s3.region", "s3.access_key", "s3.secret_key", "s3.part_size", "s3.sign_payload"} {
		wantSrc["object_store."+k] = "env KFPBOX_OBJECT_STORE" // the URL sets the whole section
	}
	seen := map[string]bool{}
	for _, s := range settings {
		seen[s.Key] = true
		want := wantSrc[s.Key]
		if want == "" {
			want = "default"
		}
		if string(s.Source) != want {
			t.Errorf("%s: source %q, want %q", s.Key, s.Source, want)
		}
		if s.Help == "" {
			t.Errorf("%s has no help", s.Key)
		}
		if s.Key == "runtime.backend" && s.Value != "host" {
			t.Errorf("runtime setting: %+v", s)
		}
	}
	for _, k := range []string{"runtime.backend", "runtime.containerd.address", "runtime.containerd.pull_timeout", "runtime.host.mount_namespaces", "namespace"} {
		if !seen[k] {
			t.Errorf("json output lacks %s", k)
		}
	}

	for name, args := range map[string][]string{
		"bad output":  {"config", "show", "-o", "xml"},
		"bad value":   {"config", "show", "--runtime", "docker"},
		"unknown key": {"config", "show", "--config", "../testdata/typo.yaml"},
		"bad section": {"config", "show", "--runtime-containerd-pull-timeout", "soon"},
		"bad address": {"config", "show", "--containerd-address", "relative.sock"},
		"no file":     {"config", "show", "--config", filepath.Join(dir, "none.yaml")},
	} {
		_, err := runCLI(t, args...)
		if exitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: exit %d (%v), want 2 and one line", name, exitCode(err), err)
		}
	}
}

// TestConfigSections: a file with every backend section set reads back from config show's
// output as the same configuration; values keep their file source; an old top-level key
// still works and warns on stderr; errors in sections are one line naming the key and the
// valid choices.
func TestConfigSections(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	body := `data_dir: ` + dir + `
runtime:
  backend: containerd
  containerd:
    address: /run/other/containerd.sock
    namespace: lab
    snapshotter: native
    init_binary: none
    log_binary: /usr/bin/true
    pull_timeout: 90s
  host:
    shim: /usr/local/bin/kfp-box
    mount_namespaces: false
object_store:
  backend: s3
  s3:
    bucket: artifacts
    endpoint: http://127.0.0.1:9000
    part_size: 8388608
    sign_payload: "true"
`
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) string { return "" }
	want, err := appliance.Load(file, noEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctd := want.Section("runtime", "containerd")
	if ctd == nil || !strings.Contains(fmt.Sprintf("%+v", ctd), "PullTimeout:1m30s") || !strings.Contains(fmt.Sprintf("%+v", ctd), "Namespace:lab") {
		t.Fatalf("containerd section = %+v", ctd)
	}
	var stdout, stderr bytes.Buffer
	root := NewRoot(&stdout, &stderr)
	root.SetArgs([]string{"config", "show", "--config", file})
	t.Setenv("KFPBOX_CONFIG", "")
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	for _, want := range []string{"    pull_timeout: 1m30s", "    mount_namespaces: false", "    namespace: \"lab\"", "    part_size: 8388608", "    bucket: \"artifacts\""} {
		if !strings.Contains(out, want) {
			t.Errorf("config show lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "pull_timeout:") || strings.Contains(line, "mount_namespaces:") || strings.Contains(line, `backend: "containerd"`) {
			if !strings.HasSuffix(line, "# file "+file) {
				t.Errorf("source of %q: want file %s", line, file)
			}
		}
	}
	back := filepath.Join(dir, "back.yaml")
	if err := os.WriteFile(back, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := appliance.Load(back, noEnv, nil)
	if err != nil {
		t.Fatalf("config show's output does not load: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back:\n%+v\nwant\n%+v", got, want)
	}

	// The old key: still read, with a warning on stderr that names the new place.
	old := filepath.Join(dir, "old.yaml")
	if err := os.WriteFile(old, []byte("runtime: host\ncontainerd_address: /run/old.sock\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	root = NewRoot(&stdout, &stderr)
	root.SetArgs([]string{"config", "show", "--config", old})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), `address: "/run/old.sock"`) || !strings.Contains(stdout.String(), "# file "+old) {
		t.Errorf("old key not applied:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), `"containerd_address" is deprecated`) || !strings.Contains(stderr.String(), "runtime.containerd") {
		t.Errorf("no deprecation warning on stderr: %q", stderr.String())
	}

	for name, c := range map[string]struct{ yaml, want string }{
		"unknown backend":      {"runtime: docker\n", `runtime "docker": want auto, containerd or host`},
		"unknown section":      {"runtime:\n  docker: {}\n", `runtime: unknown key "docker" (valid: backend, containerd, host)`},
		"unknown section key":  {"runtime:\n  containerd:\n    adress: /x\n", `runtime.containerd: unknown key "adress" (valid: address, namespace, snapshotter, init_binary, log_binary, pull_timeout)`},
		"bad value":            {"runtime:\n  host:\n    mount_namespaces: maybe\n", `runtime.host: mount_namespaces: "maybe" is not true or false`},
		"invalid value":        {"runtime:\n  containerd:\n    namespace: \"a b\"\n", `runtime.containerd: namespace "a b"`},
		"section not mapping":  {"runtime:\n  host: yes\n", "runtime.host: want a mapping"},
		"unknown top key":      {"runtimes: host\n", `unknown key "runtimes" (valid: allowed_host,`},
		"unknown store":        {"object_store: gs://bkt\n", `object_store "gs://bkt": want embedded or s3, or the URL of a backend configured by one`},
		"unknown URL param":    {"object_store: s3://bkt?endpoint=http://m:9&secretkey=hunter2\n", `object_store: unknown URL parameter "secretkey" (valid: access_key, endpoint,`},
		"store without bucket": {"object_store:\n  backend: s3\n", "object_store.s3: bucket is empty"},
		"bad store endpoint":   {"object_store: s3://bkt?endpoint=http://h/p&secret_key=hunter2\n", `object_store.s3: endpoint "http://h/p" must be scheme://host[:port]`},
	} {
		f := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		if err := os.WriteFile(f, []byte(c.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := runCLI(t, "config", "show", "--config", f)
		if exitCode(err) != 2 || err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: exit %d, %v; want exit 2 and one line with %q", name, exitCode(err), err, c.want)
		}
	}
}

// TestConfigReference: docs/configuration.md is `kfp-box config schema`'s output, so the
// documented keys, defaults and docs are the code's.
func TestConfigReference(t *testing.T) {
	out, err := runCLI(t, "config", "schema")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Top-level keys", "### runtime.containerd", "### runtime.host", "`--runtime-containerd-address`", "`containerd_address`", "| `pull_timeout` | duration |"} {
		if !strings.Contains(out, want) {
			t.Errorf("schema lacks %q", want)
		}
	}
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(doc) != out {
		t.Fatalf("docs/configuration.md differs from `kfp-box config schema`; regenerate it with\n  go run ./cmd/kfp-box config schema > docs/configuration.md")
	}
}
