package spec

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// ErrInvalid is wrapped by every parse and validation error.
var ErrInvalid = errors.New("invalid pipeline spec")

// MaxPackageSize bounds an uploaded package and each decompressed member.
const MaxPackageSize = 32 << 20

// Pipeline is a parsed pipeline: the IR and the optional platform document.
type Pipeline struct {
	Spec     *PipelineSpec
	Platform *PlatformSpec
	// SpecJSON and PlatformJSON are the documents as JSON objects, as given (nil when absent).
	SpecJSON     json.RawMessage
	PlatformJSON json.RawMessage
}

// Name is pipelineInfo.name.
func (p *Pipeline) Name() string { return p.Spec.PipelineInfo.Name }

// StoredJSON is the form KFP stores and returns as pipeline_spec: the spec itself, or
// {"pipeline_spec": ..., "platform_spec": ...} when a platform document exists.
func (p *Pipeline) StoredJSON() json.RawMessage {
	if len(p.PlatformJSON) == 0 {
		return p.SpecJSON
	}
	b, _ := json.Marshal(map[string]json.RawMessage{"pipeline_spec": p.SpecJSON, "platform_spec": p.PlatformJSON})
	return b
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Parse reads IR from YAML or JSON, one document or several separated by "---". The pipeline
// document is the one with pipelineInfo and root; the platform document has platforms.
func Parse(data []byte) (*Pipeline, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalidf("the file is empty")
	}
	p := &Pipeline{}
	for i, doc := range splitDocuments(data) {
		js, err := yamlToJSON(doc)
		if err != nil {
			return nil, invalidf("document %d is not valid YAML or JSON: %v", i+1, err)
		}
		js = bytes.TrimSpace(js)
		if len(js) == 0 || string(js) == "null" {
			continue
		}
		if js[0] != '{' {
			return nil, invalidf("document %d is not a mapping", i+1)
		}
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(js, &probe); err != nil {
			return nil, invalidf("document %d: %v", i+1, err)
		}
		switch {
		case probe["pipelineInfo"] != nil || probe["root"] != nil || probe["pipeline_spec"] != nil:
			if p.SpecJSON != nil {
				return nil, invalidf("more than one pipeline spec document")
			}
			if err := p.setFromObject(js); err != nil {
				return nil, err
			}
		case probe["platforms"] != nil:
			if p.PlatformJSON != nil {
				return nil, invalidf("more than one platform spec document")
			}
			if err := p.setPlatform(js); err != nil {
				return nil, err
			}
		default:
			return nil, invalidf("document %d is neither a pipeline spec (pipelineInfo, root) nor a platform spec (platforms)", i+1)
		}
	}
	if p.Spec == nil {
		return nil, invalidf("the file is empty or has no pipeline spec document (pipelineInfo and root)")
	}
	return p, nil
}

// FromJSON reads the pipeline_spec of an API request: the PipelineSpec object, or an object
// {"pipeline_spec": ..., "platform_spec": ...}.
func FromJSON(obj json.RawMessage) (*Pipeline, error) {
	obj = bytes.TrimSpace(obj)
	if len(obj) == 0 || obj[0] != '{' {
		return nil, invalidf("pipeline_spec must be a JSON object")
	}
	p := &Pipeline{}
	if err := p.setFromObject(obj); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Pipeline) setFromObject(js json.RawMessage) error {
	var wrapped struct {
		PipelineSpec json.RawMessage `json:"pipeline_spec"`
		PlatformSpec json.RawMessage `json:"platform_spec"`
	}
	if err := json.Unmarshal(js, &wrapped); err == nil && len(wrapped.PipelineSpec) > 0 {
		if err := p.setSpec(wrapped.PipelineSpec); err != nil {
			return err
		}
		if len(wrapped.PlatformSpec) > 0 && string(wrapped.PlatformSpec) != "null" && string(wrapped.PlatformSpec) != "{}" {
			return p.setPlatform(wrapped.PlatformSpec)
		}
		return nil
	}
	return p.setSpec(js)
}

func (p *Pipeline) setSpec(js json.RawMessage) error {
	var s PipelineSpec
	if err := strictUnmarshal(js, &s); err != nil {
		return invalidf("pipeline spec: %v", err)
	}
	p.Spec, p.SpecJSON = &s, js
	return nil
}

func (p *Pipeline) setPlatform(js json.RawMessage) error {
	var ps PlatformSpec
	if err := json.Unmarshal(js, &ps); err != nil {
		return invalidf("platform spec: %v", err)
	}
	p.Platform, p.PlatformJSON = &ps, js
	return nil
}

func strictUnmarshal(js []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the object")
	}
	return nil
}

// splitDocuments splits YAML on lines that are exactly "---" (with optional trailing space).
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if t := bytes.TrimRight(line, " \t\r\n"); string(t) == "---" {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
			cur.Reset()
			continue
		}
		cur.Write(line)
	}
	return append(docs, cur.Bytes())
}

// ParsePackage reads an uploaded file: raw YAML/JSON by suffix (.yaml, .yml, .json), else a
// zip or gzip-compressed tar by magic bytes holding pipeline.yaml (or one .yaml/.yml member).
func ParsePackage(filename string, data []byte) (*Pipeline, error) {
	if len(data) > MaxPackageSize {
		return nil, invalidf("the file is larger than %d bytes", MaxPackageSize)
	}
	ext := strings.ToLower(path.Ext(filename))
	switch {
	case ext == ".yaml" || ext == ".yml" || ext == ".json":
		return Parse(data)
	case bytes.HasPrefix(data, []byte("PK")):
		member, err := fromZip(data)
		if err != nil {
			return nil, err
		}
		return Parse(member)
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		member, err := fromTarGz(data)
		if err != nil {
			return nil, err
		}
		return Parse(member)
	case len(bytes.TrimSpace(data)) == 0:
		return nil, invalidf("the file is empty")
	}
	if ext != "" && ext != ".txt" {
		return nil, invalidf("unexpected file type %q: expected .yaml, .yml, .json, .zip or .tar.gz", ext)
	}
	return Parse(data)
}

func fromZip(data []byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, invalidf("not a valid zip file: %v", err)
	}
	var pick *zip.File
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		if path.Base(f.Name) == "pipeline.yaml" {
			pick = f
			break
		}
		if pick == nil && isYAMLName(f.Name) {
			pick = f
		}
	}
	if pick == nil {
		return nil, invalidf("the zip file has no pipeline.yaml")
	}
	rc, err := pick.Open()
	if err != nil {
		return nil, invalidf("zip member %q: %v", pick.Name, err)
	}
	defer rc.Close()
	return readLimited(rc, pick.Name)
}

func fromTarGz(data []byte) ([]byte, error) {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, invalidf("not a valid gzip file: %v", err)
	}
	tr := tar.NewReader(gz)
	var fallback []byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, invalidf("not a valid tar.gz file: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if path.Base(h.Name) == "pipeline.yaml" {
			return readLimited(tr, h.Name)
		}
		if fallback == nil && isYAMLName(h.Name) {
			if fallback, err = readLimited(tr, h.Name); err != nil {
				return nil, err
			}
		}
	}
	if fallback == nil {
		return nil, invalidf("the tar.gz file has no pipeline.yaml")
	}
	return fallback, nil
}

func isYAMLName(n string) bool {
	e := strings.ToLower(path.Ext(n))
	return e == ".yaml" || e == ".yml"
}

func readLimited(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxPackageSize+1))
	if err != nil {
		return nil, invalidf("reading %q: %v", name, err)
	}
	if len(b) > MaxPackageSize {
		return nil, invalidf("%q is larger than %d bytes", name, MaxPackageSize)
	}
	return b, nil
}
