package appliance

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/kfp-box/kfp-box/appliance/k8s"
	"github.com/kfp-box/kfp-box/internal/registry"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/objects/local"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid configuration")

// Config is the box's configuration. Each field has a flag (the json tag with '_' → '-'), an
// environment variable (KFPBOX_ + the json tag upper-cased) and a key in the YAML file (the json
// tag). Backends' own settings are typed sections their packages register (see family and
// registry.Section), held in Backends. Precedence: defaults < file < environment < flags,
// merged by Load. docs/configuration.md is `kfp-box config schema`'s output.
type Config struct {
	// DataDir holds meta.db, objects/, logs/ and containerd/.
	DataDir string `json:"data_dir"`
	// Listen is the HTTP address of the API and the UI.
	Listen string `json:"listen"`
	// S3Listen is the address of the embedded S3 server ("" or "off" disables it).
	S3Listen string `json:"s3_listen"`
	// Runtime picks the task runtime: auto or a registered runtime (runtime.Registered).
	Runtime string `json:"runtime"`
	// HostUser is the user host-runtime tasks run as: a name, uid or uid:gid; "root" runs
	// them as root. Empty: DefaultHostUser (created if missing) when kfp-box runs as root,
	// else kfp-box's own user. A platform spec's runAsUser/runAsGroup wins.
	HostUser string `json:"host_user"`
	// ObjectStore picks the object store backend (objects.Registered): "embedded", "s3",
	// or a backend's URL ("s3://BUCKET?endpoint=URL"), which Load turns into the name and
	// the backend's section (ResolveURLs).
	ObjectStore string `json:"object_store"`
	// DatastoreEndpoint selects the metadata backend: "" is the bbolt file DataDir/meta.db;
	// postgres://... or mysql://... puts it on that SQL database through kine (ADR 009).
	DatastoreEndpoint string `json:"datastore_endpoint"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"log_level"`
	// LogFormat is text or json.
	LogFormat string `json:"log_format"`
	// CacheEnabled is the server-wide switch for execution caching.
	CacheEnabled bool `json:"cache_enabled"`
	// MaxParallelTasks bounds the tasks running at once (0 = number of CPUs × 4).
	MaxParallelTasks int `json:"max_parallel_tasks"`
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout time.Duration `json:"shutdown_timeout"`
	// UIDevURL proxies the web UI to a Vite dev server (development only).
	UIDevURL string `json:"ui_dev_url"`
	// Auth is "token" (every request needs a bearer token or a UI session) or "none"
	// (loopback only, for demos).
	Auth string `json:"auth"`
	// AllowedHost lists, comma-separated, the host names the API answers besides IP
	// addresses and localhost (DNS rebinding protection); "*" accepts any.
	AllowedHost string `json:"allowed_host"`
	// TLSCert and TLSKey are PEM files for HTTPS; a listener beyond loopback without them
	// gets a self-signed certificate kept in the data directory.
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
	// PackageURLHosts lists hosts (comma-separated, "name" or "name:port") whose pipeline
	// package_url may resolve to a loopback or private address; others are refused there.
	PackageURLHosts string `json:"package_url_hosts"`
	// HostPython is the interpreter host-runtime tasks run Python with (resolved on the
	// box's PATH at start).
	HostPython string `json:"host_python"`
	// PypiUpstream is a PEP 503 index that wheelhouse misses are fetched from ("" = offline).
	PypiUpstream string `json:"pypi_upstream"`
	// Namespace is the Kubernetes namespace single-user runs execute in, as KFP's own
	// namespace is on a cluster: tasks' Secrets, ConfigMaps and pods live there.
	Namespace string `json:"namespace"`

	// Backends holds the typed settings of every registered backend that has any, keyed
	// "FAMILY.ID" ("runtime.containerd"); see Section. Copies of a Config share them.
	Backends map[string]registry.Section `json:"-"`
	// Warnings are deprecation notices from Load (an old key in the file); serve logs them
	// and config show prints them on stderr.
	Warnings []string `json:"-"`
}

// Defaults returns the embedded defaults.
func Defaults() Config {
	return Config{
		DataDir:          DefaultDataDir(),
		Listen:           "127.0.0.1:8888",
		S3Listen:         "127.0.0.1:9000",
		Runtime:          "auto",
		ObjectStore:      local.ID,
		LogLevel:         "info",
		LogFormat:        "text",
		CacheEnabled:     true,
		MaxParallelTasks: 0,
		ShutdownTimeout:  30 * time.Second,
		Auth:             "token",
		HostPython:       "python3",
		Namespace:        "kubeflow",
		Backends:         defaultSections(),
	}
}

// DefaultDataDir is /var/lib/kfp-box for root, else ~/.local/share/kfp-box.
func DefaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/kfp-box"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "kfp-box")
	}
	return "kfp-box-data"
}

// field describes one configuration field.
type field struct {
	key   string // json/yaml key
	flag  string
	env   string
	index int
	help  string
}

var helps = map[string]string{
	"data_dir":           "data directory (meta.db, objects/, logs/, containerd/)",
	"listen":             "address of the API and web UI",
	"s3_listen":          "address of the embedded S3 server (\"off\" disables it)",
	"runtime":            "task runtime: auto or one of the registered runtimes (their settings: the runtime.NAME sections)",
	"host_user":          "user host-runtime tasks run as: name, uid or uid:gid; \"root\" only when asked (default as root: " + DefaultHostUser + ", created if missing)",
	"object_store":       "object store: embedded, or s3 with its object_store.s3 section, or that section as one URL 's3://BUCKET?endpoint=URL&access_key=...&secret_key=...'",
	"datastore_endpoint": "metadata datastore: empty for the bbolt file in the data directory, or postgres://USER:PASS@HOST:PORT/DB?sslmode=... or mysql://USER:PASS@tcp(HOST:PORT)/DB (through kine)",
	"log_level":          "log level: debug, info, warn or error",
	"log_format":         "log format: text or json",
	"cache_enabled":      "server-wide switch for execution caching",
	"max_parallel_tasks": "tasks running at once (0: 4 per CPU)",
	"shutdown_timeout":   "how long a graceful stop may take",
	"ui_dev_url":         "proxy the web UI to this Vite dev server (development)",
	"auth":               "\"token\" (requests need a bearer token or a UI login) or \"none\" (loopback only)",
	"allowed_host":       "comma-separated host names served besides IP addresses and localhost (\"*\": any)",
	"tls_cert":           "PEM certificate for HTTPS (beyond loopback, a self-signed one is made when unset)",
	"tls_key":            "PEM private key of --tls-cert",
	"package_url_hosts":  "hosts (name or name:port, comma-separated) whose package_url may be a loopback or private address",
	"host_python":        "Python interpreter of host-runtime tasks (each task gets a venv of its own)",
	"pypi_upstream":      "PEP 503 index (mirror, devpi, PyPI) that wheelhouse misses are fetched from and kept",
	"namespace":          "Kubernetes namespace runs execute in: where tasks' secrets, configmaps and persistentvolumeclaims are looked up and their pods are listed",
}

func fields() []field {
	t := reflect.TypeOf(Config{})
	out := make([]field, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		key := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		if key == "-" {
			continue
		}
		out = append(out, field{
			key:   key,
			flag:  strings.ReplaceAll(key, "_", "-"),
			env:   "KFPBOX_" + strings.ToUpper(key),
			index: i,
			help:  helps[key],
		})
	}
	return out
}

// AddFlags registers one flag per field and per backend section field on fs, with the
// defaults as flag defaults.
func AddFlags(fs *pflag.FlagSet) {
	def := Defaults()
	d := reflect.ValueOf(def)
	for _, f := range fields() {
		v := d.Field(f.index)
		help := f.help + " (env " + f.env + ")"
		switch v.Kind() {
		case reflect.Bool:
			fs.Bool(f.flag, v.Bool(), help)
		case reflect.Int:
			fs.Int(f.flag, int(v.Int()), help)
		case reflect.Int64:
			fs.Duration(f.flag, time.Duration(v.Int()), help)
		default:
			fs.String(f.flag, v.String(), help)
		}
	}
	addSectionFlags(fs, def)
	fs.String("config", "", "YAML configuration file (env KFPBOX_CONFIG; default "+DefaultConfigFile+" when it exists, /dev/null for none)")
}

// DefaultConfigFile is the configuration file read when neither --config nor KFPBOX_CONFIG
// names one and it exists: where the Debian package installs the box's configuration.
// --config /dev/null (or KFPBOX_CONFIG=/dev/null) reads no file.
const DefaultConfigFile = "/etc/kfp-box/config.yaml"

// defaultConfigFile is DefaultConfigFile; tests point it elsewhere.
var defaultConfigFile = DefaultConfigFile

// Source says where a configuration value came from: "default", "file PATH", "env NAME" or
// "flag --NAME".
type Source string

// Sources maps each configuration key (the YAML key) to the source of its value.
type Sources map[string]Source

// Load merges defaults < file < environment < changed flags. file may be empty (then
// KFPBOX_CONFIG, else DefaultConfigFile when it exists); getenv is os.Getenv in production
// and a map in tests; fs may be nil.
func Load(file string, getenv func(string) string, fs *pflag.FlagSet) (Config, error) {
	cfg, _, err := LoadWithSources(file, getenv, fs)
	return cfg, err
}

// LoadWithSources is Load that also says where each value came from.
func LoadWithSources(file string, getenv func(string) string, fs *pflag.FlagSet) (Config, Sources, error) {
	cfg := Defaults()
	src := Sources{}
	for _, f := range fields() {
		src[f.key] = "default"
	}
	for _, f := range cfg.sectionFields() {
		src[f.path()] = "default"
	}
	if file == "" && getenv != nil {
		file = getenv("KFPBOX_CONFIG")
	}
	if file == "" {
		if _, err := os.Stat(defaultConfigFile); err == nil {
			file = defaultConfigFile
		}
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return cfg, src, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		keys, err := applyFile(&cfg, data, file)
		if err != nil {
			return cfg, src, fmt.Errorf("%w: %s: %v", ErrConfig, file, err)
		}
		for _, k := range keys {
			src[k] = Source("file " + file)
		}
	}
	v := reflect.ValueOf(&cfg).Elem()
	for _, f := range fields() {
		if getenv == nil {
			break
		}
		if s := getenv(f.env); s != "" {
			if err := setString(v.Field(f.index), s); err != nil {
				return cfg, src, fmt.Errorf("%w: %s=%q: %v", ErrConfig, f.env, s, err)
			}
			src[f.key] = Source("env " + f.env)
		}
	}
	for _, f := range cfg.sectionFields() {
		if getenv == nil {
			break
		}
		// The legacy name first, so the section's own name wins when both are set.
		for _, env := range []string{f.legacyEnv(), f.env()} {
			if env == "KFPBOX_" {
				continue
			}
			if s := getenv(env); s != "" {
				if err := cfg.setSection(f, s); err != nil {
					return cfg, src, fmt.Errorf("%w: %s: %v", ErrConfig, env, err)
				}
				src[f.path()] = Source("env " + env)
			}
		}
	}
	if fs != nil {
		for _, f := range fields() {
			fl := fs.Lookup(f.flag)
			if fl == nil || !fl.Changed {
				continue
			}
			if err := setString(v.Field(f.index), fl.Value.String()); err != nil {
				return cfg, src, fmt.Errorf("%w: --%s=%q: %v", ErrConfig, f.flag, fl.Value.String(), err)
			}
			src[f.key] = Source("flag --" + f.flag)
		}
		for _, f := range cfg.sectionFields() {
			for _, name := range []string{f.legacyFlag(), f.flag()} {
				fl := fs.Lookup(name)
				if name == "" || fl == nil || !fl.Changed {
					continue
				}
				if err := cfg.setSection(f, fl.Value.String()); err != nil {
					return cfg, src, fmt.Errorf("%w: --%s: %v", ErrConfig, name, err)
				}
				src[f.path()] = Source("flag --" + name)
			}
		}
	}
	if err := cfg.ResolveURLs(src); err != nil {
		return cfg, src, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, src, err
	}
	// The data directory is made absolute once here: the embedded S3 server changes the
	// process's working directory, so no relative path may be used after setup.
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return cfg, src, fmt.Errorf("%w: data_dir %q: %v", ErrConfig, cfg.DataDir, err)
	}
	cfg.DataDir = abs
	return cfg, src, nil
}

// Setting is one configuration value as `kfp-box config show` prints it.
type Setting struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source Source `json:"source"`
	Help   string `json:"help"`
	// String says the value is a string (to be quoted in YAML), not a bool, number or
	// duration.
	String bool `json:"-"`
}

// Settings lists cfg's values with their sources: the top-level keys in field order, then
// each family's choice ("runtime.backend") and its backends' section fields
// ("runtime.containerd.address"). Secrets in URLs and DSNs (passwords, secret keys, tokens)
// and whole values of fields marked secret are replaced by "REDACTED".
func (c Config) Settings(src Sources) []Setting {
	v := reflect.ValueOf(c)
	out := make([]Setting, 0, v.NumField())
	var fams []Setting
	for _, f := range fields() {
		fv := v.Field(f.index)
		val := fmt.Sprint(fv.Interface())
		s := Setting{Key: f.key, Value: RedactSecrets(val), Source: src[f.key], Help: f.help, String: fv.Kind() == reflect.String}
		if _, ok := familyOf(f.key); ok {
			s.Key = f.key + "." + chooseKey
			fams = append(fams, s)
			continue
		}
		out = append(out, s)
	}
	for _, fs := range fams {
		out = append(out, fs)
		fam, _ := strings.CutSuffix(fs.Key, "."+chooseKey)
		for _, f := range c.sectionFields() {
			if f.fam != fam {
				continue
			}
			val := RedactSecrets(f.Value)
			if f.Secret && f.Value != "" {
				val = "REDACTED"
			}
			out = append(out, Setting{Key: f.path(), Value: val, Source: src[f.path()], Help: f.Doc, String: f.Type == "string"})
		}
	}
	return out
}

// applyFile reads YAML keys and returns the source keys it set; unknown keys are errors so
// typos do not pass silently. An old top-level key of a section field sets the field and
// adds a deprecation warning to cfg.Warnings.
func applyFile(cfg *Config, data []byte, file string) ([]string, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := yaml.Unmarshal(js, &raw); err != nil {
		return nil, err
	}
	known := map[string]field{}
	for _, f := range fields() {
		known[f.key] = f
	}
	legacy := cfg.legacyKeys()
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	// Sorted, so that the first error does not depend on map order, with old keys first
	// so that a section set in the same file wins.
	sort.Slice(names, func(i, j int) bool {
		_, li := legacy[names[i]]
		_, lj := legacy[names[j]]
		if li != lj {
			return li
		}
		return names[i] < names[j]
	})
	v := reflect.ValueOf(cfg).Elem()
	var keys []string
	for _, k := range names {
		val := raw[k]
		if lf, ok := legacy[k]; ok {
			str, err := registry.Scalar(val)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", k, err)
			}
			if err := cfg.setSection(lf, str); err != nil {
				return nil, fmt.Errorf("%s: %v", k, err)
			}
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s: key %q is deprecated; write it as %s.%s: {%s: ...}", file, k, lf.fam, lf.id, lf.Key))
			keys = append(keys, lf.path())
			continue
		}
		f, ok := known[k]
		if !ok {
			return nil, fmt.Errorf("unknown key %q (valid: %s)", k, strings.Join(validKeys(), ", "))
		}
		if fam, ok := familyOf(k); ok {
			set, err := cfg.applyFamily(fam, val)
			if err != nil {
				return nil, err
			}
			keys = append(keys, set...)
			continue
		}
		str, err := registry.Scalar(val) // "key:" with no value is the empty value
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
		if err := setString(v.Field(f.index), str); err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// validKeys lists the top-level keys of the configuration file, sorted.
func validKeys() []string {
	var out []string
	for _, f := range fields() {
		out = append(out, f.key)
	}
	sort.Strings(out)
	return out
}

func setString(v reflect.Value, s string) error {
	switch v.Kind() {
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(n))
	case reflect.Int64:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	default:
		v.SetString(s)
	}
	return nil
}

// Validate checks values that have a fixed set of choices.
func (c Config) Validate() error {
	if err := c.validateFamilies(); err != nil {
		return err
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("%w: log_level %q: want debug, info, warn or error", ErrConfig, c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("%w: log_format %q: want text or json", ErrConfig, c.LogFormat)
	}
	if c.DataDir == "" {
		return fmt.Errorf("%w: data_dir is empty", ErrConfig)
	}
	if _, err := DatastoreBackend(c.DatastoreEndpoint); err != nil {
		return err
	}
	if u := c.PypiUpstream; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return fmt.Errorf("%w: pypi_upstream %q: want the http(s) URL of a simple index", ErrConfig, u)
	}
	if c.HostPython == "" {
		return fmt.Errorf("%w: host_python is empty", ErrConfig)
	}
	if !k8s.ValidNamespace(c.Namespace) {
		return fmt.Errorf("%w: namespace %q: want a lowercase RFC 1123 label (letters, digits, '-', at most 63)", ErrConfig, c.Namespace)
	}
	if c.MaxParallelTasks < 0 {
		return fmt.Errorf("%w: max_parallel_tasks must not be negative", ErrConfig)
	}
	switch c.Auth {
	case "token":
	case "none":
		if !IsLoopback(c.Listen) {
			return fmt.Errorf("%w: auth none is allowed on a loopback listen address only (listen %q): anyone who reaches it could run commands as the box's user", ErrConfig, c.Listen)
		}
	default:
		return fmt.Errorf("%w: auth %q: want token or none", ErrConfig, c.Auth)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("%w: tls_cert and tls_key go together", ErrConfig)
	}
	return nil
}

// IsLoopback says whether a listen address only accepts connections from this machine.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AllowedHosts is AllowedHost split at commas.
func (c Config) AllowedHosts() []string {
	var out []string
	for _, h := range strings.Split(c.AllowedHost, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// DatastoreBackend names the storage/kv backend that serves a datastore endpoint: "bolt"
// for "", "kine" for postgres://, postgresql:// and mysql:// URLs.
func DatastoreBackend(endpoint string) (string, error) {
	id, err := kv.EndpointBackend(endpoint)
	if err != nil {
		return "", fmt.Errorf("%w: datastore_endpoint %v", ErrConfig, err)
	}
	return id, nil
}

// RedactDSN hides a datastore URL's password.
func RedactDSN(endpoint string) string { return kv.RedactEndpoint(endpoint) }
