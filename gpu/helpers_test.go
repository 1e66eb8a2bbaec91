package gpu

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
)

// newDGX returns go-nvml's DGX A100 mock (8 GPUs) with the sampling calls the mock leaves out
// filled in: every GPU reports 0% utilization until a test changes it.
func newDGX(t interface{ Helper() }) *dgxa100.Server {
	t.Helper()
	s := dgxa100.New()
	for i := range s.Devices {
		d := dev(s, i)
		d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{}, nvml.SUCCESS
		}
		d.RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return nvml.SUCCESS }
	}
	withEvents(s, nil)
	return s
}

// withEvents makes the mock deliver the events sent on ch; a nil ch delivers none.
func withEvents(s *dgxa100.Server, ch <-chan nvml.EventData) {
	s.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) {
		return &mock.EventSet{
			WaitFunc: func(ms uint32) (nvml.EventData, nvml.Return) {
				select {
				case e := <-ch:
					return e, nvml.SUCCESS
				case <-time.After(time.Duration(ms) * time.Millisecond):
					return nvml.EventData{}, nvml.ERROR_TIMEOUT
				}
			},
			FreeFunc: func() nvml.Return { return nvml.SUCCESS },
		}, nvml.SUCCESS
	}
}

// dev returns the mock's i-th device.
func dev(s *dgxa100.Server, i int) *dgxa100.Device { return s.Devices[i].(*dgxa100.Device) }

// noNVML is an NVML whose Init fails as it does when libnvidia-ml.so.1 is absent.
func noNVML() nvml.Interface {
	return &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newManager builds a Manager over lib with a captured log.
func newManager(t testing.TB, lib nvml.Interface, opts ...func(*Options)) (*Manager, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	o := Options{NVML: lib, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	for _, f := range opts {
		f(&o)
	}
	m, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	return m, logs
}
