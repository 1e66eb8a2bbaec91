package wheelhouse

import (
	"net/url"
	"testing"
)

func FuzzParseRequirement(f *testing.F) {
	for _, s := range []string{"kfp==2.14.3", `typing-extensions>=3.7.4,<5; python_version<"3.9"`, "a[b,c]~=1.0", "x (>=1)", "==", "a==1.*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRequirement(s)
		if err != nil {
			return
		}
		if _, err := ParseRequirement(r.String()); err != nil {
			t.Errorf("%q parsed as %q, which does not parse again: %v", s, r.String(), err)
		}
	})
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.0", "1!2.0rc1.post3.dev4+local.1", "2.14.3", "v1.0-1", "1.0.DEV"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		w, err := ParseVersion(v.String())
		if err != nil || Compare(v, w) != 0 {
			t.Errorf("%q normalized to %q, which does not compare equal: %v", s, v.String(), err)
		}
	})
}

func FuzzParseHTMLPage(f *testing.F) {
	f.Add(`<a href="../../files/kfp-2.0-py3-none-any.whl#sha256=ab" data-requires-python="&gt;=3.8">kfp</a>`)
	f.Add(`<a href='x.whl' data-yanked>`)
	base, _ := url.Parse("http://127.0.0.1/simple/kfp/")
	f.Fuzz(func(t *testing.T, s string) {
		_ = parseHTMLPage(base, []byte(s))
	})
}

func FuzzParseWheelName(f *testing.F) {
	f.Add("kfp-2.14.3-py3-none-any.whl")
	f.Add("a-1-2-py3-none-any.whl")
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWheelName(s)
		if err == nil && (w.Project == "" || w.Version == "") {
			t.Errorf("%q parsed with an empty project or version", s)
		}
	})
}
