package pyenv

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/kfp-box/kfp-box/storage/wheelhouse"
)

var noMatchRe = regexp.MustCompile(`No matching distribution found for ([^\s|]+(?:\s*[<>=!~]=?\s*[^\s;|]+)?)`)

// MissingHint turns pip's "No matching distribution found for REQ" in output into one line
// naming the package, the version and the fix; "" when output has no such error.
func MissingHint(output, upstream string) string {
	m := noMatchRe.FindStringSubmatch(output)
	if m == nil {
		return ""
	}
	return Missing(strings.TrimSpace(m[1]), upstream)
}

// Missing is the one line for a requirement the box cannot satisfy.
func Missing(req, upstream string) string {
	name, version := req, "any version"
	file := req + "-*.whl"
	if r, err := wheelhouse.ParseRequirement(req); err == nil {
		name = r.Name
		if r.Specifier != "" {
			version = "version " + r.Specifier
		}
		file = strings.ReplaceAll(r.Project, "-", "_") + "-VERSION-*.whl"
		if v, ok := strings.CutPrefix(r.Specifier, "=="); ok && !strings.ContainsAny(v, ",*") {
			version = "version " + v
			file = strings.ReplaceAll(r.Project, "-", "_") + "-" + v + "-*.whl"
		}
	}
	where := "is not in the box's wheelhouse (no --pypi-upstream is set)"
	if upstream != "" {
		where = "is neither in the box's wheelhouse nor on " + upstream
	}
	return fmt.Sprintf("Python package %s (%s) %s; fix: kfp-box wheels import %s", name, version, where, file)
}
