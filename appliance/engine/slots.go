package engine

// Task slots bound the tasks running at once (Config.MaxParallelTasks). A slot belongs to
// one task attempt, keyed by its runtime task id, from the planning step that starts it until
// its end is applied, its run is deleted or its run state is dropped; giving one back is
// idempotent, so no path can free a slot twice or leave one held by a task that is gone.
// A planning step first reserves every free slot (so two workers do not fill the same ones),
// turns the reservations it uses into owned slots and gives the rest back.

// SlotStats tells how the task slots are used.
type SlotStats struct {
	// Used counts the task attempts holding a slot (starting or running).
	Used int `json:"used"`
	// Reserved counts slots reserved by planning steps in progress.
	Reserved int `json:"reserved"`
	// Max is the number of slots (0: no limit).
	Max int `json:"max"`
}

// Slots returns how the task slots are used; both counts are zero when the engine is idle.
func (e *Engine) Slots() SlotStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return SlotStats{Used: len(e.slots), Reserved: e.reserved, Max: e.cfg.MaxParallelTasks}
}

// claimSlots reserves every free task slot for one planning step (-1: unlimited); the step
// gives back what it does not start with unclaimSlots.
func (e *Engine) claimSlots() int {
	if e.cfg.MaxParallelTasks <= 0 {
		return -1
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.freeSlotsLocked()
	if n < 0 {
		n = 0
	}
	e.reserved += n
	return n
}

// freeSlotsLocked is the number of slots neither held nor reserved; e.mu is held.
func (e *Engine) freeSlotsLocked() int {
	return e.cfg.MaxParallelTasks - len(e.slots) - e.reserved
}

// unclaimSlots gives back n reservations of a planning step of run runID, waking the other
// runs that found no slot while they were reserved.
func (e *Engine) unclaimSlots(runID string, n int) {
	if n <= 0 || e.cfg.MaxParallelTasks <= 0 {
		return
	}
	e.mu.Lock()
	e.reserved -= n
	if e.reserved < 0 {
		e.reserved = 0
	}
	e.mu.Unlock()
	e.wakeStarved(runID)
}

// holdSlot makes task (a runtime task id) of run hold a slot; fromReservation turns one of
// the step's reservations into it.
func (e *Engine) holdSlot(runID, task string, fromReservation bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if fromReservation && e.cfg.MaxParallelTasks > 0 && e.reserved > 0 {
		e.reserved--
	}
	e.slots[task] = runID
}

// releaseSlots gives back the slots of the listed tasks (runtime task ids) and wakes the runs
// waiting for one. Tasks holding none are ignored.
func (e *Engine) releaseSlots(runID string, tasks ...string) {
	e.mu.Lock()
	freed := false
	for _, t := range tasks {
		if _, ok := e.slots[t]; ok {
			delete(e.slots, t)
			freed = true
		}
	}
	e.mu.Unlock()
	if freed {
		e.wakeStarved(runID)
	}
}

// releaseRunSlots gives back every slot the tasks of a run hold (the run was deleted or its
// state dropped; tasks re-adopted later take theirs again).
func (e *Engine) releaseRunSlots(runID string) {
	e.mu.Lock()
	freed := false
	for t, r := range e.slots {
		if r == runID {
			delete(e.slots, t)
			freed = true
		}
	}
	e.mu.Unlock()
	if freed {
		e.wakeStarved(runID)
	}
}

// wakeStarved enqueues the runs that wait for a slot, except runID.
func (e *Engine) wakeStarved(runID string) {
	e.mu.Lock()
	starved := make([]string, 0, len(e.starved))
	for r := range e.starved {
		if r != runID {
			starved = append(starved, r)
		}
	}
	e.mu.Unlock()
	for _, r := range starved {
		e.enqueue(r)
	}
}
