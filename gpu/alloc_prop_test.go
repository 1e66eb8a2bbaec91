package gpu

import (
	"context"
	"fmt"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"pgregory.net/rapid"
)

// propModel drives the allocator's queue directly (enqueue, release, cancel, GPU loss) and
// checks its invariants after every step.
type propModel struct {
	m       *Manager
	pending []*waiter
	granted []*Lease
}

func (p *propModel) done(w *waiter) bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// collect moves finished waiters out of pending, turning grants into leases.
func (p *propModel) collect(t *rapid.T) {
	keep := p.pending[:0]
	for _, w := range p.pending {
		if !p.done(w) {
			keep = append(keep, w)
			continue
		}
		if w.err != nil {
			continue
		}
		if len(w.grant) != w.count {
			t.Fatalf("request %d for %d granted %d GPUs", w.seq, w.count, len(w.grant))
		}
		p.granted = append(p.granted, &Lease{m: p.m, owner: w.owner, uuids: w.grant, seq: w.seq})
	}
	p.pending = keep
}

func (p *propModel) check(t *rapid.T) {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	owners := map[string]string{}
	for _, l := range p.granted {
		for _, u := range l.uuids {
			if o, dup := owners[u]; dup {
				t.Fatalf("gpu %s held by %s and %s", u, o, l.owner)
			}
			owners[u] = l.owner
			if p.m.holder[u] != l.owner {
				t.Fatalf("gpu %s: manager says holder %q, lease says %q", u, p.m.holder[u], l.owner)
			}
		}
	}
	if len(owners) != len(p.m.holder) {
		t.Fatalf("manager holds %d GPUs, leases account for %d", len(p.m.holder), len(owners))
	}
	if len(p.m.queue) != len(p.pending) {
		t.Fatalf("queue has %d waiters, model %d", len(p.m.queue), len(p.pending))
	}
	// Scheduling is a fixed point: running it again grants or fails nothing.
	p.m.schedule()
	for _, w := range p.pending {
		if p.done(w) {
			t.Fatalf("request %d became grantable without any change", w.seq)
		}
	}
}

func TestAllocatorProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := newDGX(t)
		n := rapid.IntRange(1, 8).Draw(t, "gpus")
		s.DeviceGetCountFunc = func() (int, nvml.Return) { return n, nvml.SUCCESS }
		for i := range n {
			if rapid.Bool().Draw(t, fmt.Sprintf("v100-%d", i)) {
				dev(s, i).Name = "Tesla V100-SXM2-16GB"
			}
		}
		m, err := New(context.Background(), Options{NVML: s})
		if err != nil {
			t.Fatal(err)
		}
		p := &propModel{m: m}
		// No overtaking: when a request is granted, no earlier request still waiting
		// could have used any of its GPUs.
		m.onGrant = func(seq uint64, uuids []string) {
			for _, w := range p.pending {
				if w.seq >= seq || p.done(w) {
					continue
				}
				for _, u := range uuids {
					d := m.byUUID[u]
					if d.allocatable() && w.match.Match(d.Name, d.MemoryTotal) {
						t.Fatalf("request %d took gpu %d ahead of waiting request %d", seq, d.Index, w.seq)
					}
				}
			}
		}
		owner := 0
		t.Repeat(map[string]func(*rapid.T){
			"request": func(t *rapid.T) {
				owner++
				req := Request{
					Owner:       fmt.Sprintf("o%d", owner),
					Count:       rapid.IntRange(1, 4).Draw(t, "count"),
					Accelerator: rapid.SampledFrom([]string{"", "nvidia.com/gpu", "NVIDIA_TESLA_V100", "NVIDIA_A100"}).Draw(t, "accel"),
				}
				m.mu.Lock()
				w := m.enqueue(req)
				p.pending = append(p.pending, w)
				m.mu.Unlock()
				p.collect(t)
			},
			"release": func(t *rapid.T) {
				if len(p.granted) == 0 {
					t.Skip("nothing held")
				}
				i := rapid.IntRange(0, len(p.granted)-1).Draw(t, "lease")
				p.granted[i].Release()
				p.granted = append(p.granted[:i], p.granted[i+1:]...)
				p.collect(t)
			},
			"cancel": func(t *rapid.T) {
				if len(p.pending) == 0 {
					t.Skip("nothing waiting")
				}
				i := rapid.IntRange(0, len(p.pending)-1).Draw(t, "waiter")
				w := p.pending[i]
				p.pending = append(p.pending[:i], p.pending[i+1:]...)
				m.mu.Lock()
				m.dequeue(w)
				m.schedule()
				m.mu.Unlock()
				p.collect(t)
			},
			"lose": func(t *rapid.T) {
				i := rapid.IntRange(0, n-1).Draw(t, "gpu")
				m.mu.Lock()
				m.devs[i].Healthy = false
				m.schedule()
				m.mu.Unlock()
				p.collect(t)
			},
			"": func(t *rapid.T) { p.check(t) },
		})
		// Liveness: releasing everything lets every remaining request through.
		for len(p.pending) > 0 {
			if len(p.granted) == 0 {
				t.Fatalf("%d requests wait with every GPU free", len(p.pending))
			}
			for _, l := range p.granted {
				l.Release()
			}
			p.granted = nil
			p.collect(t)
		}
	})
}
