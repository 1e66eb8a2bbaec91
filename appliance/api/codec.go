package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/appliance/schedule"
	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// This file is the KFP JSON codec: requests are read leniently (snake_case or camelCase keys,
// enum names or numbers, int64 as numbers or strings) but strictly (unknown fields are
// errors, as protojson rejects them); responses are written as grpc-gateway does with
// UseProtoNames: snake_case, empty fields omitted, enums as names, int64 as strings.

func init() {
	registerClassifier(func(err error) (int, bool) {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return codeInvalidArgument, true
		case errors.Is(err, meta.ErrInvalid), errors.Is(err, spec.ErrInvalid), errors.Is(err, schedule.ErrInvalid):
			return codeInvalidArgument, true
		case errors.Is(err, meta.ErrNotFound):
			return codeNotFound, true
		case errors.Is(err, meta.ErrAlreadyExists):
			return codeAlreadyExists, true
		case errors.Is(err, meta.ErrFailedPrecondition):
			return codeFailedPrecondition, true
		}
		return 0, false
	})
}

// shape lists the message-typed fields of a request message whose keys are normalised too;
// fields not listed (pipeline_spec, parameters) are passed through untouched.
type shape map[string]shape

var (
	shapeExperiment = shape{}
	shapeRun        = shape{
		"runtime_config":             shape{},
		"pipeline_version_reference": shape{},
	}
	shapeRecurringRun = shape{
		"runtime_config":             shape{},
		"pipeline_version_reference": shape{},
		"trigger": shape{
			"cron_schedule":     shape{},
			"periodic_schedule": shape{},
		},
	}
	shapePipeline        = shape{}
	shapePipelineVersion = shape{"package_url": shape{}}
	shapeCreatePipeline  = shape{"pipeline": shapePipeline, "pipeline_version": shapePipelineVersion}
)

// snakeCase turns "pipelineSpec" into "pipeline_spec"; snake_case is unchanged.
func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r + ('a' - 'A'))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// normalise rewrites the keys of a JSON object (and of its message fields in sh) to
// snake_case. A key given in both spellings is an error.
func normalise(raw json.RawMessage, sh shape, path string) (json.RawMessage, error) {
	out, _, err := normaliseObject(raw, sh, path)
	return out, err
}

// normaliseObject is normalise that also returns the object's normalised fields (nil for
// an empty or null message).
func normaliseObject(raw json.RawMessage, sh shape, path string) (json.RawMessage, map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return raw, nil, nil
	}
	if raw[0] != '{' {
		if path == "" {
			return nil, nil, fmt.Errorf("the request body must be a JSON object: %w", ErrInvalid)
		}
		return nil, nil, fmt.Errorf("%s must be an object: %w", path, ErrInvalid)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, nil, fmt.Errorf("malformed JSON: %v: %w", err, ErrInvalid)
	}
	out := make(map[string]json.RawMessage, len(m))
	changed := false
	for k, v := range m {
		sk := snakeCase(k)
		if _, dup := out[sk]; dup {
			return nil, nil, fmt.Errorf("field %q given twice: %w", join(path, sk), ErrInvalid)
		}
		changed = changed || sk != k
		if sub, ok := sh[sk]; ok && sub != nil {
			nv, err := normalise(v, sub, join(path, sk))
			if err != nil {
				return nil, nil, err
			}
			changed = changed || !bytes.Equal(bytes.TrimSpace(v), nv)
			v = nv
		}
		out[sk] = v
	}
	if !changed {
		// Already snake_case (the SDK's own requests): no copy of a large body.
		return raw, out, nil
	}
	b, err := json.Marshal(out)
	return b, out, err
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// decodeBody reads a request message into dst: keys normalised by sh, unknown fields
// rejected. An empty body decodes as {}.
func decodeBody(c *gin.Context, sh shape, dst any) error {
	if err := requireJSON(c.Request); err != nil {
		return err
	}
	body, err := readBody(c.Request)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("request body is larger than %d bytes: %w", mbe.Limit, ErrInvalid)
		}
		return fmt.Errorf("reading the request body: %v: %w", err, ErrInvalid)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if !utf8.Valid(body) {
		// protojson refuses it too; encoding/json would silently turn it into U+FFFD.
		return fmt.Errorf("the request body is not valid UTF-8: %w", ErrInvalid)
	}
	return decodeMessage(body, sh, dst)
}

// readBody reads a request body whole, in one allocation when its length is declared.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength <= 0 {
		return io.ReadAll(r.Body)
	}
	buf := bytes.NewBuffer(make([]byte, 0, r.ContentLength+1))
	_, err := buf.ReadFrom(r.Body)
	return buf.Bytes(), err
}

// requireJSON refuses a request body that is not declared as JSON.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" || !hasBody(r) {
		return nil // an empty body, or none: guard refuses bodies without a type
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return nil
	}
	return fmt.Errorf("content type %q: %s %s takes application/json: %w", ct, r.Method, r.URL.Path, ErrUnsupportedMediaType)
}

// decodeMessage is decodeBody on bytes.
func decodeMessage(body []byte, sh shape, dst any) error {
	norm, fields, err := normaliseObject(body, sh, "")
	if err != nil {
		return err
	}
	if len(norm) > largeBody {
		// The large parts of a request are passed-through fields (the pipeline spec, the
		// parameters): set them from the fields already read, and run the strict decoder
		// over the rest, so that a large body is not copied again into the decoder's buffer.
		rest, err := setRawFields(fields, dst)
		if err != nil {
			return err
		}
		if norm, err = json.Marshal(rest); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(norm))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("invalid request: %s: %w", strings.TrimPrefix(err.Error(), "json: "), ErrInvalid)
	}
	return nil
}

// largeBody is the size above which decodeMessage sets passed-through fields directly.
const largeBody = 64 << 10

var rawMessageType = reflect.TypeOf(json.RawMessage(nil))

// setRawFields sets dst's top-level json.RawMessage fields from fields and returns the
// fields left for the strict decoder.
func setRawFields(fields map[string]json.RawMessage, dst any) (map[string]json.RawMessage, error) {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fields, nil
	}
	v = v.Elem()
	rest := make(map[string]json.RawMessage, len(fields))
	for k, raw := range fields {
		rest[k] = raw
	}
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Type != rawMessageType || name == "" || name == "-" {
			continue
		}
		if raw, ok := rest[name]; ok {
			v.Field(i).SetBytes(raw)
			delete(rest, name)
		}
	}
	return rest, nil
}

// i64 is an int64 read from a JSON number or string and written as a string.
type i64 int64

func (n *i64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not an int64", b)
	}
	*n = i64(v)
	return nil
}

func (n i64) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(n), 10) + `"`), nil
}

// ts is a protojson timestamp: RFC 3339 in UTC; the zero time is the Unix epoch, as KFP
// renders unset times.
type ts time.Time

func (t ts) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		tt = time.Unix(0, 0)
	}
	return []byte(`"` + tt.UTC().Format(wireTimeLayout) + `"`), nil
}

// wireTimeLayout is RFC 3339 with at most microseconds, which every client parses (Python's
// datetime has no nanoseconds).
const wireTimeLayout = "2006-01-02T15:04:05.999999Z07:00"

// timeLayouts are the forms requests may use: RFC 3339, and the zone-less ISO 8601 that
// Python's datetime.isoformat() writes for naive datetimes (read as UTC).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"}

// parseTime reads a request timestamp.
func parseTime(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q is not RFC 3339", s)
}

func (t *ts) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a timestamp must be an RFC 3339 string")
	}
	if s == "" {
		*t = ts{}
		return nil
	}
	v, err := parseTime(s)
	if err != nil {
		return err
	}
	*t = ts(v)
	return nil
}

// tsp returns a timestamp for a response field that is always present.
func tsp(t time.Time) *ts { v := ts(t); return &v }

// tsOpt returns nil for the zero time, omitting the field.
func tsOpt(t time.Time) *ts {
	if t.IsZero() {
		return nil
	}
	return tsp(t)
}

// decodeEnum reads a proto enum given by name or number; names are in number order.
func decodeEnum(raw json.RawMessage, names []string, field string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		for _, n := range names {
			if n == s {
				return s, nil
			}
		}
		return "", fmt.Errorf("%s: unknown value %q: %w", field, s, ErrInvalid)
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil || n < 0 || n >= len(names) {
		return "", fmt.Errorf("%s: unknown value %s: %w", field, raw, ErrInvalid)
	}
	return names[n], nil
}

// wireStatus is a google.rpc.Status inside a resource.
type wireStatus struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

func statusOf(s *meta.Status) *wireStatus {
	if s == nil || (s.Code == 0 && s.Message == "") {
		return nil
	}
	return &wireStatus{Code: s.Code, Message: s.Message}
}

// writeJSON writes v with status 200. Responses go through encoding/json with the wire
// types' tags (gin's default renderer would escape HTML).
func writeJSON(c *gin.Context, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		abort(c, fmt.Errorf("encoding the response: %w", err))
		return
	}
	c.Data(http.StatusOK, "application/json", buf.Bytes())
}

// empty is the {} KFP returns from archive, delete and friends.
var empty = struct{}{}
