package schedule

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/kfp-box/kfp-box/appliance/spec"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// Clock is the scheduler's time source; tests pass a fake.
type Clock interface {
	Now() time.Time
	// After delivers once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// maxCatchupPerPass bounds the runs one recurring run creates per pass, so a long-missed
// schedule catches up without starving the others.
const maxCatchupPerPass = 50

// blockedRecheck is how soon a recurring run held back by max_concurrency is looked at again.
const blockedRecheck = time.Second

// runNamespace derives the id of the run of a slot, so a slot is created once.
var runNamespace = uuid.MustParse("6f1c1c5e-6b1e-4d52-9a53-7d2f0c3b9e11")

// SlotRunID is the id of the run a recurring run creates for a slot.
func SlotRunID(recurringRunID string, slot time.Time) string {
	return uuid.NewSHA1(runNamespace, []byte(recurringRunID+"@"+slot.UTC().Format(time.RFC3339Nano))).String()
}

// Scheduler creates the runs of enabled recurring runs when their slots come.
type Scheduler struct {
	meta    *meta.Store
	creator Creator
	logger  *slog.Logger
	clock   Clock

	kick   chan struct{}
	passes atomic.Int64

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a scheduler; clock nil means the wall clock.
func New(m *meta.Store, creator Creator, logger *slog.Logger, clock Clock) *Scheduler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if clock == nil {
		clock = RealClock
	}
	return &Scheduler{meta: m, creator: creator, logger: logger, clock: clock, kick: make(chan struct{}, 1)}
}

// Start runs the scheduler until Stop or until ctx ends.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("scheduler already started")
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// Subscribe before the first pass so that no change made after Start returns is missed.
	ch, err := s.meta.KV().Watch(ctx, watchPrefix, 0)
	if err != nil {
		cancel()
		return fmt.Errorf("watch recurring runs: %w", err)
	}
	s.cancel, s.done = cancel, make(chan struct{})
	go s.watch(ctx, ch)
	go s.loop(ctx)
	return nil
}

var watchPrefix = []byte("/recurringruns/")

// Stop ends the scheduler and waits for its pass in progress, at most until ctx ends.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kick asks for a pass now (after a recurring run was created, enabled or changed).
func (s *Scheduler) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Passes counts completed passes (tests wait on it).
func (s *Scheduler) Passes() int64 { return s.passes.Load() }

// watch kicks the loop on every change to a recurring run.
func (s *Scheduler) watch(ctx context.Context, ch <-chan kv.Event) {
	for {
		for range ch {
			s.Kick()
		}
		if ctx.Err() != nil {
			return
		}
		// The watcher fell behind and was closed: subscribe again and re-list by kicking.
		var err error
		if ch, err = s.meta.KV().Watch(ctx, watchPrefix, 0); err != nil {
			s.logger.Warn("watch recurring runs", "err", err)
			return
		}
		s.Kick()
	}
}

func (s *Scheduler) loop(ctx context.Context) {
	defer close(s.done)
	for {
		wake := s.Pass(ctx)
		s.passes.Add(1)
		var timer <-chan time.Time
		if !wake.IsZero() {
			d := wake.Sub(s.clock.Now())
			if d < 0 {
				d = 0
			}
			timer = s.clock.After(d)
		}
		select {
		case <-ctx.Done():
			return
		case <-timer:
		case <-s.kick:
		}
	}
}

// Pass creates every due run of every enabled recurring run and returns when the next pass
// is needed (zero: only on a change).
func (s *Scheduler) Pass(ctx context.Context) time.Time {
	rrs, err := s.meta.EnabledRecurringRuns(ctx)
	if err != nil {
		s.logger.Error("list recurring runs", "err", err)
		return s.clock.Now().Add(blockedRecheck)
	}
	var wake time.Time
	for _, rr := range rrs {
		if ctx.Err() != nil {
			return time.Time{}
		}
		next := s.advance(ctx, rr)
		if !next.IsZero() && (wake.IsZero() || next.Before(wake)) {
			wake = next
		}
	}
	return wake
}

// advance creates the due runs of one recurring run and returns when it next needs a look.
func (s *Scheduler) advance(ctx context.Context, rr *meta.RecurringRun) time.Time {
	log := s.logger.With("recurring_run", rr.ID)
	plan, err := ParseTrigger(rr.Trigger, rr.CreatedAt)
	if err != nil {
		log.Error("bad trigger", "err", err)
		return time.Time{}
	}
	maxConc := rr.MaxConcurrency
	if maxConc <= 0 {
		maxConc = 1
	}
	for i := 0; i < maxCatchupPerPass; i++ {
		now := s.clock.Now()
		var slot time.Time
		var ok bool
		if rr.LastScheduledAt.IsZero() {
			slot, ok = plan.First()
		} else {
			slot, ok = plan.Next(rr.LastScheduledAt)
		}
		if !ok {
			return time.Time{}
		}
		if slot.After(now) {
			return slot
		}
		if rr.NoCatchup {
			slot = plan.SkipMissed(slot, now)
		}
		if int64(s.meta.ActiveRunsOf(rr.ID)) >= maxConc {
			return now.Add(blockedRecheck)
		}
		updated, err := s.createSlot(ctx, rr, slot, now)
		if err != nil {
			log.Error("create scheduled run", "slot", slot, "err", err)
			return now.Add(blockedRecheck)
		}
		if updated == nil {
			return time.Time{} // disabled or deleted meanwhile
		}
		log.Debug("scheduled run created", "slot", slot, "runs", updated.RunCount)
		rr = updated
	}
	return s.clock.Now()
}

// createSlot creates the run of one slot and records the slot. It returns nil when the
// recurring run was disabled or deleted in the meantime.
func (s *Scheduler) createSlot(ctx context.Context, rr *meta.RecurringRun, slot, now time.Time) (*meta.RecurringRun, error) {
	cur, err := s.meta.GetRecurringRun(ctx, rr.ID)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !cur.Enabled || !cur.LastScheduledAt.Equal(rr.LastScheduledAt) {
		if !cur.Enabled {
			return nil, nil
		}
		return cur, nil // someone else advanced it; continue from there
	}
	id := SlotRunID(rr.ID, slot)
	m := Macros{RunUUID: id, Index: rr.RunCount + 1, CurrentTime: now, ScheduledTime: slot}
	req := RunRequest{
		RunID:          id,
		DisplayName:    RunName(rr, rr.RunCount+1),
		Description:    rr.Description,
		ExperimentID:   rr.ExperimentID,
		RecurringRunID: rr.ID,
		RuntimeConfig: meta.RuntimeConfig{
			Parameters:   m.ExpandParams(rr.RuntimeConfig.Parameters),
			PipelineRoot: m.Expand(rr.RuntimeConfig.PipelineRoot),
		},
		ServiceAccount: rr.ServiceAccount,
		ScheduledAt:    slot,
	}
	if len(rr.InlineSpec) > 0 {
		req.Spec = rr.InlineSpec
	} else {
		req.PipelineID, req.PipelineVersionID = rr.PipelineID, rr.PipelineVersionID
	}
	_, err = s.creator.CreateRun(ctx, req)
	switch {
	case errors.Is(err, meta.ErrAlreadyExists):
		// Created before a crash; just record the slot.
	case errors.Is(err, meta.ErrFailedPrecondition) || errors.Is(err, meta.ErrNotFound) || isInvalid(err):
		// The run can never be created (experiment archived or gone, pipeline deleted, bad
		// parameters): record the error on the recurring run and disable it.
		s.logger.Warn("disabling recurring run", "recurring_run", rr.ID, "err", err)
		_, uerr := s.meta.UpdateRecurringRun(ctx, rr.ID, func(r *meta.RecurringRun) error {
			r.Enabled, r.UpdatedAt = false, now.UTC()
			r.Error = &meta.Status{Code: 9, Message: err.Error()}
			return nil
		})
		return nil, uerr
	case err != nil:
		return nil, err
	}
	return s.meta.UpdateRecurringRun(ctx, rr.ID, func(r *meta.RecurringRun) error {
		if !r.LastScheduledAt.Before(slot) {
			return nil
		}
		r.LastScheduledAt = slot
		r.RunCount++
		return nil
	})
}

// RunName names the index-th run of a recurring run as KFP's ScheduledWorkflow controller
// does: the recurring run's display name lowercased and stripped to [a-z0-9-] (at most 25
// characters, "job-" when nothing is left), 5 characters standing for the suffix Kubernetes
// generates (taken from the recurring run's id), then "-<index>-<FNV-1a hash>" of the two.
func RunName(rr *meta.RecurringRun, index int64) string {
	var b strings.Builder
	for _, r := range strings.ToLower(rr.DisplayName) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		}
	}
	base := b.String()
	if base == "" {
		base = "job-"
	}
	if len(base) > 25 {
		base = base[:25]
	}
	n := 0
	for _, r := range strings.ToLower(rr.ID) {
		if n == 5 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			base += string(r)
			n++
		}
	}
	id := base + "-" + strconv.FormatInt(index, 10)
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return fmt.Sprintf("%s-%d", id, h.Sum32())
}

// isInvalid reports whether a creation error is about the request itself, so retrying the
// same request cannot help.
func isInvalid(err error) bool {
	return errors.Is(err, meta.ErrInvalid) || errors.Is(err, spec.ErrInvalid) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrRunInvalid)
}

// ErrRunInvalid may be wrapped by a Creator for requests that can never succeed.
var ErrRunInvalid = errors.New("run request invalid")
