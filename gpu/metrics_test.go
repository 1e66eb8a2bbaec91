package gpu

import (
	"context"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	s := newDGX(t)
	dev(s, 0).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{Gpu: 75}, nvml.SUCCESS
	}
	dev(s, 0).MemoryInfo.Used = 1 << 30
	dev(s, 1).GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED
	}
	m, _ := newManager(t, s)
	m.Sample(context.Background())
	l, err := m.Allocate(context.Background(), Request{Owner: "exec-1", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()

	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m.Collector()); err != nil {
		t.Fatal(err)
	}
	u0 := dev(s, 0).UUID
	// Device 1 does not report utilization, so 7 series, not 8.
	if n := testutil.CollectAndCount(m.Collector(), "kfpbox_gpu_utilization_percent"); n != 7 {
		t.Fatalf("%d utilization series, want 7", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			uuid := ""
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "uuid" {
					uuid = lp.GetValue()
				}
			}
			if uuid == u0 || uuid == "" {
				vals[mf.GetName()] = mt.GetGauge().GetValue()
			}
		}
	}
	for name, v := range map[string]float64{
		"kfpbox_gpu_info": 1, "kfpbox_gpu_utilization_percent": 75, "kfpbox_gpu_memory_used_bytes": 1 << 30,
		"kfpbox_gpu_memory_total_bytes": 42949672960, "kfpbox_gpu_allocated": 1, "kfpbox_gpu_healthy": 1,
		"kfpbox_gpu_requests_waiting": 0,
	} {
		if got, ok := vals[name]; !ok || got != v {
			t.Errorf("%s for GPU 0 = %v (present %v), want %v", name, got, ok, v)
		}
	}
}
