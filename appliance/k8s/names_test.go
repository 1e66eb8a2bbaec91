package k8s

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "my-pvc", "pvc.v1", "0abc", "a-b.c-d", strings.Repeat("a", 63) + "." + strings.Repeat("b", 63)} {
		if err := ValidName(ok); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "/", "a\\b", "-a", "a-", "A", "a..b", ".a", "a.", "a_b", "a b", strings.Repeat("a", 254), "a\x00"} {
		if ValidName(bad) == nil {
			t.Errorf("ValidName(%q) = nil, want an error", bad)
		}
	}
}

// FuzzValidName checks that an accepted name is safe as a directory name beside others: no
// separator, no dot directory, nothing outside [a-z0-9.-], at most 253 bytes.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"a", "..", "a/b", "my-pvc.v1", "-", "a.-b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidName(s) != nil {
			return
		}
		if s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") || len(s) > 253 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
			t.Fatalf("ValidName accepted %q", s)
		}
		if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "-") || strings.Contains(s, "..") {
			t.Fatalf("ValidName accepted %q", s)
		}
	})
}
