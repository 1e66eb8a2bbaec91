package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfp-box/kfp-box/internal/testmaterial"
)

// fixturesDir finds the shared KFP IR fixtures.
func fixturesDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("KFPBOX_FIXTURES"); d != "" {
		return d
	}
	d, err := filepath.Abs("../../../shared/fixtures/kfp-ir")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d); err != nil {
		testmaterial.Missing(t, "KFP IR fixtures not found at %s (set KFPBOX_FIXTURES to their directory)", d)
	}
	return d
}

func fixtureFiles(t testing.TB, sub string) []string {
	t.Helper()
	var files []string
	root := filepath.Join(fixturesDir(t), sub)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no fixtures under %s", root)
	}
	return files
}

func TestValidFixturesParseAndValidate(t *testing.T) {
	for _, f := range fixtureFiles(t, "valid") {
		rel, _ := filepath.Rel(fixturesDir(t), f)
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParsePackage(filepath.Base(f), data)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if err := Validate(p); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if p.Name() == "" {
				t.Fatal("empty pipeline name")
			}
		})
	}
}

func TestInvalidFixturesRejected(t *testing.T) {
	want := map[string]string{
		"empty_file.yaml":   "empty",
		"empty_zip.zip":     "zip",
		"invalid-zip.zip":   "components_1",
		"invalid_yaml.yaml": "components_1",
		"no_name.yaml":      "pipelineInfo.name",
		"wrong_format.png":  ".png",
	}
	for _, f := range fixtureFiles(t, "invalid") {
		base := filepath.Base(f)
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParsePackage(base, data)
			if err == nil {
				err = Validate(p)
			}
			if err == nil {
				t.Fatal("accepted an invalid pipeline")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if w, ok := want[base]; !ok {
				t.Fatalf("no expectation for %s (error: %v)", base, err)
			} else if !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q does not name the problem (%q)", err, w)
			}
		})
	}
}

// TestParseReadsYAML12: the SDK writes IR with PyYAML, which leaves y, n, Y and off unquoted;
// KFP reads them as YAML 1.2 strings, and so must the box (a YAML 1.1 reader makes them
// booleans, renaming a parameter y to "true"). Several documents and JSON parse too.
func TestParseReadsYAML12(t *testing.T) {
	const doc = `
pipelineInfo: {name: p}
root:
  inputDefinitions:
    parameters:
      y: {parameterType: LIST, defaultValue: [Y, n, off, yes, 2.0, 1e3]}
schemaVersion: 2.1.0
---
platforms: {kubernetes: {deploymentSpec: {executors: {}}}}
`
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"pipelineInfo":{"name":"p"},"root":{"inputDefinitions":{"parameters":{"y":{"defaultValue":["Y","n","off","yes",2,1000],"parameterType":"LIST"}}}},"schemaVersion":"2.1.0"}`
	if string(p.SpecJSON) != want {
		t.Fatalf("spec JSON\n got %s\nwant %s", p.SpecJSON, want)
	}
	if p.PlatformJSON == nil {
		t.Fatal("the platform document was lost")
	}
	if _, ok := p.Spec.Root.InputDefinitions.Parameters["y"]; !ok {
		t.Fatalf("parameters %v lack y", p.Spec.Root.InputDefinitions.Parameters)
	}
	for _, bad := range []string{"a: [1, 2", "a: .inf\n", "- 1\n- 2\n"} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

// TestParseKeepsYAML12Strings: an input named y (or n, yes, on) stays a string key, as the
// SDK's PyYAML writes and reads it; YAML 1.1 parsers made it "true".
func TestParseKeepsYAML12Strings(t *testing.T) {
	src := `pipelineInfo: {name: p}
root:
  dag:
    tasks:
      t:
        componentRef: {name: comp-t}
        inputs:
          parameters:
            x: {runtimeValue: {constant: 2.0}}
            y: {runtimeValue: {constant: on}}
components:
  comp-t:
    executorLabel: exec-t
    inputDefinitions:
      parameters:
        x: {parameterType: NUMBER_INTEGER}
        y: {parameterType: STRING}
deploymentSpec:
  executors:
    exec-t: {container: {image: alpine, command: [echo]}}
schemaVersion: 2.1.0
`
	p, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	in := p.Spec.Root.DAG.Tasks["t"].Inputs.Parameters
	if in["y"] == nil || in["true"] != nil {
		t.Fatalf("task inputs %v: the key y was not kept", in)
	}
	if v := in["y"].RuntimeValue.ConstantValue(); v != "on" {
		t.Errorf("constant on = %#v, want the string \"on\"", v)
	}
	if _, ok := p.Spec.Components["comp-t"].InputDefinitions.Parameters["y"]; !ok {
		t.Errorf("input definition y lost")
	}
}
