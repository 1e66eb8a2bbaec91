package pyenv

import "testing"

func FuzzParseCommand(f *testing.F) {
	f.Add(compiled[2])
	f.Add("pip install 'a==1' \"b>=2\" --no-deps; echo \\\n x # comment")
	f.Add("python3 -m pip install -i http://x/simple --index-url=http://y 'unterminated")
	f.Fuzz(func(t *testing.T, script string) {
		c := ParseCommand([]string{"sh", "-c", script})
		for _, in := range c.Installs {
			for _, r := range in.Requirements {
				if r == "" {
					t.Errorf("empty requirement from %q", script)
				}
			}
		}
		_ = c.Key()
		_ = c.Requirements()
	})
}
