package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	yaml "go.yaml.in/yaml/v3"
)

// yamlToJSON converts one YAML (or JSON) document to JSON with YAML 1.2's core schema, as
// the KFP SDK's PyYAML output is meant to be read: only true and false are booleans, so a
// plain y, n, yes or on stays a string. (YAML 1.1 parsers turn an input named y into the
// key "true": a component add(x: int, y: int) would lose its y.)
func yamlToJSON(doc []byte) ([]byte, error) {
	var v any
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return []byte("null"), nil
		}
		return nil, err
	}
	v, err := jsonable(v, 0)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// jsonable turns decoded YAML into values encoding/json accepts: mappings with non-string
// keys get their keys formatted, as YAML-to-JSON converters do.
func jsonable(v any, depth int) (any, error) {
	if depth > 10000 {
		return nil, fmt.Errorf("nested too deeply")
	}
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			y, err := jsonable(x, depth+1)
			if err != nil {
				return nil, err
			}
			t[k] = y
		}
		return t, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			y, err := jsonable(x, depth+1)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = y
		}
		return out, nil
	case []any:
		for i, x := range t {
			y, err := jsonable(x, depth+1)
			if err != nil {
				return nil, err
			}
			t[i] = y
		}
		return t, nil
	}
	return v, nil
}
