package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"
)

// SpecDigest is the digest of a pipeline spec as the API returns it (the PipelineSpec, or
// {"pipeline_spec", "platform_spec"}): "sha256:" and the hex SHA-256 of its canonical JSON
// (keys sorted, no spaces, numbers as doubles as protobuf's Struct holds them). Servers that
// store the same spec return the same digest, whatever order or spacing they write.
func SpecDigest(spec json.RawMessage) (string, error) {
	b, err := CanonicalJSON(spec)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// CanonicalJSON re-encodes a JSON value with sorted keys and no insignificant spaces.
func CanonicalJSON(raw json.RawMessage) ([]byte, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("pipeline spec is not JSON: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// SpecPackage turns a spec as the API returns it into a pipeline package for the upload
// routes: one YAML document, or two (the pipeline spec, then the platform spec) when it
// is the {"pipeline_spec", "platform_spec"} form.
func SpecPackage(spec json.RawMessage) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("pipeline spec is not a JSON object: %w", err)
	}
	ps, hasPS := doc["pipeline_spec"]
	if _, hasRoot := doc["root"]; hasPS && !hasRoot {
		out, err := yaml.JSONToYAML(ps)
		if err != nil {
			return nil, err
		}
		if plat, ok := doc["platform_spec"]; ok && len(bytes.TrimSpace(plat)) > 0 && string(plat) != "null" {
			p, err := yaml.JSONToYAML(plat)
			if err != nil {
				return nil, err
			}
			out = append(append(out, []byte("---\n")...), p...)
		}
		return out, nil
	}
	return yaml.JSONToYAML(spec)
}
