package appliance

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/internal/registry"
)

// FuzzConfigFile feeds arbitrary files to the configuration file parser: it must never
// panic, its errors are one line, and every backend section it accepts survives being
// printed and read again (what config show and a file written from it rely on).
func FuzzConfigFile(f *testing.F) {
	for _, seed := range []string{
		"runtime: host\n",
		"runtime:\n  backend: containerd\n  containerd:\n    address: /run/x.sock\n    pull_timeout: 90s\n  host:\n    mount_namespaces: false\n",
		"containerd_address: /run/old.sock\nruntime: {containerd: {namespace: lab}}\n",
		"runtime:\n  containerd: [1, 2]\n",
		"runtime:\n  host: {shim: {a: b}}\n",
		"max_parallel_tasks: 1e3\nshutdown_timeout: 5s\n",
		"listen: [a]\n",
		"runtime: ~\n",
		"- a\n- b\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Defaults()
		if _, err := applyFile(&cfg, data, "f.yaml"); err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of more than one line: %q", err)
			}
			return
		}
		for key, sec := range cfg.Backends {
			fresh := reflect.New(reflect.TypeOf(sec).Elem()).Interface().(registry.Section)
			raw := map[string]any{}
			for _, fl := range registry.Fields(sec) {
				raw[fl.Key] = fl.Value
			}
			if _, err := registry.Decode(fresh, raw); err != nil {
				t.Fatalf("%s: printed values do not read back: %v (%+v)", key, err, raw)
			}
			if !reflect.DeepEqual(registry.Fields(fresh), registry.Fields(sec)) {
				t.Fatalf("%s: read back %+v, want %+v", key, fresh, sec)
			}
		}
	})
}
