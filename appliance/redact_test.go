package appliance

import (
	"strings"
	"testing"
)

func TestRedactSecrets(t *testing.T) {
	cases := []struct{ in, want string }{
		{"embedded", "embedded"},
		{"127.0.0.1:8888", "127.0.0.1:8888"},
		{"s3://bkt?endpoint=http%3A%2F%2Fminio%3A9000&access_key=AK&secret_key=SK", "s3://bkt?access_key=AK&endpoint=http%3A%2F%2Fminio%3A9000&secret_key=REDACTED"},
		{"postgres://kfp:hunter2@db:5432/kfp?sslmode=disable", "postgres://kfp:REDACTED@db:5432/kfp?sslmode=disable"},
		{"host=db user=kfp password=hunter2 dbname=kfp", "host=db user=kfp password=REDACTED dbname=kfp"},
		{"https://pypi.example.com/simple/?token=abc", "https://pypi.example.com/simple/?token=REDACTED"},
		{"", ""},
	}
	for _, c := range cases {
		if got := RedactSecrets(c.in); got != c.want {
			t.Errorf("RedactSecrets(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzRedactSecrets: a secret given as a password, or as a query or key=value parameter
// named secret/password/token, never survives, and nothing panics.
func FuzzRedactSecrets(f *testing.F) {
	f.Add("s3://b?secret_key=", "topsecretvalue")
	f.Add("postgres://u:", "topsecretvalue")
	f.Add("host=db password=", "topsecretvalue")
	f.Fuzz(func(t *testing.T, prefix, secret string) {
		_ = RedactSecrets(prefix + secret)
		if len(secret) < 8 || strings.ContainsAny(secret, "&#?@/ =:%+;\t\n\r\\[]") {
			return
		}
		for _, form := range []string{
			"s3://bucket?endpoint=x&secret_key=" + secret,
			"postgres://user:" + secret + "@db/kfp",
			"host=db password=" + secret + " dbname=kfp",
		} {
			if got := RedactSecrets(form); strings.Contains(got, secret) {
				t.Fatalf("RedactSecrets(%q) = %q keeps the secret", form, got)
			}
		}
	})
}
