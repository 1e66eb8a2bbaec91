package schedule

import (
	"errors"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/storage/meta"
)

// FuzzParseTrigger: any cron string and zone parse or fail with ErrInvalid, and a parsed plan
// yields slots that move forward.
func FuzzParseTrigger(f *testing.F) {
	for _, s := range []string{"0 0 9 ? * 2-6", "@every 2s", "@daily", "CRON_TZ=Europe/Berlin 0 0 9 * * *", "*/5 * * * * *", "0 0 0 31 2 *", "@every 0s", "60 * * * * *", "TZ=x", ""} {
		f.Add(s, "", int64(0))
	}
	f.Add("", "", int64(60))
	f.Add("0 0 9 * * *", "Asia/Kolkata", int64(0))
	f.Fuzz(func(t *testing.T, cron, zone string, interval int64) {
		p, err := ParseTrigger(meta.Trigger{Cron: cron, TimeZone: zone, IntervalSeconds: interval}, t0)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseTrigger(%q, %q, %d) = %v", cron, zone, interval, err)
			}
			return
		}
		prev := t0
		for i := 0; i < 3; i++ {
			n, ok := p.Next(prev)
			if !ok {
				return
			}
			if !n.After(prev) {
				t.Fatalf("Next(%v) = %v does not move forward (%q %q %d)", prev, n, cron, zone, interval)
			}
			prev = n
		}
	})
}

// FuzzMacros: expansion never panics and leaves text without macros alone.
func FuzzMacros(f *testing.F) {
	for _, s := range []string{"[[RunUUID]]", "[[ScheduledTime.2006]]", "[[CurrentTime.]]", "[[Index", "plain", "[[ScheduledTime.[[Index]]]]"} {
		f.Add(s)
	}
	m := Macros{RunUUID: "u", Index: 1, CurrentTime: t0, ScheduledTime: t0.Add(time.Hour)}
	f.Fuzz(func(t *testing.T, s string) {
		out := m.Expand(s)
		if !macroRE.MatchString(s) && out != s {
			t.Fatalf("Expand(%q) = %q without a macro", s, out)
		}
	})
}
