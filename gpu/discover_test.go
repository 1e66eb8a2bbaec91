package gpu

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

func TestNewDiscoversMockDGX(t *testing.T) {
	s := newDGX(t)
	dev(s, 3).MigMode = nvml.DEVICE_MIG_ENABLE
	m, _ := newManager(t, s)

	if r := m.Unavailable(); r != "" {
		t.Fatalf("Unavailable = %q, want empty", r)
	}
	devs := m.Devices()
	if len(devs) != 8 {
		t.Fatalf("got %d devices, want 8", len(devs))
	}
	for i, d := range devs {
		want := dev(s, i)
		if d.Index != i || d.UUID != want.UUID || d.Minor != i {
			t.Errorf("device %d: index %d uuid %q minor %d; want %d %q %d", i, d.Index, d.UUID, d.Minor, i, want.UUID, i)
		}
		if d.Name != "Mock NVIDIA A100-SXM4-40GB" || d.MemoryTotal != 42949672960 {
			t.Errorf("device %d: name %q memory %d", i, d.Name, d.MemoryTotal)
		}
		if d.DriverVersion != "550.54.15" || d.CUDAVersion != "12.4" {
			t.Errorf("device %d: driver %q cuda %q, want 550.54.15 12.4", i, d.DriverVersion, d.CUDAVersion)
		}
		if !d.Healthy || d.Utilization != -1 || d.AssignedTo != "" {
			t.Errorf("device %d: healthy %v utilization %d assigned %q", i, d.Healthy, d.Utilization, d.AssignedTo)
		}
		if d.MIGEnabled != (i == 3) {
			t.Errorf("device %d: MIGEnabled = %v", i, d.MIGEnabled)
		}
	}
}

func TestNewMarksUnreadableDeviceUnhealthy(t *testing.T) {
	s := newDGX(t)
	dev(s, 5).GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_UNKNOWN }
	dev(s, 6).GetUUIDFunc = func() (string, nvml.Return) { return "", nvml.ERROR_GPU_IS_LOST }
	m, logs := newManager(t, s)

	devs := m.Devices()
	if len(devs) != 7 {
		t.Fatalf("got %d devices, want 7 (device 6 has no readable UUID)", len(devs))
	}
	if devs[5].Healthy || !strings.Contains(devs[5].HealthReason, "memory info") {
		t.Errorf("device 5: healthy %v reason %q", devs[5].Healthy, devs[5].HealthReason)
	}
	if !strings.Contains(logs.String(), "gpu skipped") {
		t.Errorf("log lacks the skipped device:\n%s", logs)
	}
}

func TestNewWithoutNVML(t *testing.T) {
	m, logs := newManager(t, noNVML())

	if n := len(m.Devices()); n != 0 {
		t.Fatalf("got %d devices, want 0", n)
	}
	reason := m.Unavailable()
	if !strings.Contains(reason, "libnvidia-ml.so.1 not found") {
		t.Fatalf("Unavailable = %q", reason)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "no GPUs") || !strings.Contains(lines[0], "libnvidia-ml") {
		t.Fatalf("want one clear log line, got:\n%s", logs)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatalf("Start without GPUs: %v", err)
	}
	if err := m.Stop(context.Background()); err != nil {
		t.Fatalf("Stop without GPUs: %v", err)
	}
	_, err := m.Allocate(context.Background(), Request{Owner: "t1", Count: 1})
	if !errors.Is(err, ErrUnsatisfiable) || !strings.Contains(err.Error(), "no GPUs") || !strings.Contains(err.Error(), "libnvidia-ml") {
		t.Fatalf("Allocate = %v, want ErrUnsatisfiable naming the missing library", err)
	}
}

// TestNewRealLibrary runs discovery against the real go-nvml binding: on a machine without
// the NVIDIA driver it must report why, not fail.
func TestNewRealLibrary(t *testing.T) {
	m, _ := newManager(t, nil)
	if m.Unavailable() == "" {
		if len(m.Devices()) == 0 {
			t.Fatal("NVML works but reports neither devices nor a reason")
		}
		return
	}
	if len(m.Devices()) != 0 {
		t.Fatalf("unavailable (%q) yet %d devices", m.Unavailable(), len(m.Devices()))
	}
}

func TestNewNoDevices(t *testing.T) {
	s := newDGX(t)
	s.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.SUCCESS }
	m, _ := newManager(t, s)
	if got := m.Unavailable(); !strings.Contains(got, "no GPUs") {
		t.Fatalf("Unavailable = %q", got)
	}
}

func TestSampleUpdatesUtilizationMemoryAndHealth(t *testing.T) {
	s := newDGX(t)
	for i := range s.Devices {
		d := dev(s, i)
		d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{Gpu: uint32(10 * i)}, nvml.SUCCESS
		}
		d.MemoryInfo.Used = uint64(i) << 30
	}
	dev(s, 1).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED
	}
	dev(s, 2).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{}, nvml.ERROR_GPU_IS_LOST
	}
	m, _ := newManager(t, s)
	m.Sample(context.Background())

	devs := m.Devices()
	for i, d := range devs {
		switch i {
		case 1:
			if d.Utilization != -1 || !d.Healthy {
				t.Errorf("device 1 (utilization not supported): util %d healthy %v", d.Utilization, d.Healthy)
			}
		case 2:
			if d.Healthy || !strings.Contains(d.HealthReason, "GPU is lost") {
				t.Errorf("device 2 (lost): healthy %v reason %q", d.Healthy, d.HealthReason)
			}
		default:
			if d.Utilization != 10*i || d.MemoryUsed != uint64(i)<<30 || !d.Healthy || d.SampledAt.IsZero() {
				t.Errorf("device %d: util %d used %d healthy %v", i, d.Utilization, d.MemoryUsed, d.Healthy)
			}
		}
	}
}

func TestLostGPUFailsRequestsThatCanNoLongerBeMet(t *testing.T) {
	s := newDGX(t)
	m, _ := newManager(t, s)
	hold, err := m.Allocate(context.Background(), Request{Owner: "holder", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Release()

	res := make(chan error, 1)
	queued := make(chan struct{})
	var once sync.Once
	go func() {
		_, err := m.Allocate(context.Background(), Request{Owner: "all8", Count: 8, OnWait: func(string) { once.Do(func() { close(queued) }) }})
		res <- err
	}()
	<-queued
	dev(s, 4).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{}, nvml.ERROR_GPU_IS_LOST
	}
	m.Sample(context.Background())
	if err := <-res; !errors.Is(err, ErrUnsatisfiable) || !strings.Contains(err.Error(), "1 more unhealthy") {
		t.Fatalf("waiting 8-GPU request after a GPU was lost: %v", err)
	}
}

func TestStartSamplesUntilStop(t *testing.T) {
	s := newDGX(t)
	sampled := make(chan struct{}, 64)
	dev(s, 0).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		select {
		case sampled <- struct{}{}:
		default:
		}
		return nvml.Utilization{Gpu: 42}, nvml.SUCCESS
	}
	m, _ := newManager(t, s, func(o *Options) { o.SampleInterval = 1 })
	m.eventWaitMs = 5
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Start samples once itself; wait for two more rounds from the ticker.
	for range 3 {
		<-sampled
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if n := len(s.ShutdownCalls()); n != 1 {
		t.Fatalf("NVML Shutdown called %d times, want 1", n)
	}
	if got := m.Devices()[0].Utilization; got != 42 {
		t.Fatalf("utilization after Stop = %d, want last sample 42", got)
	}
}

func TestCriticalXIDMarksGPUUnhealthy(t *testing.T) {
	s := newDGX(t)
	events := make(chan nvml.EventData)
	withEvents(s, events)
	m, _ := newManager(t, s)
	m.eventWaitMs = 5
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Application errors (XID 13, 31, 43...) leave the GPU healthy; XID 79 (fallen off the
	// bus) does not. An unbuffered channel means each send is received by the watcher.
	events <- nvml.EventData{Device: s.Devices[2], EventType: nvml.EventTypeXidCriticalError, EventData: 31}
	events <- nvml.EventData{Device: s.Devices[3], EventType: nvml.EventTypeXidCriticalError, EventData: 79}
	events <- nvml.EventData{Device: s.Devices[4], EventType: nvml.EventTypeXidCriticalError, EventData: 13}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Devices() {
		wantHealthy := d.Index != 3
		if d.Healthy != wantHealthy {
			t.Errorf("gpu %d healthy = %v (%s), want %v", d.Index, d.Healthy, d.HealthReason, wantHealthy)
		}
	}
	if r := m.Devices()[3].HealthReason; r != "critical XID error 79" {
		t.Errorf("reason %q", r)
	}
	if _, err := m.Allocate(ctx, Request{Owner: "x", Count: 8}); !errors.Is(err, ErrUnsatisfiable) {
		t.Fatalf("8 GPUs with one unhealthy: %v", err)
	}
}

func TestXIDWithoutDeviceMarksAll(t *testing.T) {
	m, _ := newManager(t, newDGX(t))
	m.markXID("", 48)
	for _, d := range m.Devices() {
		if d.Healthy {
			t.Fatalf("gpu %d still healthy after a device-less XID 48", d.Index)
		}
	}
}

func TestNoHealthEvents(t *testing.T) {
	s := newDGX(t)
	s.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) { return nil, nvml.ERROR_NOT_SUPPORTED }
	m, logs := newManager(t, s)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "health events unavailable") {
		t.Fatalf("log:\n%s", logs)
	}
}

func TestNilManagerInventory(t *testing.T) {
	var m *Manager
	if m.Devices() != nil || m.Unavailable() != NotRunningReason || len(m.Assignments()) != 0 {
		t.Fatalf("nil manager: %v %q %v", m.Devices(), m.Unavailable(), m.Assignments())
	}
}
