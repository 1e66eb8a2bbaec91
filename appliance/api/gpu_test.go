package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/gpu"
)

// fakeGPUs is a hand-written GPUInventory.
type fakeGPUs struct {
	DevicesFn     func() []gpu.Device
	UnavailableFn func() string
}

func (f fakeGPUs) Devices() []gpu.Device { return f.DevicesFn() }
func (f fakeGPUs) Unavailable() string   { return f.UnavailableFn() }

func getGPUs(t *testing.T, inv GPUInventory) map[string]any {
	t.Helper()
	gin.SetMode(gin.TestMode)
	g := gin.New()
	registerGPURoutes(g.Group("/apis/v2beta1"), inv)
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/apis/v2beta1/gpus", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	return body
}

func TestGPUListRoute(t *testing.T) {
	tests := []struct {
		name string
		inv  GPUInventory
		want map[string]any
	}{
		{
			name: "two gpus, one held",
			inv: fakeGPUs{
				DevicesFn: func() []gpu.Device {
					return []gpu.Device{
						{Index: 0, UUID: "GPU-a", Name: "NVIDIA A100-SXM4-40GB", MemoryTotal: 42949672960, MemoryUsed: 1024,
							Utilization: 37, Healthy: true, DriverVersion: "550.54.15", CUDAVersion: "12.4", AssignedTo: "exec-1"},
						{Index: 1, UUID: "GPU-b", Name: "NVIDIA A100-SXM4-40GB", MemoryTotal: 42949672960, Utilization: -1,
							MIGEnabled: true, Healthy: false, HealthReason: "nvml utilization: GPU is lost", DriverVersion: "550.54.15", CUDAVersion: "12.4"},
					}
				},
				UnavailableFn: func() string { return "" },
			},
			want: map[string]any{"gpus": []any{
				map[string]any{"index": 0.0, "uuid": "GPU-a", "name": "NVIDIA A100-SXM4-40GB", "memory_total_bytes": 42949672960.0,
					"memory_used_bytes": 1024.0, "utilization_percent": 37.0, "mig_enabled": false, "healthy": true,
					"driver_version": "550.54.15", "cuda_version": "12.4", "assigned_to": "exec-1"},
				map[string]any{"index": 1.0, "uuid": "GPU-b", "name": "NVIDIA A100-SXM4-40GB", "memory_total_bytes": 42949672960.0,
					"memory_used_bytes": 0.0, "utilization_percent": nil, "mig_enabled": true, "healthy": false,
					"health_reason": "nvml utilization: GPU is lost", "driver_version": "550.54.15", "cuda_version": "12.4", "assigned_to": ""},
			}},
		},
		{
			name: "no nvml",
			inv: fakeGPUs{
				DevicesFn:     func() []gpu.Device { return nil },
				UnavailableFn: func() string { return "NVIDIA driver library libnvidia-ml.so.1 not found" },
			},
			want: map[string]any{"gpus": []any{}, "unavailable_reason": "NVIDIA driver library libnvidia-ml.so.1 not found"},
		},
		{
			name: "no manager",
			inv:  nil,
			want: map[string]any{"gpus": []any{}, "unavailable_reason": noGPUManager},
		},
		{
			name: "nil *gpu.Manager",
			inv:  (*gpu.Manager)(nil),
			want: map[string]any{"gpus": []any{}, "unavailable_reason": noGPUManager},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := getGPUs(t, tt.inv); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("body:\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// TestGPUListRouteWithManager serves a real gpu.Manager over go-nvml's DGX A100 mock and
// shows which task holds which GPU.
func TestGPUListRouteWithManager(t *testing.T) {
	s := dgxa100.New()
	m, err := gpu.New(context.Background(), gpu.Options{NVML: s})
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.Allocate(context.Background(), gpu.Request{Owner: "exec-42", Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	body := getGPUs(t, m)
	gpus, _ := body["gpus"].([]any)
	if len(gpus) != 8 || body["unavailable_reason"] != nil {
		t.Fatalf("body = %v", body)
	}
	for i, g := range gpus {
		want := ""
		if i < 2 {
			want = "exec-42"
		}
		if got := g.(map[string]any)["assigned_to"]; got != want {
			t.Errorf("gpu %d assigned_to = %v, want %q", i, got, want)
		}
	}
}
