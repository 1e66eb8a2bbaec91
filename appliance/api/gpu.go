package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/gpu"
)

// GPUInventory is what the GPU endpoint needs; *gpu.Manager satisfies it.
type GPUInventory interface {
	// Devices returns every GPU with its last sample and current holder.
	Devices() []gpu.Device
	// Unavailable says why the box has no GPUs, "" when it has some.
	Unavailable() string
}

var _ GPUInventory = (*gpu.Manager)(nil)

// wireGPU is one GPU in GET /apis/v2beta1/gpus.
type wireGPU struct {
	Index            int    `json:"index"`
	UUID             string `json:"uuid"`
	Name             string `json:"name"`
	MemoryTotalBytes uint64 `json:"memory_total_bytes"`
	MemoryUsedBytes  uint64 `json:"memory_used_bytes"`
	// UtilizationPercent is null when the GPU does not report it.
	UtilizationPercent *int       `json:"utilization_percent"`
	MIGEnabled         bool       `json:"mig_enabled"`
	Healthy            bool       `json:"healthy"`
	HealthReason       string     `json:"health_reason,omitempty"`
	DriverVersion      string     `json:"driver_version"`
	CUDAVersion        string     `json:"cuda_version"`
	SampledAt          *time.Time `json:"sampled_at,omitempty"`
	// AssignedTo is the task execution holding the GPU, "" when free.
	AssignedTo string `json:"assigned_to"`
}

// wireGPUList is the body of GET /apis/v2beta1/gpus.
type wireGPUList struct {
	GPUs              []wireGPU `json:"gpus"`
	UnavailableReason string    `json:"unavailable_reason,omitempty"`
}

// noGPUManager is the reason given when the box runs without a GPU manager.
const noGPUManager = gpu.NotRunningReason

// registerGPURoutes adds GET <group>/gpus to the /apis/v2beta1 group: the GPU inventory and
// which task holds which GPU. A nil inventory answers with no GPUs and a reason.
func registerGPURoutes(v2 gin.IRouter, m GPUInventory) {
	v2.GET("/gpus", func(c *gin.Context) {
		c.JSON(http.StatusOK, gpuList(m))
	})
}

func gpuList(m GPUInventory) wireGPUList {
	out := wireGPUList{GPUs: []wireGPU{}}
	if m == nil {
		out.UnavailableReason = noGPUManager
		return out
	}
	for _, d := range m.Devices() {
		w := wireGPU{
			Index: d.Index, UUID: d.UUID, Name: d.Name,
			MemoryTotalBytes: d.MemoryTotal, MemoryUsedBytes: d.MemoryUsed,
			MIGEnabled: d.MIGEnabled, Healthy: d.Healthy, HealthReason: d.HealthReason,
			DriverVersion: d.DriverVersion, CUDAVersion: d.CUDAVersion, AssignedTo: d.AssignedTo,
		}
		if d.Utilization >= 0 {
			u := d.Utilization
			w.UtilizationPercent = &u
		}
		if !d.SampledAt.IsZero() {
			t := d.SampledAt.UTC()
			w.SampledAt = &t
		}
		out.GPUs = append(out.GPUs, w)
	}
	if len(out.GPUs) == 0 {
		out.UnavailableReason = m.Unavailable()
		if out.UnavailableReason == "" {
			out.UnavailableReason = "no GPUs were discovered"
		}
	}
	return out
}
