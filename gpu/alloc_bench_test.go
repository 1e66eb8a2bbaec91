package gpu

import (
	"context"
	"testing"
)

// BenchmarkAllocateRelease measures one uncontended Allocate and Release of one GPU.
func BenchmarkAllocateRelease(b *testing.B) {
	m, _ := newManager(b, newDGX(b))
	ctx := context.Background()
	for b.Loop() {
		l, err := m.Allocate(ctx, Request{Owner: "bench", Count: 1})
		if err != nil {
			b.Fatal(err)
		}
		l.Release()
	}
}

// BenchmarkAllocateContended measures Allocate and Release of 1 to 3 GPUs by many goroutines
// sharing the mock's 8 GPUs, so most requests queue.
func BenchmarkAllocateContended(b *testing.B) {
	m, _ := newManager(b, newDGX(b))
	ctx := context.Background()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		n := 0
		for pb.Next() {
			n++
			l, err := m.Allocate(ctx, Request{Owner: "bench", Count: 1 + n%3})
			if err != nil {
				b.Error(err)
				return
			}
			l.Release()
		}
	})
}

// BenchmarkInjectionFor measures building a device-node injection from a MapFS host root.
func BenchmarkInjectionFor(b *testing.B) {
	m, _ := newManager(b, newDGX(b), func(o *Options) { o.DevFS = hostFS() })
	l, err := m.Allocate(context.Background(), Request{Owner: "bench", Count: 2})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := m.InjectionFor(l, "containerd"); err != nil {
			b.Fatal(err)
		}
	}
}
