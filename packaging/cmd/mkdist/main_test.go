package main

import (
	"strings"
	"testing"
)

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":          "1.2.3",
		"1.2.3":           "1.2.3",
		"v1.2.3-rc1":      "1.2.3+rc1",
		"v1.2.3-4-gabcde": "1.2.3+4.gabcde",
		"e1036e9":         "0~git.e1036e9",
		"e1036e9-dirty":   "0~git.e1036e9.dirty",
		"4317072":         "0~git.4317072",
		"4317072-dirty":   "0~git.4317072.dirty",
		"v2":              "0~git.2",
	} {
		got, err := DebVersion(in)
		if err != nil || got != want {
			t.Errorf("DebVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "v", "1.0 beta", "1.0/2", "1.0_x", "1:2"} {
		if got, err := DebVersion(bad); err == nil {
			t.Errorf("DebVersion(%q) = %q, want an error", bad, got)
		}
	}
}

// FuzzDebVersion: any accepted version starts with a digit, keeps to Debian's characters and
// has no '-' (so no revision is split off).
func FuzzDebVersion(f *testing.F) {
	for _, s := range []string{"v1.2.3-4-gabc", "abc-dirty", "", "1:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := DebVersion(s)
		if err != nil {
			return
		}
		if v == "" || v[0] < '0' || v[0] > '9' || strings.Contains(v, "-") {
			t.Fatalf("DebVersion(%q) = %q", s, v)
		}
		for _, r := range v {
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(".+~", r)) {
				t.Fatalf("DebVersion(%q) = %q: character %q", s, v, r)
			}
		}
	})
}
