package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParsePackage feeds arbitrary bytes to the package parser: it must return a pipeline or
// an error wrapping ErrInvalid, never panic.
func FuzzParsePackage(f *testing.F) {
	f.Add("p.yaml", []byte("pipelineInfo: {name: x}\nroot: {dag: {tasks: {}}}\nschemaVersion: 2.1.0\n"))
	f.Add("p.yaml", []byte("---\n---\nplatforms: {kubernetes: {}}\n"))
	f.Add("p.zip", []byte("PK\x03\x04garbage"))
	f.Add("p.tar.gz", []byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0})
	f.Add("p.json", []byte(`{"pipeline_spec": {"root": {}}, "platform_spec": {"platforms": 1}}`))
	if d, err := filepath.Abs("../../../shared/fixtures/kfp-ir/valid/hello_world.yaml"); err == nil {
		if b, err := os.ReadFile(d); err == nil {
			f.Add("hello_world.yaml", b)
		}
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		p, err := ParsePackage(name, data)
		if err != nil {
			return
		}
		_ = Validate(p)
		if p.Spec != nil && p.Spec.Root != nil {
			_, _ = ResolveRuntimeParameters(p.Spec, map[string]any{"x": 1.0})
		}
		_ = p.StoredJSON()
	})
}
