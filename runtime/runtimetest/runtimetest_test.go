package runtimetest

import (
	"testing"
	"time"
)

func TestParseLogLine(t *testing.T) {
	tests := []struct {
		line       string
		wantStream string
		wantText   string
		wantErr    bool
	}{
		{"2026-11-22T08:00:00.000000005Z stdout hello world", "stdout", "hello world", false},
		{"2026-11-22T08:00:00Z stderr  two  spaces ", "stderr", " two  spaces ", false},
		{"2026-11-22T08:00:00.5+01:00 stdout", "stdout", "", false},
		{"2026-11-22T08:00:00Z stdin x", "", "", true},
		{"yesterday stdout x", "", "", true},
		{"", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			l, err := ParseLogLine(tt.line)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (l.Stream != tt.wantStream || l.Text != tt.wantText || l.Time.IsZero()) {
				t.Errorf("parsed %+v, want stream %q text %q", l, tt.wantStream, tt.wantText)
			}
		})
	}
	l, _ := ParseLogLine("2026-11-22T08:00:00.000000005Z stdout x")
	if want := time.Date(2026, 11, 22, 8, 0, 0, 5, time.UTC); !l.Time.Equal(want) {
		t.Errorf("time = %v, want %v", l.Time, want)
	}
}

func TestDataDirIsPerTest(t *testing.T) {
	var first string
	t.Run("a", func(t *testing.T) {
		first = DataDir(t)
		if again := DataDir(t); again != first {
			t.Errorf("second call = %s, want the first %s", again, first)
		}
	})
	t.Run("b", func(t *testing.T) {
		if other := DataDir(t); other == first {
			t.Errorf("another test got the same dir %s", other)
		}
	})
}
