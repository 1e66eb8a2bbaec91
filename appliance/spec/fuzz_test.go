package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"
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

// FuzzShortenStrings: for any JSON document, the shortened copy is JSON of the same shape,
// with strings longer than the limit emptied and the others kept, so the strict decoder's
// verdict on it is its verdict on the original.
func FuzzShortenStrings(f *testing.F) {
	for _, s := range []string{`{"a":"xxxxxxxxxx","b":["y",1,{"c":"\"zzzzzzzzz\\\\"}]}`, `"aaaaaaaaaaaa"`, `[]`, `{"k":"v\u00e9ry long value"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, js []byte) {
		var orig any
		if json.Unmarshal(js, &orig) != nil {
			return
		}
		var short any
		if err := json.Unmarshal(shortenStrings(js, 8), &short); err != nil {
			t.Fatalf("shortened %q is not JSON: %v", shortenStrings(js, 8), err)
		}
		// Where the document has no escapes, a string's length in it is its decoded length,
		// so the expected result is exact; keys over the limit would be emptied too, which an
		// IR never has, so such documents only check the shape.
		exact := !bytes.ContainsRune(js, '\\') && utf8.Valid(js)
		if !sameShape(orig, short, exact) {
			t.Fatalf("shortenStrings(%q) = %v from %v", js, short, orig)
		}
	})
}

func sameShape(a, b any, exact bool) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		if !ok {
			return false
		}
		if !exact {
			return true
		}
		if len(x) > 8 {
			return y == ""
		}
		return x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameShape(x[i], y[i], exact) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return false
		}
		for k := range x {
			if len(k) > 8 || !exact {
				return ok // emptied keys may merge
			}
		}
		if len(x) != len(y) {
			return false
		}
		for k, e := range x {
			if !sameShape(e, y[k], exact) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}
