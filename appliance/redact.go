package appliance

import (
	"net/url"
	"regexp"
	"strings"
)

// redacted replaces a secret in what RedactSecrets returns.
const redacted = "REDACTED"

// RedactSecrets hides the secrets a configuration value may carry, for printing it: the
// password of a URL's user information, query parameters and key=value words whose names
// say secret, password or token (an object store's secret_key, a PostgreSQL DSN's
// password). Anything else is returned as it is.
func RedactSecrets(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Opaque == "" && (u.User != nil || u.RawQuery != "") {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
		if u.RawQuery != "" {
			q, err := url.ParseQuery(u.RawQuery)
			if err != nil {
				u.RawQuery = redacted
			} else {
				for k := range q {
					if secretName(k) {
						q[k] = []string{redacted}
					}
				}
				u.RawQuery = q.Encode()
			}
		}
		return u.String()
	}
	if i := strings.Index(s, "://"); i > 0 {
		// Not a valid URL: hide whatever stands between "user:" and the last "@".
		rest := s[i+3:]
		if at := strings.LastIndex(rest, "@"); at > 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				s = s[:i+3] + rest[:c+1] + redacted + rest[at:]
			}
		}
	}
	// key=value words (a PostgreSQL DSN) and parameters of what did not parse as a URL.
	return secretParam.ReplaceAllString(s, "${1}="+redacted)
}

// secretParam matches a parameter whose name says secret, password or token, up to the
// end of its value (whitespace, '&' or ';').
var secretParam = regexp.MustCompile(`(?i)([a-z0-9_.-]*(?:secret|password|passwd|token)[a-z0-9_.-]*)=[^&;\s]*`)

// secretName says whether a parameter's name marks its value as a secret.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"secret", "password", "passwd", "token"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
