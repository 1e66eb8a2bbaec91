package k8s

import (
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance/engine"
	"github.com/kfp-box/kfp-box/storage/meta"
)

func TestAttempts(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	ev := func(s int, state, msg string) meta.StateEvent {
		e := meta.StateEvent{UpdateTime: at(s), State: state}
		if msg != "" {
			e.Error = &meta.Status{Code: 2, Message: msg}
		}
		return e
	}
	cases := []struct {
		name string
		x    meta.Execution
		want []attempt
	}{
		{"never queued", meta.Execution{State: meta.ExecPending, StateHistory: []meta.StateEvent{ev(0, meta.ExecPending, "")}}, nil},
		{"running", meta.Execution{State: meta.ExecRunning, StateHistory: []meta.StateEvent{ev(0, meta.ExecPending, ""), ev(1, meta.ExecQueued, ""), ev(2, meta.ExecRunning, "")}},
			[]attempt{{n: 0, queued: at(1), started: at(2)}}},
		{"retried after exit code 143, then succeeded", meta.Execution{State: meta.ExecSucceeded, Attempt: 1, StateHistory: []meta.StateEvent{
			ev(1, meta.ExecQueued, ""), ev(2, meta.ExecRunning, ""), ev(3, meta.ExecPending, `task "a" failed: exit code 143 (attempt 1 of 2; retrying)`),
			ev(4, meta.ExecQueued, ""), ev(5, meta.ExecRunning, ""), ev(6, meta.ExecSucceeded, "")}},
			[]attempt{
				{n: 0, queued: at(1), started: at(2), ended: at(3), state: meta.ExecFailed, msg: `task "a" failed: exit code 143 (attempt 1 of 2; retrying)`, exitCode: 143, exitCodeKnown: true},
				{n: 1, queued: at(4), started: at(5), ended: at(6), state: meta.ExecSucceeded, exitCodeKnown: true},
			}},
		{"a restart put the attempt back in the queue", meta.Execution{State: meta.ExecRunning, StateHistory: []meta.StateEvent{
			ev(1, meta.ExecQueued, ""), ev(2, meta.ExecPending, ""), ev(3, meta.ExecQueued, ""), ev(4, meta.ExecRunning, "")}},
			[]attempt{{n: 0, queued: at(1), started: at(4)}}},
		{"out of memory", meta.Execution{State: meta.ExecFailed, ExitCode: 137, StateHistory: []meta.StateEvent{
			ev(1, meta.ExecQueued, ""), ev(2, meta.ExecRunning, ""), ev(3, meta.ExecFailed, `task "a" failed: exit code 137 (killed: out of memory)`)}},
			[]attempt{{n: 0, queued: at(1), started: at(2), ended: at(3), state: meta.ExecFailed, msg: `task "a" failed: exit code 137 (killed: out of memory)`, exitCode: 137, exitCodeKnown: true, oomKilled: true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := attempts(&c.x)
			if len(got) != len(c.want) {
				t.Fatalf("attempts = %+v, want %+v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("attempt %d = %+v, want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

// FuzzParsePodName: a name the box makes parses back to its parts; any other name is
// refused or parsed without a panic.
func FuzzParsePodName(f *testing.F) {
	f.Add("0107a8ec-329e-4496-a1d9-9d890924a87e", "2", 0, "x")
	f.Add("r", "e", 3, "a-b-c")
	f.Fuzz(func(t *testing.T, runID, execID string, attempt int, other string) {
		parsePodName(other)
		if attempt < 0 || execID == "" || strings.ContainsRune(execID, '-') || strings.ReplaceAll(runID, "-", "") == "" {
			return
		}
		rp, e, n, ok := parsePodName(engine.PodName(runID, execID, attempt))
		if !ok || e != execID || n != attempt || !strings.HasPrefix(strings.ReplaceAll(runID, "-", ""), rp) {
			t.Fatalf("parsePodName(PodName(%q, %q, %d)) = %q %q %d %v", runID, execID, attempt, rp, e, n, ok)
		}
	})
}
