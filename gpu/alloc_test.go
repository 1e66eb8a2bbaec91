package gpu

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestAllocateGrantsDistinctGPUsAndRelease(t *testing.T) {
	m, _ := newManager(t, newDGX(t))
	ctx := context.Background()
	a, err := m.Allocate(ctx, Request{Owner: "a", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Allocate(ctx, Request{Owner: "b", Count: 5, Accelerator: "NVIDIA_A100"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, l := range []*Lease{a, b} {
		for _, u := range l.UUIDs() {
			if o, dup := seen[u]; dup {
				t.Fatalf("gpu %s granted to %s and %s", u, o, l.Owner())
			}
			seen[u] = l.Owner()
		}
	}
	if got := m.Assignments(); len(got) != 8 || got[a.UUIDs()[0]] != "a" {
		t.Fatalf("Assignments = %v", got)
	}
	if d := b.Devices(); len(d) != 5 || d[0].AssignedTo != "b" {
		t.Fatalf("lease devices = %+v", d)
	}
	a.Release()
	a.Release() // idempotent
	if got := len(m.Assignments()); got != 5 {
		t.Fatalf("after release %d assigned, want 5", got)
	}
	c, err := m.Allocate(ctx, Request{Owner: "c", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.UUIDs()) != fmt.Sprint(a.UUIDs()) {
		t.Fatalf("c got %v, want the GPUs a released %v (lowest indexes first)", c.UUIDs(), a.UUIDs())
	}
	for _, d := range m.Devices() {
		if d.AssignedTo == "" {
			t.Fatalf("device %d unassigned while all 8 are leased", d.Index)
		}
	}
}

func TestAllocateRejectsImpossibleRequests(t *testing.T) {
	m, _ := newManager(t, newDGX(t))
	tests := []struct {
		name  string
		req   Request
		want  error
		words []string
	}{
		{"zero", Request{Owner: "z", Count: 0}, ErrInvalid, nil},
		{"too many", Request{Owner: "x", Count: 9}, ErrUnsatisfiable, []string{"9 GPUs", "8 usable matching", "8x Mock NVIDIA A100-SXM4-40GB"}},
		{"wrong model", Request{Owner: "x", Count: 1, Accelerator: "NVIDIA_TESLA_V100"}, ErrUnsatisfiable, []string{"NVIDIA_TESLA_V100", "0 usable matching"}},
		{"wrong memory", Request{Owner: "x", Count: 1, Accelerator: "NVIDIA_A100_80GB"}, ErrUnsatisfiable, []string{"0 usable matching"}},
		{"tpu", Request{Owner: "x", Count: 1, Accelerator: "TPU_V4"}, ErrUnsatisfiable, []string{"not an NVIDIA GPU"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := m.Allocate(context.Background(), tt.req)
			if !errors.Is(err, tt.want) || l != nil {
				t.Fatalf("Allocate = %v, %v; want %v", l, err, tt.want)
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if m.Waiting() != 0 {
		t.Fatalf("%d requests left queued", m.Waiting())
	}
}

func TestMIGDevicesAreNotAllocated(t *testing.T) {
	s := newDGX(t)
	dev(s, 0).MigMode = 1
	m, _ := newManager(t, s)
	_, err := m.Allocate(context.Background(), Request{Owner: "x", Count: 8})
	if !errors.Is(err, ErrUnsatisfiable) || !strings.Contains(err.Error(), "1 more unhealthy or in MIG mode") {
		t.Fatalf("Allocate(8) with one MIG GPU: %v", err)
	}
	l, err := m.Allocate(context.Background(), Request{Owner: "x", Count: 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range l.UUIDs() {
		if u == dev(s, 0).UUID {
			t.Fatal("MIG GPU was allocated")
		}
	}
}

// TestLargeRequestIsNotStarved: with 6 of 8 GPUs held, a request for 3 waits; a later request
// for 1 must wait behind it even though 2 GPUs are free, and gets a GPU only after it.
func TestLargeRequestIsNotStarved(t *testing.T) {
	m, _ := newManager(t, newDGX(t))
	ctx := context.Background()
	hold, err := m.Allocate(ctx, Request{Owner: "hold", Count: 6})
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		l   *Lease
		err error
	}
	start := func(owner string, n int) (<-chan result, <-chan string) {
		res, reasons := make(chan result, 1), make(chan string, 16)
		go func() {
			l, err := m.Allocate(ctx, Request{Owner: owner, Count: n, OnWait: func(r string) { reasons <- r }})
			res <- result{l, err}
		}()
		return res, reasons
	}
	bigRes, bigWhy := start("big", 3)
	if r := <-bigWhy; !strings.Contains(r, "waiting for 3 GPUs (nvidia.com/gpu): 2 of 8 matching GPUs free; held by hold") {
		t.Fatalf("big waits with reason %q", r)
	}
	smallRes, smallWhy := start("small", 1)
	if r := <-smallWhy; !strings.Contains(r, "0 of 8 matching GPUs free") || !strings.Contains(r, "1 earlier request queued ahead") {
		t.Fatalf("small waits with reason %q", r)
	}
	hold.Release()
	big := <-bigRes
	if big.err != nil {
		t.Fatal(big.err)
	}
	small := <-smallRes
	if small.err != nil {
		t.Fatal(small.err)
	}
	if big.l.seq >= small.l.seq || len(big.l.UUIDs()) != 3 {
		t.Fatalf("big (seq %d) should precede small (seq %d)", big.l.seq, small.l.seq)
	}
}

// TestDisjointModelsDoNotBlock: a waiting V100 request does not hold back an A100 request.
func TestDisjointModelsDoNotBlock(t *testing.T) {
	s := newDGX(t)
	for i := range 4 {
		dev(s, i).Name = "Tesla V100-SXM2-16GB"
		dev(s, i).MemoryInfo.Total = 16 << 30
	}
	m, _ := newManager(t, s)
	ctx := context.Background()
	v, err := m.Allocate(ctx, Request{Owner: "v1", Count: 3, Accelerator: "NVIDIA_TESLA_V100"})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	waiting := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		l, err := m.Allocate(ctx, Request{Owner: "v2", Count: 2, Accelerator: "NVIDIA_TESLA_V100",
			OnWait: func(string) { once.Do(func() { close(waiting) }) }})
		if err == nil {
			l.Release()
		}
		done <- err
	}()
	<-waiting
	a, err := m.Allocate(ctx, Request{Owner: "a1", Count: 4, Accelerator: "NVIDIA_A100"})
	if err != nil {
		t.Fatalf("A100 request behind a waiting V100 request: %v", err)
	}
	for _, d := range a.Devices() {
		if !strings.Contains(d.Name, "A100") {
			t.Fatalf("A100 request got %q", d.Name)
		}
	}
	// A generic request may use any GPU, so it queues behind the V100 request.
	ctxShort, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Allocate(ctxShort, Request{Owner: "g", Count: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Allocate = %v", err)
	}
	v.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAllocateCancelLeavesQueue(t *testing.T) {
	m, _ := newManager(t, newDGX(t))
	hold, err := m.Allocate(context.Background(), Request{Owner: "hold", Count: 8})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := m.Allocate(ctx, Request{Owner: "w", Count: 2, OnWait: func(string) { cancel() }})
		res <- err
	}()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("Allocate after cancel = %v", err)
	}
	if m.Waiting() != 0 {
		t.Fatalf("%d waiting after cancel", m.Waiting())
	}
	hold.Release()
	if n := len(m.Assignments()); n != 0 {
		t.Fatalf("%d GPUs assigned after everything was released", n)
	}
}

func TestRestoreAndReleaseOwner(t *testing.T) {
	s := newDGX(t)
	m, _ := newManager(t, s)
	u0, u1, u2 := dev(s, 0).UUID, dev(s, 1).UUID, dev(s, 2).UUID

	l, err := m.Restore("exec-1", []string{u1, u0})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(l.UUIDs()) != fmt.Sprint([]string{u0, u1}) {
		t.Fatalf("restored lease UUIDs %v not in index order", l.UUIDs())
	}
	if _, err := m.Restore("exec-1", []string{u0}); err != nil {
		t.Fatalf("restoring the same owner again: %v", err)
	}
	if _, err := m.Restore("exec-2", []string{u2, u1}); !errors.Is(err, ErrInUse) {
		t.Fatalf("restore of a held GPU = %v, want ErrInUse", err)
	}
	if m.Assignments()[u2] != "" {
		t.Fatal("failed restore took a GPU")
	}
	if _, err := m.Restore("exec-3", []string{"GPU-gone"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("restore of unknown GPU = %v, want ErrNotFound", err)
	}
	if _, err := m.Restore("exec-4", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("restore of nothing = %v, want ErrInvalid", err)
	}
	if n := m.ReleaseOwner("exec-1"); n != 2 {
		t.Fatalf("ReleaseOwner freed %d, want 2", n)
	}
	l.Release() // already freed: must not free someone else's GPUs
	k, err := m.Allocate(context.Background(), Request{Owner: "k", Count: 8})
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if n := len(m.Assignments()); n != 8 {
		t.Fatalf("stale release freed GPUs of another owner: %d assigned", n)
	}
	k.Release()
}

// TestAcceptanceTwentyTasksOnEightGPUs is the acceptance test: 20 tasks asking for 1
// to 3 GPUs each arrive while every GPU is taken, then run concurrently on the mock's 8 GPUs
// for several rounds. No GPU is ever held twice, every task finishes, and no request is
// granted before an earlier one (so none waits behind more than one rotation of the queue).
func TestAcceptanceTwentyTasksOnEightGPUs(t *testing.T) {
	m, _ := newManager(t, newDGX(t))
	var (
		grantMu sync.Mutex
		grants  []uint64
	)
	m.mu.Lock()
	m.onGrant = func(seq uint64, _ []string) {
		grantMu.Lock()
		grants = append(grants, seq)
		grantMu.Unlock()
	}
	m.mu.Unlock()

	blocker, err := m.Allocate(context.Background(), Request{Owner: "blocker", Count: 8})
	if err != nil {
		t.Fatal(err)
	}
	const tasks, rounds = 20, 5
	var (
		heldMu sync.Mutex
		held   = map[string]string{}
		queued sync.WaitGroup
		wg     sync.WaitGroup
		errs   = make(chan error, tasks)
	)
	queued.Add(tasks)
	for i := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			owner := fmt.Sprintf("task-%02d", i)
			for r := range rounds {
				var once sync.Once
				onWait := func(string) {}
				if r == 0 {
					onWait = func(string) { once.Do(queued.Done) }
				}
				l, err := m.Allocate(context.Background(), Request{Owner: owner, Count: 1 + rng.IntN(3), OnWait: onWait})
				if err != nil {
					errs <- err
					return
				}
				heldMu.Lock()
				for _, u := range l.UUIDs() {
					if o, ok := held[u]; ok {
						heldMu.Unlock()
						errs <- fmt.Errorf("gpu %s over-allocated to %s and %s", u, o, owner)
						return
					}
					held[u] = owner
				}
				heldMu.Unlock()
				runtime.Gosched() // let others run while the GPUs are held
				heldMu.Lock()
				for _, u := range l.UUIDs() {
					delete(held, u)
				}
				heldMu.Unlock()
				l.Release()
			}
		}()
	}
	queued.Wait() // all 20 queued behind the blocker
	if w := m.Waiting(); w != tasks {
		t.Fatalf("%d waiting, want %d", w, tasks)
	}
	blocker.Release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	grantMu.Lock()
	defer grantMu.Unlock()
	if len(grants) != 1+tasks*rounds {
		t.Fatalf("%d grants, want %d", len(grants), 1+tasks*rounds)
	}
	for i := 1; i < len(grants); i++ {
		if grants[i] <= grants[i-1] {
			t.Fatalf("request %d granted after later request %d: order %v", grants[i], grants[i-1], grants)
		}
	}
	if n := len(m.Assignments()); n != 0 || m.Waiting() != 0 {
		t.Fatalf("after all tasks: %d assigned, %d waiting", n, m.Waiting())
	}
}
