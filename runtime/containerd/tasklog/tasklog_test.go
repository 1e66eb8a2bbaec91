package tasklog

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", maxLogLine+10)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"lines", "a\nb\n", []string{"a", "b"}},
		{"no final newline", "a\nlast", []string{"a", "last"}},
		{"empty line", "\n\nz\n", []string{"", "", "z"}},
		{"long line is split", long + "\n", []string{long[:maxLogLine], long[maxLogLine:]}},
		{"nothing", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := &lineWriter{out: &out}
			before := time.Now().Add(-time.Second)
			// A reader that returns tiny chunks exercises partial reads.
			w.copyLines(&chunky{r: strings.NewReader(tt.in), n: 3}, "stderr")
			var got []string
			for _, l := range strings.SplitAfter(out.String(), "\n") {
				if l == "" {
					continue
				}
				ts, rest, _ := strings.Cut(strings.TrimSuffix(l, "\n"), " ")
				tm, err := time.Parse(time.RFC3339Nano, ts)
				if err != nil || tm.Before(before) || len(ts) != len(TimeLayout)-len("Z07:00")+1 {
					t.Fatalf("bad timestamp %q: %v", ts, err)
				}
				text, ok := strings.CutPrefix(rest, "stderr ")
				if !ok {
					t.Fatalf("bad stream in %q", l)
				}
				got = append(got, text)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("lines = %d %.40q, want %d %.40q", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}

type chunky struct {
	r io.Reader
	n int
}

func (c *chunky) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}
