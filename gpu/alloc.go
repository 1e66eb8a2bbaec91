package gpu

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Request asks for GPUs for one task.
type Request struct {
	// Owner identifies the holder, normally the task's execution id. It appears in the
	// inventory and the API.
	Owner string
	// Count is how many whole GPUs the task needs, at least 1.
	Count int
	// Accelerator constrains the model: a KFP accelerator type ("NVIDIA_TESLA_V100"), a
	// resource type ("nvidia.com/gpu", which matches any NVIDIA GPU), a node selector label
	// value ("nvidia-tesla-t4") or "" for any. See ParseAccelerator.
	Accelerator string
	// OnWait, when set, is called from Allocate's goroutine each time the request has to wait
	// and whenever the reason changes, with a sentence fit for the task's details.
	OnWait func(reason string)
}

// waiter is a queued request. Fields other than seq, owner, count and match are guarded by
// Manager.mu; done is closed once granted or err is set.
type waiter struct {
	seq    uint64
	owner  string
	count  int
	match  Matcher
	grant  []string
	err    error
	done   chan struct{}
	reason string
	notify chan struct{}
}

// Lease is a set of GPUs held exclusively by one owner until Release.
type Lease struct {
	m     *Manager
	owner string
	uuids []string
	seq   uint64 // arrival order of the request; 0 for restored leases
	// released is guarded by m.mu.
	released bool
}

// Owner is the holder given in the request.
func (l *Lease) Owner() string { return l.owner }

// UUIDs are the held GPUs in index order.
func (l *Lease) UUIDs() []string { return append([]string(nil), l.uuids...) }

// Env is the environment every runtime adds for the lease: NVIDIA_VISIBLE_DEVICES and
// CUDA_VISIBLE_DEVICES listing the UUIDs, and NVIDIA_DRIVER_CAPABILITIES=compute,utility.
func (l *Lease) Env() map[string]string {
	uuids := strings.Join(l.uuids, ",")
	return map[string]string{
		"NVIDIA_VISIBLE_DEVICES":     uuids,
		"CUDA_VISIBLE_DEVICES":       uuids,
		"NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
	}
}

// Devices returns the inventory entries of the held GPUs.
func (l *Lease) Devices() []Device {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	out := make([]Device, 0, len(l.uuids))
	for _, u := range l.uuids {
		if d, ok := l.m.byUUID[u]; ok {
			c := *d
			c.AssignedTo = l.m.holder[u]
			out = append(out, c)
		}
	}
	return out
}

// Release gives the GPUs back and lets waiting requests proceed. It is idempotent and safe to
// call from any terminal path (success, failure, kill, cancellation).
func (l *Lease) Release() {
	if l == nil {
		return
	}
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	if l.released {
		return
	}
	l.released = true
	for _, u := range l.uuids {
		if l.m.holder[u] == l.owner {
			delete(l.m.holder, u)
		}
	}
	l.m.schedule()
}

// Allocate blocks until Count GPUs matching the request are free and granted, in arrival
// order, or ctx ends. A request is never overtaken by a later one that competes for the same
// GPUs, so large requests do not starve; requests for disjoint GPU models do not block each
// other. A request that can never be met (no GPUs on the box, fewer matching usable GPUs than
// Count, a non-NVIDIA accelerator) fails at once with an error wrapping ErrUnsatisfiable whose
// message is the reason to show the user.
func (m *Manager) Allocate(ctx context.Context, req Request) (*Lease, error) {
	if req.Count < 1 {
		return nil, fmt.Errorf("owner %q: count %d: %w", req.Owner, req.Count, ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	w := m.enqueue(req)
	reason := w.reason
	m.mu.Unlock()

	last := ""
	for {
		select {
		case <-w.done:
			return m.finish(w)
		default:
		}
		if reason != last && req.OnWait != nil {
			req.OnWait(reason)
		}
		last = reason
		select {
		case <-w.done:
			return m.finish(w)
		case <-w.notify:
			m.mu.Lock()
			reason = w.reason
			m.mu.Unlock()
		case <-ctx.Done():
			m.mu.Lock()
			defer m.mu.Unlock()
			select {
			case <-w.done:
				if w.err != nil {
					return nil, w.err
				}
				// Granted while giving up: hand the GPUs straight back.
				for _, u := range w.grant {
					delete(m.holder, u)
				}
			default:
				m.dequeue(w)
			}
			m.schedule()
			return nil, fmt.Errorf("owner %q waiting for %d gpu: %w", req.Owner, req.Count, ctx.Err())
		}
	}
}

// enqueue appends a waiter for req and schedules. Called with m.mu held.
func (m *Manager) enqueue(req Request) *waiter {
	m.seq++
	w := &waiter{
		seq:    m.seq,
		owner:  req.Owner,
		count:  req.Count,
		match:  ParseAccelerator(req.Accelerator),
		done:   make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
	m.queue = append(m.queue, w)
	m.schedule()
	return w
}

func (m *Manager) finish(w *waiter) (*Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w.err != nil {
		return nil, w.err
	}
	return &Lease{m: m, owner: w.owner, uuids: w.grant, seq: w.seq}, nil
}

// Restore re-adopts GPUs recorded for owner before a restart of kfp-box, so that a task still
// running keeps them. It fails with ErrNotFound for a UUID this box does not have (nothing is
// taken then) and with ErrInUse when another owner holds one. Restoring what the same owner
// already holds succeeds.
func (m *Manager) Restore(owner string, uuids []string) (*Lease, error) {
	if len(uuids) == 0 {
		return nil, fmt.Errorf("restore %q: no uuids: %w", owner, ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range uuids {
		if _, ok := m.byUUID[u]; !ok {
			return nil, fmt.Errorf("restore %q: gpu %q: %w", owner, u, ErrNotFound)
		}
		if h, ok := m.holder[u]; ok && h != owner {
			return nil, fmt.Errorf("restore %q: gpu %q held by %q: %w", owner, u, h, ErrInUse)
		}
	}
	for _, u := range uuids {
		m.holder[u] = owner
	}
	sorted := append([]string(nil), uuids...)
	sort.Slice(sorted, func(i, j int) bool { return m.byUUID[sorted[i]].Index < m.byUUID[sorted[j]].Index })
	return &Lease{m: m, owner: owner, uuids: sorted}, nil
}

// ReleaseOwner frees every GPU held by owner, for terminal paths that no longer have the
// Lease (a task found dead after a restart). It returns how many GPUs were freed.
func (m *Manager) ReleaseOwner(owner string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for u, h := range m.holder {
		if h == owner {
			delete(m.holder, u)
			n++
		}
	}
	if n > 0 {
		m.schedule()
	}
	return n
}

// Waiting returns how many requests are queued.
func (m *Manager) Waiting() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queue)
}

func (m *Manager) dequeue(w *waiter) {
	for i, q := range m.queue {
		if q == w {
			m.queue = append(m.queue[:i], m.queue[i+1:]...)
			return
		}
	}
}

// schedule grants what can be granted, fails what never can, and refreshes the reasons of
// the rest. It walks the queue in arrival order; a request that must wait reserves every
// usable GPU it matches, so no later request can take one of those ahead of it. Called with
// m.mu held.
func (m *Manager) schedule() {
	reserved := map[string]bool{}
	keep := m.queue[:0]
	ahead := 0
	for _, w := range m.queue {
		var usable, free []*Device
		for _, d := range m.devs {
			if !d.allocatable() || !w.match.Match(d.Name, d.MemoryTotal) {
				continue
			}
			usable = append(usable, d)
			if _, held := m.holder[d.UUID]; !held && !reserved[d.UUID] {
				free = append(free, d)
			}
		}
		switch {
		case len(usable) < w.count:
			w.err = fmt.Errorf("%s: %w", m.unsatisfiable(w), ErrUnsatisfiable)
			close(w.done)
		case len(free) >= w.count:
			for _, d := range free[:w.count] {
				m.holder[d.UUID] = w.owner
				w.grant = append(w.grant, d.UUID)
			}
			if m.onGrant != nil {
				m.onGrant(w.seq, w.grant)
			}
			close(w.done)
		default:
			for _, d := range usable {
				reserved[d.UUID] = true
			}
			r := m.waitReason(w, usable, len(free), ahead)
			if r != w.reason {
				w.reason = r
				select {
				case w.notify <- struct{}{}:
				default:
				}
			}
			ahead++
			keep = append(keep, w)
		}
	}
	for i := len(keep); i < len(m.queue); i++ {
		m.queue[i] = nil
	}
	m.queue = keep
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// waitReason says why w waits: how many matching GPUs are free, who holds the others and how
// many earlier requests are queued.
func (m *Manager) waitReason(w *waiter, usable []*Device, free, ahead int) string {
	var holders []string
	seen := map[string]bool{}
	for _, d := range usable {
		if h, ok := m.holder[d.UUID]; ok && !seen[h] {
			seen[h] = true
			holders = append(holders, h)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "waiting for %s (%s): %d of %d matching GPUs free", plural(w.count, "GPU"), w.match, free, len(usable))
	if len(holders) > 0 {
		more := ""
		if len(holders) > 3 {
			more = fmt.Sprintf(" and %d more", len(holders)-3)
			holders = holders[:3]
		}
		fmt.Fprintf(&b, "; held by %s%s", strings.Join(holders, ", "), more)
	}
	if ahead > 0 {
		fmt.Fprintf(&b, "; %s queued ahead", plural(ahead, "earlier request"))
	}
	return b.String()
}

// unsatisfiable says why w can never be granted on this box.
func (m *Manager) unsatisfiable(w *waiter) string {
	need := fmt.Sprintf("task needs %s (%s)", plural(w.count, "GPU"), w.match)
	if len(m.devs) == 0 {
		why := m.unavailable
		if why == "" {
			why = "none were discovered"
		}
		return fmt.Sprintf("%s but this box has no GPUs: %s", need, why)
	}
	if w.match.Foreign() {
		return fmt.Sprintf("%s, which is not an NVIDIA GPU; this box has only NVIDIA GPUs (%s)", need, m.inventorySummary())
	}
	matching, usable := 0, 0
	for _, d := range m.devs {
		if w.match.Match(d.Name, d.MemoryTotal) {
			matching++
			if d.allocatable() {
				usable++
			}
		}
	}
	s := fmt.Sprintf("%s but this box has %d usable matching", need, usable)
	if matching != usable {
		s += fmt.Sprintf(" (%d more unhealthy or in MIG mode)", matching-usable)
	}
	return fmt.Sprintf("%s; GPUs: %s", s, m.inventorySummary())
}

// inventorySummary is "8x NVIDIA A100-SXM4-40GB" style text.
func (m *Manager) inventorySummary() string {
	counts := map[string]int{}
	var names []string
	for _, d := range m.devs {
		if counts[d.Name] == 0 {
			names = append(names, d.Name)
		}
		counts[d.Name]++
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%dx %s", counts[n], n)
	}
	return strings.Join(parts, ", ")
}
