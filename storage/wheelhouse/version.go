package wheelhouse

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is a parsed PEP 440 version. Compare orders versions as pip does; the local
// segment (+...) is kept but only breaks ties.
type Version struct {
	Epoch   int
	Release []int
	// PreKind is "a", "b" or "rc" ("" when not a pre-release); PreNum its number.
	PreKind string
	PreNum  int
	// Post is -1 when absent; Dev is -1 when absent.
	Post, Dev int
	Local     string
}

var verRe = regexp.MustCompile(`^v?(?:(\d+)!)?(\d+(?:\.\d+)*)` +
	`(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?(\d*))?` +
	`(?:-(\d+)|[-_.]?(post|rev|r)[-_.]?(\d*))?` +
	`(?:[-_.]?(dev)[-_.]?(\d*))?` +
	`(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$`)

// ParseVersion parses a PEP 440 version, case-insensitively.
func ParseVersion(s string) (Version, error) {
	m := verRe.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return Version{}, fmt.Errorf("version %q is not PEP 440: %w", s, ErrInvalid)
	}
	v := Version{Post: -1, Dev: -1, Local: m[10]}
	if m[1] != "" {
		v.Epoch, _ = strconv.Atoi(m[1])
	}
	for _, p := range strings.Split(m[2], ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			return Version{}, fmt.Errorf("version %q: %w", s, ErrInvalid)
		}
		v.Release = append(v.Release, n)
	}
	if m[3] != "" {
		switch m[3] {
		case "alpha":
			v.PreKind = "a"
		case "beta":
			v.PreKind = "b"
		case "c", "pre", "preview":
			v.PreKind = "rc"
		default:
			v.PreKind = m[3]
		}
		v.PreNum, _ = strconv.Atoi(m[4])
	}
	switch {
	case m[5] != "":
		v.Post, _ = strconv.Atoi(m[5])
	case m[6] != "":
		v.Post, _ = strconv.Atoi(m[7])
	}
	if m[8] != "" {
		v.Dev, _ = strconv.Atoi(m[9])
	}
	return v, nil
}

// IsPre reports a pre-release or development release.
func (v Version) IsPre() bool { return v.PreKind != "" || v.Dev >= 0 }

// String is the normalized form.
func (v Version) String() string {
	var b strings.Builder
	if v.Epoch != 0 {
		fmt.Fprintf(&b, "%d!", v.Epoch)
	}
	for i, r := range v.Release {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(r))
	}
	if v.PreKind != "" {
		fmt.Fprintf(&b, "%s%d", v.PreKind, v.PreNum)
	}
	if v.Post >= 0 {
		fmt.Fprintf(&b, ".post%d", v.Post)
	}
	if v.Dev >= 0 {
		fmt.Fprintf(&b, ".dev%d", v.Dev)
	}
	if v.Local != "" {
		b.WriteString("+" + v.Local)
	}
	return b.String()
}

func preRank(v Version) (int, int) {
	switch {
	case v.PreKind == "" && v.Post < 0 && v.Dev >= 0:
		return -1, 0 // X.devN sorts before X.aN
	case v.PreKind == "a":
		return 0, v.PreNum
	case v.PreKind == "b":
		return 1, v.PreNum
	case v.PreKind == "rc":
		return 2, v.PreNum
	}
	return 3, 0
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Compare returns -1, 0 or 1 as a sorts before, with or after b.
func Compare(a, b Version) int {
	if c := cmpInt(a.Epoch, b.Epoch); c != 0 {
		return c
	}
	if c := cmpRelease(a.Release, b.Release); c != 0 {
		return c
	}
	ak, an := preRank(a)
	bk, bn := preRank(b)
	if c := cmpInt(ak, bk); c != 0 {
		return c
	}
	if c := cmpInt(an, bn); c != 0 {
		return c
	}
	if c := cmpInt(a.Post, b.Post); c != 0 {
		return c
	}
	ad, bd := a.Dev, b.Dev
	if ad < 0 {
		ad = 1 << 30 // no dev segment sorts after any dev release
	}
	if bd < 0 {
		bd = 1 << 30
	}
	if c := cmpInt(ad, bd); c != 0 {
		return c
	}
	return strings.Compare(a.Local, b.Local)
}

func cmpRelease(a, b []int) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if c := cmpInt(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// clause is one comparison of a specifier set.
type clause struct {
	op       string
	v        Version
	wildcard bool   // ==X.* / !=X.*
	raw      string // the version text (for ===)
}

// Specifier is a PEP 440 specifier set such as ">=1.2,<2,!=1.5.*".
type Specifier struct {
	clauses []clause
}

var clauseRe = regexp.MustCompile(`^(===|==|!=|~=|<=|>=|<|>)\s*(.+)$`)

// ParseSpecifier parses a comma-separated specifier set ("" matches every version).
func ParseSpecifier(s string) (Specifier, error) {
	var sp Specifier
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		m := clauseRe.FindStringSubmatch(part)
		if m == nil {
			return Specifier{}, fmt.Errorf("specifier %q: %w", part, ErrInvalid)
		}
		c := clause{op: m[1], raw: strings.TrimSpace(m[2])}
		text := c.raw
		if (c.op == "==" || c.op == "!=") && strings.HasSuffix(text, ".*") {
			c.wildcard, text = true, strings.TrimSuffix(text, ".*")
		}
		if c.op != "===" {
			v, err := ParseVersion(text)
			if err != nil {
				return Specifier{}, fmt.Errorf("specifier %q: %w", part, err)
			}
			c.v = v
		}
		sp.clauses = append(sp.clauses, c)
	}
	return sp, nil
}

// allowsPre reports whether a clause names a pre-release, which lets pre-releases match.
func (s Specifier) allowsPre() bool {
	for _, c := range s.clauses {
		if c.op != "!=" && c.v.IsPre() {
			return true
		}
	}
	return false
}

// Match reports whether v satisfies every clause. Pre-releases match only when a clause
// names one, as pip's default.
func (s Specifier) Match(v Version) bool {
	if v.IsPre() && !s.allowsPre() {
		return false
	}
	for _, c := range s.clauses {
		if !c.match(v) {
			return false
		}
	}
	return true
}

func (c clause) match(v Version) bool {
	pub := v
	pub.Local = ""
	switch c.op {
	case "===":
		return v.String() == c.raw || strings.EqualFold(c.raw, v.String())
	case "==", "!=":
		eq := false
		if c.wildcard {
			eq = v.Epoch == c.v.Epoch && prefixMatch(v.Release, c.v.Release)
		} else {
			w := v
			if c.v.Local == "" {
				w = pub
			}
			eq = Compare(w, c.v) == 0
		}
		return eq == (c.op == "==")
	case "<=":
		return Compare(pub, c.v) <= 0
	case ">=":
		return Compare(pub, c.v) >= 0
	case "<":
		return Compare(pub, c.v) < 0
	case ">":
		return Compare(pub, c.v) > 0
	case "~=":
		if len(c.v.Release) < 2 || Compare(pub, c.v) < 0 {
			return false
		}
		return v.Epoch == c.v.Epoch && prefixMatch(v.Release, c.v.Release[:len(c.v.Release)-1])
	}
	return false
}

// prefixMatch reports whether rel starts with prefix (missing parts of rel count as 0).
func prefixMatch(rel, prefix []int) bool {
	for i, p := range prefix {
		x := 0
		if i < len(rel) {
			x = rel[i]
		}
		if x != p {
			return false
		}
	}
	return true
}
