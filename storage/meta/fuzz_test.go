package meta

import (
	"errors"
	"testing"
)

// FuzzParseFilter: any input either parses or fails with ErrInvalid, never panics, and a
// parsed filter compiles against the run index or fails with ErrInvalid.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"predicates":[]}`,
		`{"predicates":[{"operation":1,"key":"display_name","stringValue":"x"}]}`,
		`{"predicates":[{"operation":"IN","key":"state","string_values":{"values":["A","B"]}}]}`,
		`{"predicates":[{"op":3,"key":"created_at","timestampValue":"2026-01-02T03:04:05Z"}]}`,
		`{"predicates":[{"operation":8,"key":"created_at","longValues":{"values":["1",2]}}]}`,
		`{"predicates":[{"operation":9,"key":"name","string_value":"a"}]}`,
		`{"predicates":[{"operation":4}]}`, `[`, `null`, `{"predicates":null}`,
	} {
		f.Add(s)
	}
	ix := newIndexes().runs
	f.Fuzz(func(t *testing.T, raw string) {
		flt, err := ParseFilter(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseFilter(%q) = %v, not ErrInvalid", raw, err)
			}
			return
		}
		ms, err := flt.compile(ix)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("compile(%q) = %v, not ErrInvalid", raw, err)
			}
			return
		}
		r := ix.layout(runRow(mkRun(1, "e")))
		for _, m := range ms {
			m(r)
		}
	})
}

// FuzzPageToken: tokens decode or fail with ErrInvalid; a decoded token re-encodes to one
// that decodes to the same cursor.
func FuzzPageToken(f *testing.F) {
	f.Add(encodeToken(cursor{Field: "created_at", Num: 5, ID: "a", Hash: "h"}))
	f.Add(encodeToken(cursor{Field: "display_name", Desc: true, Str: "x y", ID: "b"}))
	f.Add("")
	f.Add("!!")
	f.Add("e30")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := decodeToken(tok)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decodeToken(%q) = %v", tok, err)
			}
			return
		}
		c2, err := decodeToken(encodeToken(c))
		if err != nil || c2 != c {
			t.Fatalf("round trip %+v -> %+v, %v", c, c2, err)
		}
	})
}

// FuzzSortBy: sort_by strings parse to a known key or fail with ErrInvalid.
func FuzzSortBy(f *testing.F) {
	for _, s := range []string{"", "created_at", "created_at desc", "name asc", "metric:acc", " a b c", "display_name DESC"} {
		f.Add(s)
	}
	ix := newIndexes().runs
	f.Fuzz(func(t *testing.T, raw string) {
		sp, err := parseSortBy(ix, raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("parseSortBy(%q) = %v", raw, err)
			}
			return
		}
		if _, ok := ix.fields[sp.field]; !ok {
			t.Fatalf("parseSortBy(%q) gave unknown field %q", raw, sp.field)
		}
	})
}
