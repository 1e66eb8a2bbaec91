package registry

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Section is a backend's typed configuration: a pointer to a struct whose exported fields
// each carry
//
//   - a `json` tag: the field's key in the configuration file (snake_case), also the source of
//     its flag (--FAMILY-BACKEND-KEY, '_' → '-') and environment variable
//     (KFPBOX_FAMILY_BACKEND_KEY);
//   - a `doc` tag: one sentence for `kfp-box config schema`, the flag's help and the docs;
//   - optionally `secret:"true"`: the value is never printed (config show says REDACTED);
//   - optionally `legacy:"old_key"`: a top-level key of older configuration files that still
//     sets this field (the file key with a deprecation warning; the flag --old-key and the
//     environment variable KFPBOX_OLD_KEY stay as they were).
//
// Field types are string, bool, int and time.Duration. The backend's constructor for the
// section fills in the defaults; Validate checks the values after every source is merged.
type Section interface {
	Validate() error
}

// URLSection is a Section that can also be set from one URL (object_store:
// s3://BUCKET?endpoint=...): the configuration accepts the URL in place of the backend's
// name when its scheme is the backend's id. FromURL resets the section to its defaults and
// sets the fields the URL names; it rejects parameters the section does not have.
type URLSection interface {
	Section
	FromURL(raw string) error
}

// Field describes one field of a section.
type Field struct {
	// Key is the field's configuration key (the json tag).
	Key string `json:"key"`
	// Type is string, bool, int or duration.
	Type string `json:"type"`
	// Value is the field's current value as text (durations as time.Duration prints them).
	Value string `json:"value"`
	// Doc is the field's doc tag.
	Doc string `json:"doc"`
	// Secret says Value must not be shown.
	Secret bool `json:"secret,omitempty"`
	// Legacy is the older top-level key of this setting, if any.
	Legacy string `json:"legacy,omitempty"`

	index int
}

var durationType = reflect.TypeOf(time.Duration(0))

// Fields lists s's fields in declaration order with their current values.
func Fields(s Section) []Field {
	fs, err := fields(s)
	if err != nil {
		// Register checked the type already; a Section that was never registered gets the
		// same message, as a panic, since it is a programming error.
		panic(err)
	}
	return fs
}

func fields(s Section) ([]Field, error) {
	v := reflect.ValueOf(s)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("section %T is not a pointer to a struct", s)
	}
	v = v.Elem()
	t := v.Type()
	var out []Field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if key == "" || key == "-" {
			return nil, fmt.Errorf("%s.%s has no json key", t.Name(), sf.Name)
		}
		doc := sf.Tag.Get("doc")
		if doc == "" {
			return nil, fmt.Errorf("%s.%s has no doc tag", t.Name(), sf.Name)
		}
		f := Field{Key: key, Doc: doc, Secret: sf.Tag.Get("secret") == "true", Legacy: sf.Tag.Get("legacy"), index: i}
		fv := v.Field(i)
		switch {
		case sf.Type == durationType:
			f.Type, f.Value = "duration", time.Duration(fv.Int()).String()
		case sf.Type.Kind() == reflect.String:
			f.Type, f.Value = "string", fv.String()
		case sf.Type.Kind() == reflect.Bool:
			f.Type, f.Value = "bool", strconv.FormatBool(fv.Bool())
		case sf.Type.Kind() == reflect.Int:
			f.Type, f.Value = "int", strconv.FormatInt(fv.Int(), 10)
		default:
			return nil, fmt.Errorf("%s.%s: type %s is not string, bool, int or time.Duration", t.Name(), sf.Name, sf.Type)
		}
		out = append(out, f)
	}
	return out, nil
}

// Keys lists s's keys in declaration order.
func Keys(s Section) []string {
	var keys []string
	for _, f := range Fields(s) {
		keys = append(keys, f.Key)
	}
	return keys
}

// ErrUnknownKey is wrapped by Set and Decode for a key the section does not have.
var ErrUnknownKey = errors.New("unknown key")

// Set parses value into s's field key. An unknown key wraps ErrUnknownKey and names the
// valid keys; a value of the wrong type names the type wanted.
func Set(s Section, key, value string) error {
	var f *Field
	fs := Fields(s)
	for i := range fs {
		if fs[i].Key == key {
			f = &fs[i]
		}
	}
	if f == nil {
		return fmt.Errorf("%w %q (valid: %s)", ErrUnknownKey, key, strings.Join(Keys(s), ", "))
	}
	fv := reflect.ValueOf(s).Elem().Field(f.index)
	switch f.Type {
	case "duration":
		d, err := time.ParseDuration(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not a duration (like 90s or 10m)", key, value)
		}
		fv.SetInt(int64(d))
	case "bool":
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", key, value)
		}
		fv.SetBool(b)
	case "int":
		n, err := strconv.Atoi(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", key, value)
		}
		fv.SetInt(int64(n))
	default:
		fv.SetString(value)
	}
	return nil
}

// Decode sets s's fields from a decoded YAML or JSON mapping and returns the keys it set,
// sorted. Values must be scalars; a null value leaves the default. It stops at the first
// error (unknown keys first, in key order, so the message does not depend on map order).
func Decode(s Section, raw map[string]any) ([]string, error) {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	known := map[string]bool{}
	for _, k := range Keys(s) {
		known[k] = true
	}
	for _, k := range keys {
		if !known[k] {
			return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownKey, k, strings.Join(Keys(s), ", "))
		}
	}
	var set []string
	for _, k := range keys {
		val := raw[k]
		if val == nil {
			continue
		}
		str, err := Scalar(val)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
		if err := Set(s, k, str); err != nil {
			return nil, err
		}
		set = append(set, k)
	}
	return set, nil
}

// Scalar is the text of a decoded YAML/JSON scalar (string, number or bool); mappings and
// lists are errors.
func Scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	case nil:
		return "", nil
	default:
		return "", fmt.Errorf("want a single value, not a %s", kindName(v))
	}
}

func kindName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "mapping"
	case []any:
		return "list"
	default:
		return fmt.Sprintf("%T", v)
	}
}
