package k8s

import (
	"errors"
	"strings"
)

// ValidName checks an object name as the API server checks names of Secrets, ConfigMaps and
// PersistentVolumeClaims: a DNS-1123 subdomain, at most 253 characters of dot-separated
// labels of lowercase letters, digits and '-', each starting and ending with a letter or a
// digit. So ".", "..", "a/b" and "" are refused. It is the one check of a claim's name: the
// API, the engine's volume mounts and kfp-kubernetes' CreatePVC all reach claims through
// this package, which applies it (the claim's directory is named after it).
func ValidName(name string) error {
	if name == "" {
		return errors.New("a name is required")
	}
	if len(name) > 253 {
		return errors.New("must be no more than 253 characters")
	}
	for _, label := range strings.Split(name, ".") {
		if !validLabel(label, len(label)) {
			return errors.New("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")
		}
	}
	return nil
}

// validLabel says whether l is an RFC 1123 label of at most max characters.
func validLabel(l string, max int) bool {
	if l == "" || len(l) > max {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(l)-1:
		default:
			return false
		}
	}
	return true
}
