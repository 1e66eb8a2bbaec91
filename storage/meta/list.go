package meta

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kfp-box/kfp-box/storage/kv"
)

// Page sizes, as KFP's list requests.
const (
	DefaultPageSize = 20
	MaxPageSize     = 200
)

// ListOptions are a list request's paging, sorting and filtering, as raw API strings; the
// store parses and checks them (errors wrap ErrInvalid).
type ListOptions struct {
	// Filter is the JSON of a KFP filter ("" for none).
	Filter string
	// SortBy is "field", "field asc" or "field desc" ("" = created_at ascending).
	SortBy string
	// PageSize is 0 for the default, at most MaxPageSize (larger is capped), never negative.
	PageSize int
	// PageToken is the next_page_token of the previous page ("" for the first).
	PageToken string
}

// Page is one page of a list.
type Page[T any] struct {
	Items []*T
	// TotalSize counts every record that matches the filter, on all pages.
	TotalSize int
	// NextPageToken is empty on the last page.
	NextPageToken string
}

// sortSpec is a parsed sort_by.
type sortSpec struct {
	field string
	ref   fieldRef
	desc  bool
}

// parseSortBy checks a sort_by string against ix's keys.
func parseSortBy(ix *index, raw string) (sortSpec, error) {
	f := strings.Fields(raw)
	if len(f) == 0 {
		_, ref, _ := ix.resolve("created_at")
		return sortSpec{field: "created_at", ref: ref}, nil
	}
	if len(f) > 2 {
		return sortSpec{}, fmt.Errorf("sort_by %q: want \"field\", \"field asc\" or \"field desc\": %w", raw, ErrInvalid)
	}
	var sp sortSpec
	if len(f) == 2 {
		switch strings.ToLower(f[1]) {
		case "asc":
		case "desc":
			sp.desc = true
		default:
			return sortSpec{}, fmt.Errorf("sort_by %q: direction must be asc or desc: %w", raw, ErrInvalid)
		}
	}
	name, ref, ok := ix.resolve(f[0])
	if !ok {
		return sortSpec{}, fmt.Errorf("sort_by %q: %s has no such key: %w", raw, ix.kind, ErrInvalid)
	}
	sp.field, sp.ref = name, ref
	return sp, nil
}

// cursor is the keyset position a page token carries.
type cursor struct {
	Field string `json:"f"`
	Desc  bool   `json:"d,omitempty"`
	Str   string `json:"s,omitempty"`
	Num   int64  `json:"n,omitempty"`
	ID    string `json:"i"`
	// Hash binds the token to the filter and scope it was made for.
	Hash string `json:"h"`
}

func encodeToken(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken reads a page token; malformed tokens wrap ErrInvalid.
func decodeToken(tok string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(tok, "="))
	if err != nil {
		return c, fmt.Errorf("page_token is not valid: %w", ErrInvalid)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.ID == "" || c.Field == "" {
		return c, fmt.Errorf("page_token is not valid: %w", ErrInvalid)
	}
	return c, nil
}

// listKey is a matching row's sort position.
type listKey struct {
	s  string
	n  int64
	id string
}

func (sp sortSpec) less(a, b listKey) bool {
	var c int
	if sp.ref.kind == kindString {
		c = strings.Compare(a.s, b.s)
	} else if a.n < b.n {
		c = -1
	} else if a.n > b.n {
		c = 1
	}
	if c == 0 {
		c = strings.Compare(a.id, b.id)
	}
	if sp.desc {
		return c > 0
	}
	return c < 0
}

// list filters, sorts and pages ix in memory and returns the ids of one page. scope adds
// equality constraints (for example experiment_id) that bind the token like the filter.
func list(ix *index, opts ListOptions, scope map[string]string) (ids []string, total int, next string, err error) {
	switch {
	case opts.PageSize < 0:
		return nil, 0, "", fmt.Errorf("page_size %d is negative: %w", opts.PageSize, ErrInvalid)
	case opts.PageSize == 0:
		opts.PageSize = DefaultPageSize
	case opts.PageSize > MaxPageSize:
		opts.PageSize = MaxPageSize
	}
	f, err := ParseFilter(opts.Filter)
	if err != nil {
		return nil, 0, "", err
	}
	ms, err := f.compile(ix)
	if err != nil {
		return nil, 0, "", err
	}
	scopeKeys := make([]string, 0, len(scope))
	for k := range scope {
		scopeKeys = append(scopeKeys, k)
	}
	sort.Strings(scopeKeys)
	for _, k := range scopeKeys {
		_, ref, ok := ix.resolve(k)
		if !ok || ref.kind != kindString {
			return nil, 0, "", fmt.Errorf("scope %q: %w", k, ErrInvalid)
		}
		ms = append(ms, stringMatcher(ref.pos, Predicate{Op: OpEquals, Str: scope[k]}))
	}
	sp, err := parseSortBy(ix, opts.SortBy)
	if err != nil {
		return nil, 0, "", err
	}
	hash := listHash(f, scope, scopeKeys)
	var after *listKey
	if opts.PageToken != "" {
		c, err := decodeToken(opts.PageToken)
		if err != nil {
			return nil, 0, "", err
		}
		if c.Field != sp.field || c.Desc != sp.desc || c.Hash != hash {
			return nil, 0, "", fmt.Errorf("page_token was made for another sort_by or filter: %w", ErrInvalid)
		}
		after = &listKey{s: c.Str, n: c.Num, id: c.ID}
	}

	// Keep the page_size+1 smallest keys after the cursor in a bounded, sorted buffer.
	limit := opts.PageSize + 1
	buf := make([]listKey, 0, limit)
	ix.each(func(r *row) bool {
		for _, m := range ms {
			if !m(r) {
				return true
			}
		}
		total++
		s, n := r.get(sp.ref)
		k := listKey{s: s, n: n, id: r.id}
		if after != nil && !sp.less(*after, k) {
			return true
		}
		if len(buf) == limit && !sp.less(k, buf[limit-1]) {
			return true
		}
		i, _ := slices.BinarySearchFunc(buf, k, func(a, b listKey) int {
			if sp.less(a, b) {
				return -1
			}
			return 1
		})
		if len(buf) < limit {
			buf = append(buf, listKey{})
		}
		copy(buf[i+1:], buf[i:len(buf)-1])
		buf[i] = k
		return true
	})
	if len(buf) > opts.PageSize {
		last := buf[opts.PageSize-1]
		next = encodeToken(cursor{Field: sp.field, Desc: sp.desc, Str: last.s, Num: last.n, ID: last.id, Hash: hash})
		buf = buf[:opts.PageSize]
	}
	ids = make([]string, len(buf))
	for i, k := range buf {
		ids[i] = k.id
	}
	return ids, total, next, nil
}

func listHash(f *Filter, scope map[string]string, keys []string) string {
	h := sha256.New()
	if f != nil {
		b, _ := json.Marshal(f.Predicates)
		h.Write(b)
	}
	for _, k := range keys {
		fmt.Fprintf(h, "\x00%s=%s", k, scope[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// listPage runs list on ix and decodes the page's records from keys made by keyOf.
func listPage[T any](ctx context.Context, s *Store, ix *index, opts ListOptions, scope map[string]string, keyOf func(id string) string) (*Page[T], error) {
	ids, total, next, err := list(ix, opts, scope)
	if err != nil {
		return nil, err
	}
	p := &Page[T]{TotalSize: total, NextPageToken: next, Items: make([]*T, 0, len(ids))}
	err = s.kv.View(ctx, func(tx kv.Tx) error {
		for _, id := range ids {
			t := new(T)
			if err := getJSON(tx, keyOf(id), t); err != nil {
				if err == ErrNotFound {
					continue // deleted since the index was read
				}
				return err
			}
			p.Items = append(p.Items, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}
