package meta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Op is a filter operation, numbered as KFP's filter.proto.
type Op int

// Filter operations.
const (
	OpUnspecified       Op = 0
	OpEquals            Op = 1
	OpNotEquals         Op = 2
	OpGreaterThan       Op = 3
	OpGreaterThanEquals Op = 5
	OpLessThan          Op = 6
	OpLessThanEquals    Op = 7
	OpIn                Op = 8
	OpIsSubstring       Op = 9
)

var opNames = map[string]Op{
	"OPERATION_UNSPECIFIED": OpUnspecified, "EQUALS": OpEquals, "NOT_EQUALS": OpNotEquals,
	"GREATER_THAN": OpGreaterThan, "GREATER_THAN_EQUALS": OpGreaterThanEquals,
	"LESS_THAN": OpLessThan, "LESS_THAN_EQUALS": OpLessThanEquals, "IN": OpIn,
	"IS_SUBSTRING": OpIsSubstring,
}

func (o Op) valid() bool {
	for _, v := range opNames {
		if v == o {
			return true
		}
	}
	return false
}

// String is the KFP name of the operation.
func (o Op) String() string {
	for n, v := range opNames {
		if v == o {
			return n
		}
	}
	return strconv.Itoa(int(o))
}

// ValueKind says which value field of a predicate was set.
type ValueKind int

// Predicate value kinds.
const (
	ValueString ValueKind = iota + 1
	ValueInt
	ValueTimestamp
	ValueStrings
	ValueInts
)

// TagKeyPrefix starts the filter keys that match a pipeline's or version's tags
// ("tags.team").
const TagKeyPrefix = "tags."

// Predicate is one condition of a filter.
type Predicate struct {
	Op   Op
	Key  string
	Kind ValueKind
	// Str is set for ValueString; Int for ValueInt and ValueTimestamp (unix seconds); Strs
	// and Ints for the list kinds.
	Str  string
	Int  int64
	Strs []string
	Ints []int64
}

// Filter is a conjunction of predicates (KFP's filter.proto).
type Filter struct {
	Predicates []Predicate
}

// ParseFilter reads the JSON of a KFP filter as the SDK or a person writes it: operations as
// integers or names, value keys in snake_case or camelCase, int64 values as numbers or
// strings. Unknown fields, bad values and operations that do not fit their value are errors
// wrapping ErrInvalid. An empty string is no filter (nil).
func ParseFilter(raw string) (*Filter, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	var top map[string]json.RawMessage
	if err := strictDecode([]byte(raw), &top); err != nil {
		return nil, fmt.Errorf("filter is not a JSON object: %v: %w", err, ErrInvalid)
	}
	f := &Filter{}
	for k, v := range top {
		if k != "predicates" {
			return nil, fmt.Errorf("filter: unknown field %q: %w", k, ErrInvalid)
		}
		var preds []map[string]json.RawMessage
		if err := strictDecode(v, &preds); err != nil {
			return nil, fmt.Errorf("filter: predicates must be a list of objects: %w", ErrInvalid)
		}
		for i, pm := range preds {
			p, err := parsePredicate(pm)
			if err != nil {
				return nil, fmt.Errorf("filter: predicate %d: %v: %w", i, err, ErrInvalid)
			}
			f.Predicates = append(f.Predicates, p)
		}
	}
	return f, nil
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// snakeCase turns "stringValue" into "string_value"; snake_case input is unchanged.
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

func parsePredicate(pm map[string]json.RawMessage) (Predicate, error) {
	var p Predicate
	seen := map[string]bool{}
	valueSet := false
	setKind := func(k ValueKind) error {
		if valueSet {
			return fmt.Errorf("more than one value")
		}
		valueSet, p.Kind = true, k
		return nil
	}
	for rk, v := range pm {
		k := snakeCase(rk)
		if seen[k] {
			return p, fmt.Errorf("field %q given twice", k)
		}
		seen[k] = true
		switch k {
		case "operation", "op":
			op, err := parseOp(v)
			if err != nil {
				return p, err
			}
			p.Op = op
		case "key":
			if err := json.Unmarshal(v, &p.Key); err != nil {
				return p, fmt.Errorf("key must be a string")
			}
		case "string_value":
			if err := setKind(ValueString); err != nil {
				return p, err
			}
			if err := json.Unmarshal(v, &p.Str); err != nil {
				return p, fmt.Errorf("string_value must be a string")
			}
		case "int_value", "long_value":
			if err := setKind(ValueInt); err != nil {
				return p, err
			}
			n, err := parseInt64(v)
			if err != nil {
				return p, fmt.Errorf("%s: %v", k, err)
			}
			p.Int = n
		case "timestamp_value":
			if err := setKind(ValueTimestamp); err != nil {
				return p, err
			}
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return p, fmt.Errorf("timestamp_value must be an RFC 3339 string")
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return p, fmt.Errorf("timestamp_value: %v", err)
			}
			p.Int = t.Unix()
		case "string_values":
			if err := setKind(ValueStrings); err != nil {
				return p, err
			}
			var l struct {
				Values []string `json:"values"`
			}
			if err := strictDecode(v, &l); err != nil {
				return p, fmt.Errorf("string_values must be {\"values\": [strings]}")
			}
			p.Strs = l.Values
		case "int_values", "long_values":
			if err := setKind(ValueInts); err != nil {
				return p, err
			}
			var l struct {
				Values []json.RawMessage `json:"values"`
			}
			if err := strictDecode(v, &l); err != nil {
				return p, fmt.Errorf("%s must be {\"values\": [integers]}", k)
			}
			for _, e := range l.Values {
				n, err := parseInt64(e)
				if err != nil {
					return p, fmt.Errorf("%s: %v", k, err)
				}
				p.Ints = append(p.Ints, n)
			}
		default:
			return p, fmt.Errorf("unknown field %q", rk)
		}
	}
	switch {
	case p.Key == "":
		return p, fmt.Errorf("key is empty")
	case !valueSet:
		return p, fmt.Errorf("no value for key %q", p.Key)
	case p.Op == OpUnspecified:
		return p, fmt.Errorf("operation is unspecified")
	case p.Op == OpIn && p.Kind != ValueStrings && p.Kind != ValueInts:
		return p, fmt.Errorf("IN needs string_values, int_values or long_values")
	case p.Op != OpIn && (p.Kind == ValueStrings || p.Kind == ValueInts):
		return p, fmt.Errorf("%s cannot take a list of values", p.Op)
	case p.Op == OpIsSubstring && p.Kind != ValueString:
		return p, fmt.Errorf("IS_SUBSTRING needs a string_value")
	}
	return p, nil
}

func parseOp(v json.RawMessage) (Op, error) {
	var n json.Number
	if err := json.Unmarshal(v, &n); err == nil {
		i, err := strconv.Atoi(string(n))
		if err != nil {
			return 0, fmt.Errorf("operation %s is not an integer", n)
		}
		op := Op(i)
		if !op.valid() {
			return 0, fmt.Errorf("unknown operation %d", i)
		}
		return op, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return 0, fmt.Errorf("operation must be a name or an integer")
	}
	if i, err := strconv.Atoi(s); err == nil {
		return parseOp(json.RawMessage(strconv.Itoa(i)))
	}
	op, ok := opNames[strings.ToUpper(s)]
	if !ok {
		return 0, fmt.Errorf("unknown operation %q", s)
	}
	return op, nil
}

// parseInt64 reads an int64 given as a JSON number or string (protojson's int64 form).
func parseInt64(v json.RawMessage) (int64, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return 0, fmt.Errorf("not an integer")
		}
		s = string(n)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	return n, nil
}

// matcher is a compiled predicate.
type matcher func(*row) bool

// compile checks the filter against ix's fields and returns a matcher for all predicates.
func (f *Filter) compile(ix *index) ([]matcher, error) {
	if f == nil {
		return nil, nil
	}
	ms := make([]matcher, 0, len(f.Predicates))
	for _, p := range f.Predicates {
		m, err := p.compile(ix)
		if err != nil {
			return nil, fmt.Errorf("filter on %q: %v: %w", p.Key, err, ErrInvalid)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func (p Predicate) compile(ix *index) (matcher, error) {
	if tag, ok := strings.CutPrefix(p.Key, TagKeyPrefix); ok && ix.tagged {
		// KFP matches tags by equality only, each predicate one key and one value.
		if p.Op != OpEquals {
			return nil, fmt.Errorf("tags can only be filtered with EQUALS, not %s", p.Op)
		}
		if p.Kind != ValueString {
			return nil, fmt.Errorf("a tag filter needs a string_value")
		}
		want := p.Str
		return func(r *row) bool {
			v, ok := r.tags[tag]
			return ok && v == want
		}, nil
	}
	name, ref, ok := ix.resolve(p.Key)
	if !ok {
		return nil, fmt.Errorf("%s has no such key", ix.kind)
	}
	kind := ref.kind
	switch kind {
	case kindString:
		if p.Kind != ValueString && p.Kind != ValueStrings {
			return nil, fmt.Errorf("the key is a string: use string_value")
		}
		if name == "storage_state" {
			// v1 clients spell the values STORAGESTATE_AVAILABLE and STORAGESTATE_ARCHIVED.
			p.Str = strings.TrimPrefix(p.Str, "STORAGESTATE_")
			strs := make([]string, len(p.Strs))
			for i, v := range p.Strs {
				strs[i] = strings.TrimPrefix(v, "STORAGESTATE_")
			}
			p.Strs = strs
		}
		return stringMatcher(ref.pos, p), nil
	default:
		var want int64
		var wants []int64
		switch p.Kind {
		case ValueInt, ValueTimestamp:
			want = p.Int
		case ValueInts:
			wants = p.Ints
		case ValueString:
			// KFP's SQL store compares a string with a number column as a number, so a
			// string of digits (unix seconds for times) works; a person may also write a time
			// as an RFC 3339 string.
			if n, err := strconv.ParseInt(strings.TrimSpace(p.Str), 10, 64); err == nil {
				want = n
				break
			}
			if kind != kindTime {
				return nil, fmt.Errorf("the key is an integer: use int_value")
			}
			t, err := time.Parse(time.RFC3339Nano, p.Str)
			if err != nil {
				return nil, fmt.Errorf("the key is a time: use timestamp_value, unix seconds or an RFC 3339 string")
			}
			want = t.Unix()
		default:
			return nil, fmt.Errorf("the key is a number or time: use int_value or timestamp_value")
		}
		scale := int64(1)
		if kind == kindTime {
			scale = int64(time.Second)
		}
		return numMatcher(ref.pos, p.Op, want, wants, scale), nil
	}
}

func stringMatcher(pos int, p Predicate) matcher {
	want := p.Str
	switch p.Op {
	case OpEquals:
		return func(r *row) bool { return r.str[pos] == want }
	case OpNotEquals:
		return func(r *row) bool { return r.str[pos] != want }
	case OpGreaterThan:
		return func(r *row) bool { return r.str[pos] > want }
	case OpGreaterThanEquals:
		return func(r *row) bool { return r.str[pos] >= want }
	case OpLessThan:
		return func(r *row) bool { return r.str[pos] < want }
	case OpLessThanEquals:
		return func(r *row) bool { return r.str[pos] <= want }
	case OpIn:
		set := make(map[string]bool, len(p.Strs))
		for _, s := range p.Strs {
			set[s] = true
		}
		return func(r *row) bool { return set[r.str[pos]] }
	case OpIsSubstring:
		// SQL LIKE under KFP's default MySQL collation is case-insensitive.
		low := strings.ToLower(want)
		return func(r *row) bool { return strings.Contains(strings.ToLower(r.str[pos]), low) }
	}
	return func(*row) bool { return false }
}

func numMatcher(pos int, op Op, want int64, wants []int64, scale int64) matcher {
	get := func(r *row) int64 {
		v := r.num[pos]
		if scale > 1 {
			// Floor division so that negative times round like SQL's unix seconds.
			q := v / scale
			if v%scale < 0 {
				q--
			}
			return q
		}
		return v
	}
	switch op {
	case OpEquals:
		return func(r *row) bool { return get(r) == want }
	case OpNotEquals:
		return func(r *row) bool { return get(r) != want }
	case OpGreaterThan:
		return func(r *row) bool { return get(r) > want }
	case OpGreaterThanEquals:
		return func(r *row) bool { return get(r) >= want }
	case OpLessThan:
		return func(r *row) bool { return get(r) < want }
	case OpLessThanEquals:
		return func(r *row) bool { return get(r) <= want }
	case OpIn:
		set := make(map[int64]bool, len(wants))
		for _, n := range wants {
			set[n] = true
		}
		return func(r *row) bool { return set[get(r)] }
	}
	return func(*row) bool { return false }
}
