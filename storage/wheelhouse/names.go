package wheelhouse

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Sentinel errors, wrapped with %w and a quoted name.
var (
	// ErrInvalid is a file or requirement that is not a valid wheel or requirement.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound is a wheel or project the wheelhouse does not hold.
	ErrNotFound = errors.New("not found")
	// ErrUpstream is a failure of the upstream index (unreachable, bad answer, bad hash).
	ErrUpstream = errors.New("upstream index")
)

var normRe = regexp.MustCompile(`[-_.]+`)

// Normalize is PEP 503's normalized project name: runs of -, _ and . become one -, lower case.
func Normalize(name string) string {
	return strings.ToLower(normRe.ReplaceAllString(name, "-"))
}

// WheelName is a parsed PEP 427 wheel file name.
type WheelName struct {
	// Project is the normalized project name.
	Project string
	// Version is the version as written in the file name.
	Version string
	// Tags are the python, abi and platform tags.
	Python, ABI, Platform string
}

var (
	projectRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	versionRe = regexp.MustCompile(`^[A-Za-z0-9.!+_]+$`)
)

// ParseWheelName parses "{dist}-{version}(-{build})?-{python}-{abi}-{platform}.whl".
func ParseWheelName(file string) (WheelName, error) {
	base, ok := strings.CutSuffix(file, ".whl")
	if !ok || strings.ContainsAny(file, "/\\\x00") {
		return WheelName{}, fmt.Errorf("wheel %q: the name must be a PEP 427 file name ending in .whl: %w", file, ErrInvalid)
	}
	parts := strings.Split(base, "-")
	if len(parts) != 5 && len(parts) != 6 {
		return WheelName{}, fmt.Errorf("wheel %q: want NAME-VERSION[-BUILD]-PYTHON-ABI-PLATFORM.whl: %w", file, ErrInvalid)
	}
	n := len(parts)
	w := WheelName{Project: Normalize(parts[0]), Version: parts[1], Python: parts[n-3], ABI: parts[n-2], Platform: parts[n-1]}
	if !projectRe.MatchString(parts[0]) || !versionRe.MatchString(w.Version) || w.Python == "" || w.ABI == "" || w.Platform == "" {
		return WheelName{}, fmt.Errorf("wheel %q: bad project, version or tags: %w", file, ErrInvalid)
	}
	return w, nil
}

// Requirement is a parsed PEP 508 requirement, without URL forms.
type Requirement struct {
	// Name is the project name as written; Project is it normalized.
	Name, Project string
	// Extras are the [extras], if any.
	Extras []string
	// Specifier is the version specifier ("==2.14.3", ">=1,<2"), "" for any.
	Specifier string
	// Marker is the environment marker after ';', "" when none.
	Marker string
}

// String is the requirement as pip reads it.
func (r Requirement) String() string {
	s := r.Name
	if len(r.Extras) > 0 {
		s += "[" + strings.Join(r.Extras, ",") + "]"
	}
	s += r.Specifier
	if r.Marker != "" {
		s += "; " + r.Marker
	}
	return s
}

var reqRe = regexp.MustCompile(`^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*\(?([^;()]*)\)?\s*(?:;\s*(.*))?$`)

// ParseRequirement parses a PEP 508 requirement such as "kfp==2.14.3",
// "pandas>=2,<3" or `typing-extensions>=3.7.4,<5; python_version<"3.9"`.
func ParseRequirement(s string) (Requirement, error) {
	if strings.Contains(s, "://") || strings.Contains(s, "@") && !strings.Contains(s, ";") {
		return Requirement{}, fmt.Errorf("requirement %q: URL requirements are not supported: %w", s, ErrInvalid)
	}
	m := reqRe.FindStringSubmatch(s)
	if m == nil {
		return Requirement{}, fmt.Errorf("requirement %q: %w", s, ErrInvalid)
	}
	r := Requirement{Name: m[1], Project: Normalize(m[1]), Specifier: strings.ReplaceAll(strings.TrimSpace(m[3]), " ", ""), Marker: strings.TrimSpace(m[4])}
	if m[2] != "" {
		for _, e := range strings.Split(strings.Trim(m[2], "[]"), ",") {
			if e = strings.TrimSpace(e); e != "" {
				r.Extras = append(r.Extras, e)
			}
		}
	}
	if r.Specifier != "" {
		if _, err := ParseSpecifier(r.Specifier); err != nil {
			return Requirement{}, fmt.Errorf("requirement %q: %w", s, err)
		}
	}
	return r, nil
}
