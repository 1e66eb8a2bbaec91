package runtime

import "testing"

func TestLogText(t *testing.T) {
	for in, want := range map[string]string{
		"2026-11-22T10:00:00.000000000Z stdout hello world": "hello world",
		"2026-11-22T10:00:00.000000000Z stderr oops":        "oops",
		"2026-11-22T10:00:00.000000000Z stdout":             "",
		"2026-11-22T10:00:00.000000000Z other text":         "2026-11-22T10:00:00.000000000Z other text",
		"plain line":     "plain line",
		"":               "",
		"short stdout x": "short stdout x",
	} {
		if got := LogText(in); got != want {
			t.Errorf("LogText(%q) = %q, want %q", in, got, want)
		}
	}
}
