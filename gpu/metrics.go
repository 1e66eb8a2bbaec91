package gpu

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes the Manager's last samples as Prometheus metrics. It reads the inventory
// at scrape time and never calls NVML itself.
type collector struct {
	m                                        *Manager
	info, util, memUsed, memTotal, allocated *prometheus.Desc
	healthy, waiting                         *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

// Collector returns a Prometheus collector with one series per GPU:
// kfpbox_gpu_info (1, labelled with name, driver and CUDA versions),
// kfpbox_gpu_utilization_percent (absent when the device does not report it),
// kfpbox_gpu_memory_used_bytes, kfpbox_gpu_memory_total_bytes, kfpbox_gpu_allocated (0 or 1),
// kfpbox_gpu_healthy (0 or 1), all labelled by index and uuid; and kfpbox_gpu_requests_waiting.
func (m *Manager) Collector() prometheus.Collector {
	ids := []string{"index", "uuid"}
	return &collector{
		m: m,
		info: prometheus.NewDesc("kfpbox_gpu_info", "GPU identity; always 1.",
			append(ids, "name", "driver_version", "cuda_version", "mig_enabled"), nil),
		util:      prometheus.NewDesc("kfpbox_gpu_utilization_percent", "GPU busy percentage at the last sample.", ids, nil),
		memUsed:   prometheus.NewDesc("kfpbox_gpu_memory_used_bytes", "GPU memory in use at the last sample.", ids, nil),
		memTotal:  prometheus.NewDesc("kfpbox_gpu_memory_total_bytes", "GPU memory size.", ids, nil),
		allocated: prometheus.NewDesc("kfpbox_gpu_allocated", "1 when a task holds the GPU.", ids, nil),
		healthy:   prometheus.NewDesc("kfpbox_gpu_healthy", "1 when the GPU is healthy.", ids, nil),
		waiting:   prometheus.NewDesc("kfpbox_gpu_requests_waiting", "GPU requests queued for free GPUs.", nil, nil),
	}
}

// Describe sends the metric descriptors.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.util, c.memUsed, c.memTotal, c.allocated, c.healthy, c.waiting} {
		ch <- d
	}
}

// Collect sends the current values.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, d := range c.m.Devices() {
		lv := []string{strconv.Itoa(d.Index), d.UUID}
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1,
			append(lv, d.Name, d.DriverVersion, d.CUDAVersion, boolString(d.MIGEnabled))...)
		if d.Utilization >= 0 {
			ch <- prometheus.MustNewConstMetric(c.util, prometheus.GaugeValue, float64(d.Utilization), lv...)
		}
		ch <- prometheus.MustNewConstMetric(c.memUsed, prometheus.GaugeValue, float64(d.MemoryUsed), lv...)
		ch <- prometheus.MustNewConstMetric(c.memTotal, prometheus.GaugeValue, float64(d.MemoryTotal), lv...)
		ch <- prometheus.MustNewConstMetric(c.allocated, prometheus.GaugeValue, b(d.AssignedTo != ""), lv...)
		ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, b(d.Healthy), lv...)
	}
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(c.m.Waiting()))
}

func boolString(v bool) string {
	if v {
		return "true"
	}
	return "false"
}
