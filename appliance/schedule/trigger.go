package schedule

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/kfp-box/kfp-box/storage/meta"
)

// ErrInvalid is wrapped by every trigger error.
var ErrInvalid = errors.New("invalid schedule")

// cronParser reads KFP's cron: six fields with seconds first (a missing day-of-week field
// means "*", as robfig/cron v1 did), "?" as "*", descriptors such as "@every 2s" and "@daily",
// and an optional "CRON_TZ=Zone " prefix.
var cronParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.DowOptional | cron.Descriptor)

// MaxInterval bounds periodic intervals (about 100 years).
const MaxInterval = 100 * 365 * 24 * 3600

// Plan computes the slots of a trigger, as KFP's ScheduledWorkflow controller does.
type Plan struct {
	cron     cron.Schedule
	loc      *time.Location
	interval time.Duration
	// once is a trigger with no schedule: one run, when the recurring run is created.
	once bool
	// anchor is what the first slot follows: the start time when set, else the creation.
	anchor     time.Time
	created    time.Time
	start, end time.Time
}

// ParseTrigger checks a trigger and returns its plan; created is the recurring run's
// creation time. As in KFP, the first slot follows the start time when one is set (so a start
// in the past is caught up from there), else the creation time, and a trigger with neither a
// cron nor a periodic schedule runs once. Errors wrap ErrInvalid.
func ParseTrigger(t meta.Trigger, created time.Time) (*Plan, error) {
	p := &Plan{start: t.StartTime, end: t.EndTime, loc: time.UTC, created: created}
	switch {
	case t.Cron != "" && t.IntervalSeconds != 0:
		return nil, fmt.Errorf("a trigger has either a cron schedule or a periodic schedule: %w", ErrInvalid)
	case t.Cron != "":
		if t.TimeZone != "" {
			loc, err := time.LoadLocation(t.TimeZone)
			if err != nil {
				return nil, fmt.Errorf("time zone %q: %v: %w", t.TimeZone, err, ErrInvalid)
			}
			p.loc = loc
		}
		if err := checkFieldCount(t.Cron); err != nil {
			return nil, err
		}
		s, err := cronParser.Parse(t.Cron)
		if err != nil {
			return nil, fmt.Errorf("cron %q: %v: %w", t.Cron, err, ErrInvalid)
		}
		p.cron = s
	case t.IntervalSeconds > 0:
		if t.IntervalSeconds > MaxInterval {
			return nil, fmt.Errorf("interval_second %d is too large: %w", t.IntervalSeconds, ErrInvalid)
		}
		p.interval = time.Duration(t.IntervalSeconds) * time.Second
	case t.IntervalSeconds < 0:
		return nil, fmt.Errorf("interval_second %d is negative: %w", t.IntervalSeconds, ErrInvalid)
	default:
		p.once = true
	}
	p.anchor = created
	if !p.start.IsZero() {
		p.anchor = p.start
	}
	return p, nil
}

// Once reports a trigger without a schedule (a single run).
func (p *Plan) Once() bool { return p.once }

var tzPrefix = regexp.MustCompile(`^(CRON_TZ|TZ)=\S+\s+`)

// checkFieldCount accepts KFP's forms: six fields seconds first, or five (seconds first, no
// day-of-week, as robfig/cron v1 read them), or a descriptor.
func checkFieldCount(expr string) error {
	e := tzPrefix.ReplaceAllString(strings.TrimSpace(expr), "")
	if strings.HasPrefix(e, "@") {
		return nil
	}
	if n := len(strings.Fields(e)); n != 6 && n != 5 {
		return fmt.Errorf("cron %q has %d fields; KFP cron has 6, seconds first (for example \"0 0 9 ? * 2-6\"): %w", expr, n, ErrInvalid)
	}
	return nil
}

// First is the first slot of a plan: the creation time for a single run; one interval after
// the anchor for periodic schedules; the first cron match strictly after the anchor.
func (p *Plan) First() (time.Time, bool) {
	switch {
	case p.once:
		return p.created.UTC(), true
	case p.interval > 0:
		return p.checkEnd(p.anchor.Add(p.interval))
	}
	return p.Next(p.anchor)
}

// Next returns the slot that follows slot t, or false when the schedule has ended: one
// interval later for periodic schedules, the next cron match strictly after t (and after the
// start time) otherwise. A single run has no next slot.
func (p *Plan) Next(t time.Time) (time.Time, bool) {
	if p.once {
		return time.Time{}, false
	}
	if !p.start.IsZero() && t.Before(p.start) {
		if p.interval > 0 {
			return p.checkEnd(p.start)
		}
		t = p.start
	}
	if p.interval > 0 {
		return p.checkEnd(t.Add(p.interval))
	}
	n := p.cron.Next(t.In(p.loc))
	if n.IsZero() {
		return time.Time{}, false
	}
	return p.checkEnd(n.UTC())
}

// SkipMissed is the slot to run instead of due slot when missed slots are not caught up
// (no_catchup), now being the current time: for periodic schedules more than an interval
// behind, now (or the end time when that passed); for cron schedules, the last match that is
// due and not after the end time. Otherwise slot itself.
func (p *Plan) SkipMissed(slot, now time.Time) time.Time {
	switch {
	case p.once:
		return slot
	case p.interval > 0:
		if now.Before(slot.Add(p.interval)) {
			return slot
		}
		if !p.end.IsZero() && p.end.Before(now) {
			return p.end.UTC()
		}
		return now.Truncate(time.Second).UTC()
	}
	for {
		n, ok := p.Next(slot)
		if !ok || n.After(now) {
			return slot
		}
		slot = n
	}
}

func (p *Plan) checkEnd(n time.Time) (time.Time, bool) {
	if !p.end.IsZero() && n.After(p.end) {
		return time.Time{}, false
	}
	return n.UTC(), true
}

// macroRE matches KFP's run parameter macros, with an optional Go time layout:
// [[RunUUID]], [[Index]], [[CurrentTime]], [[ScheduledTime]], [[ScheduledTime.2006-01-02]].
var macroRE = regexp.MustCompile(`\[\[(RunUUID|Index|CurrentTime|ScheduledTime)(\.[^\]]+)?\]\]`)

// defaultTimeLayout is KFP's format for time macros without a layout.
const defaultTimeLayout = "20060102150405"

// Macros are the values macro substitution uses.
type Macros struct {
	RunUUID       string
	Index         int64
	CurrentTime   time.Time
	ScheduledTime time.Time
}

// Expand replaces the macros in s.
func (m Macros) Expand(s string) string {
	if !strings.Contains(s, "[[") {
		return s
	}
	return macroRE.ReplaceAllStringFunc(s, func(x string) string {
		sub := macroRE.FindStringSubmatch(x)
		layout := defaultTimeLayout
		if sub[2] != "" {
			layout = sub[2][1:]
		}
		switch sub[1] {
		case "RunUUID":
			return m.RunUUID
		case "Index":
			return strconv.FormatInt(m.Index, 10)
		case "CurrentTime":
			return m.CurrentTime.UTC().Format(layout)
		default:
			return m.ScheduledTime.UTC().Format(layout)
		}
	})
}

// ExpandParams returns params with macros replaced in every string value (recursively in
// lists and structs).
func (m Macros) ExpandParams(params map[string]any) map[string]any {
	if params == nil {
		return nil
	}
	out := make(map[string]any, len(params))
	for k, v := range params {
		out[k] = m.expandValue(v)
	}
	return out
}

func (m Macros) expandValue(v any) any {
	switch x := v.(type) {
	case string:
		return m.Expand(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.expandValue(e)
		}
		return out
	case map[string]any:
		return m.ExpandParams(x)
	}
	return v
}
