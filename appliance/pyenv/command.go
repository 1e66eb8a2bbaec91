package pyenv

import (
	"sort"
	"strings"

	"github.com/kfp-box/kfp-box/storage/wheelhouse"
)

// Install is one `pip install` of a component's command.
type Install struct {
	// Requirements as written (PEP 508).
	Requirements []string `json:"requirements"`
	// NoDeps is --no-deps.
	NoDeps bool `json:"no_deps,omitempty"`
	// IndexURLs are --index-url/-i and --extra-index-url values: the component's own index
	// (pip_index_urls), honoured as written.
	IndexURLs []string `json:"index_urls,omitempty"`
}

// Command is what a compiled command says about Python.
type Command struct {
	// Installs are its pip installs, in order.
	Installs []Install
	// UsesPython is true when the command runs python or pip at all.
	UsesPython bool
}

// OwnIndex reports whether the component names its own package index.
func (c Command) OwnIndex() bool {
	for _, in := range c.Installs {
		if len(in.IndexURLs) > 0 {
			return true
		}
	}
	return false
}

// Key is a canonical text of the installs (order kept; requirements of one install
// sorted; the component's own index URLs included, since they decide what is installed),
// which names a cached environment.
func (c Command) Key() string {
	var b strings.Builder
	for _, in := range c.Installs {
		reqs := append([]string(nil), in.Requirements...)
		sort.Strings(reqs)
		b.WriteString("install")
		if in.NoDeps {
			b.WriteString(" --no-deps")
		}
		for _, u := range in.IndexURLs {
			b.WriteString(" --index-url " + u)
		}
		for _, r := range reqs {
			b.WriteString(" " + r)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Requirements lists every requirement of every install, parsed; those that do not parse
// are skipped.
func (c Command) Requirements() []wheelhouse.Requirement {
	var out []wheelhouse.Requirement
	for _, in := range c.Installs {
		for _, s := range in.Requirements {
			if r, err := wheelhouse.ParseRequirement(s); err == nil {
				out = append(out, r)
			}
		}
	}
	return out
}

// pip options that take a value (the next word, or =value).
var pipValueOpts = map[string]bool{
	"-i": true, "--index-url": true, "--extra-index-url": true, "--trusted-host": true,
	"-f": true, "--find-links": true, "-c": true, "--constraint": true, "-r": true, "--requirement": true,
	"-t": true, "--target": true, "--prefix": true, "--root": true, "--platform": true,
	"--python-version": true, "--implementation": true, "--abi": true, "--src": true,
	"--upgrade-strategy": true, "--progress-bar": true, "--cache-dir": true, "--log": true,
	"--timeout": true, "--retries": true, "--proxy": true, "--cert": true, "--client-cert": true,
	"-e": true, "--editable": true, "--global-option": true, "--config-settings": true, "-C": true,
}

// ParseCommand reads the pip installs from a container's argv, looking inside `sh -c`
// scripts, as the KFP SDK compiles lightweight components.
func ParseCommand(argv []string) Command {
	var c Command
	var scan func(words []string)
	scan = func(words []string) {
		for i := 0; i < len(words); i++ {
			w := words[i]
			base := w[strings.LastIndex(w, "/")+1:]
			if strings.HasPrefix(base, "python") || base == "pip" || base == "pip3" {
				c.UsesPython = true
			}
			if (w == "-c" || w == "-ec" || w == "-xc" || w == "-exc") && i+1 < len(words) && i > 0 && isShell(words[i-1]) {
				for _, cmd := range shellCommands(words[i+1]) {
					scan(cmd)
				}
				i++
				continue
			}
			if w == "kfp.dsl.executor_main" {
				c.UsesPython = true
			}
		}
		if in, ok := pipInstall(words); ok {
			c.Installs = append(c.Installs, in)
		}
	}
	scan(argv)
	return c
}

func isShell(w string) bool {
	base := w[strings.LastIndex(w, "/")+1:]
	return base == "sh" || base == "bash" || base == "dash" || base == "ash"
}

// pipInstall recognises `[VAR=x...] (pip|pip3|python[3] -m pip) install ARGS` as one simple
// command.
func pipInstall(words []string) (Install, bool) {
	i := 0
	for i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-") {
		i++ // environment assignments
	}
	rest := words[i:]
	switch {
	case len(rest) >= 2 && isPip(rest[0]) && rest[1] == "install":
		rest = rest[2:]
	case len(rest) >= 4 && strings.HasPrefix(rest[0][strings.LastIndex(rest[0], "/")+1:], "python") && rest[1] == "-m" && rest[2] == "pip" && rest[3] == "install":
		rest = rest[4:]
	default:
		return Install{}, false
	}
	var in Install
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if strings.TrimSpace(a) == "" {
			continue
		}
		if !strings.HasPrefix(a, "-") {
			in.Requirements = append(in.Requirements, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		if !strings.HasPrefix(a, "--") && len(a) >= 2 {
			name, val, hasVal = a[:2], a[2:], len(a) > 2
		}
		if pipValueOpts[name] && !hasVal && j+1 < len(rest) {
			j++
			val = rest[j]
		}
		switch name {
		case "--no-deps":
			in.NoDeps = true
		case "-i", "--index-url", "--extra-index-url":
			in.IndexURLs = append(in.IndexURLs, val)
		}
	}
	return in, true
}

func isPip(w string) bool {
	base := w[strings.LastIndex(w, "/")+1:]
	return base == "pip" || base == "pip3"
}

// shellCommands splits a POSIX shell script into simple commands (words), honouring
// single and double quotes and backslashes, and splitting at ; & | && || newlines and
// parentheses. It is not a shell: expansions are left as written.
func shellCommands(script string) [][]string {
	var cmds [][]string
	var words []string
	var cur strings.Builder
	inWord := false
	flushWord := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	flushCmd := func() {
		flushWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
			words = nil
		}
	}
	for i := 0; i < len(script); i++ {
		ch := script[i]
		switch {
		case ch == '\\' && i+1 < len(script):
			i++
			if script[i] != '\n' {
				cur.WriteByte(script[i])
				inWord = true
			}
		case ch == '\'':
			inWord = true
			j := strings.IndexByte(script[i+1:], '\'')
			if j < 0 {
				cur.WriteString(script[i+1:])
				i = len(script)
				break
			}
			cur.WriteString(script[i+1 : i+1+j])
			i += j + 1
		case ch == '"':
			inWord = true
			for i++; i < len(script) && script[i] != '"'; i++ {
				if script[i] == '\\' && i+1 < len(script) && strings.IndexByte("\"\\$`\n", script[i+1]) >= 0 {
					i++
					if script[i] == '\n' {
						continue
					}
				}
				cur.WriteByte(script[i])
			}
		case ch == '#' && !inWord:
			for i < len(script) && script[i] != '\n' {
				i++
			}
			flushCmd()
		case ch == ' ' || ch == '\t':
			flushWord()
		case ch == '\n' || ch == ';' || ch == '&' || ch == '|' || ch == '(' || ch == ')':
			flushCmd()
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	flushCmd()
	return cmds
}
