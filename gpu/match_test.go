package gpu

import (
	"errors"
	"testing"
)

func TestMatcher(t *testing.T) {
	const gb = 1 << 30
	tests := []struct {
		accel  string
		device string
		mem    uint64
		want   bool
	}{
		{"", "Tesla T4", 16 * gb, true},
		{"nvidia.com/gpu", "NVIDIA A100-SXM4-40GB", 40 * gb, true},
		{"NVIDIA_TESLA_V100", "Tesla V100-SXM2-16GB", 16 * gb, true},
		{"NVIDIA_TESLA_V100", "Tesla V100-PCIE-32GB", 32 * gb, true},
		{"NVIDIA_TESLA_V100", "NVIDIA A100-SXM4-40GB", 40 * gb, false},
		{"NVIDIA_TESLA_T4", "Tesla T4", 16 * gb, true},
		{"NVIDIA_TESLA_T4", "NVIDIA T400", 4 * gb, false},
		{"NVIDIA_TESLA_A100", "NVIDIA A100-SXM4-80GB", 80 * gb, true},
		{"NVIDIA_A100", "Mock NVIDIA A100-SXM4-40GB", 40 * gb, true},
		{"NVIDIA_A100_80GB", "NVIDIA A100-SXM4-40GB", 40 * gb, false},
		{"NVIDIA_A100_80GB", "NVIDIA A100 80GB PCIe", 80 * gb, true},
		{"NVIDIA_A10", "NVIDIA A100-SXM4-40GB", 40 * gb, false},
		{"NVIDIA_A10", "NVIDIA A10", 24 * gb, true},
		{"NVIDIA_H100_80GB", "NVIDIA H100 80GB HBM3", 80 * gb, true},
		{"NVIDIA_H100_80GB", "NVIDIA H100 PCIe", 81559 << 20, true},
		{"NVIDIA_H100_80GB", "NVIDIA H100 NVL", 94 * gb, false},
		{"NVIDIA_H100_MEGA_80GB", "NVIDIA H100 80GB HBM3", 80 * gb, true},
		{"NVIDIA_L4", "NVIDIA L4", 24 * gb, true},
		{"NVIDIA_L4", "NVIDIA L40S", 48 * gb, false},
		{"nvidia-tesla-t4", "Tesla T4", 16 * gb, true},
		{"nvidia-l4", "NVIDIA L4", 24 * gb, true},
		{"nvidia-a100-80gb", "NVIDIA A100-SXM4-80GB", 80 * gb, true},
		{"NVIDIA-A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB", 40 * gb, true},
		{"NVIDIA-A100-SXM4-40GB", "NVIDIA A100-PCIE-40GB", 40 * gb, false},
		{"NVIDIA_GEFORCE_RTX_4090", "NVIDIA GeForce RTX 4090", 24 * gb, true},
		{"TPU_V4", "NVIDIA A100-SXM4-40GB", 40 * gb, false},
		{"amd.com/gpu", "NVIDIA A100-SXM4-40GB", 40 * gb, false},
	}
	for _, tt := range tests {
		t.Run(tt.accel+"/"+tt.device, func(t *testing.T) {
			if got := ParseAccelerator(tt.accel).Match(tt.device, tt.mem); got != tt.want {
				t.Fatalf("ParseAccelerator(%q).Match(%q) = %v, want %v", tt.accel, tt.device, got, tt.want)
			}
		})
	}
}

func TestMatcherKinds(t *testing.T) {
	if m := ParseAccelerator("nvidia.com/gpu"); !m.Generic() || m.Foreign() || m.String() != "nvidia.com/gpu" {
		t.Errorf("nvidia.com/gpu: generic %v foreign %v string %q", m.Generic(), m.Foreign(), m)
	}
	if m := ParseAccelerator(""); m.String() != "nvidia.com/gpu" {
		t.Errorf(`"" prints as %q`, m)
	}
	if m := ParseAccelerator("TPU_V3"); !m.Foreign() || m.Generic() {
		t.Errorf("TPU_V3: generic %v foreign %v", m.Generic(), m.Foreign())
	}
}

func TestAcceleratorFromIR(t *testing.T) {
	tests := []struct {
		name                         string
		resType, legType, resN, legN string
		wantName                     string
		wantCount                    int
		wantErr                      error
	}{
		{"none", "", "", "", "", "", 0, nil},
		{"fixture", "nvidia.com/gpu", "nvidia.com/gpu", "1", "1", "nvidia.com/gpu", 1, nil},
		{"legacy model wins over generic", "nvidia.com/gpu", "NVIDIA_TESLA_T4", "2", "", "NVIDIA_TESLA_T4", 2, nil},
		{"specific resource type kept", "NVIDIA_L4", "nvidia.com/gpu", "1", "", "NVIDIA_L4", 1, nil},
		{"legacy count", "", "NVIDIA_TESLA_V100", "", "4", "NVIDIA_TESLA_V100", 4, nil},
		{"type without count means one", "nvidia.com/gpu", "", "", "", "nvidia.com/gpu", 1, nil},
		{"count without type", "", "", "2", "", "nvidia.com/gpu", 2, nil},
		{"zero", "nvidia.com/gpu", "", "0", "", "nvidia.com/gpu", 0, nil},
		{"bad count", "nvidia.com/gpu", "", "two", "", "", 0, ErrInvalid},
		{"negative", "nvidia.com/gpu", "", "-1", "", "", 0, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, n, err := AcceleratorFromIR(tt.resType, tt.legType, tt.resN, tt.legN)
			if !errors.Is(err, tt.wantErr) || name != tt.wantName || n != tt.wantCount {
				t.Fatalf("got (%q, %d, %v), want (%q, %d, %v)", name, n, err, tt.wantName, tt.wantCount, tt.wantErr)
			}
		})
	}
}

func TestAcceleratorFromNodeSelector(t *testing.T) {
	tests := []struct {
		labels map[string]string
		want   string
	}{
		{nil, ""},
		{map[string]string{"disktype": "ssd"}, ""},
		{map[string]string{"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}, "nvidia-tesla-t4"},
		{map[string]string{"cloud.google.com/gke-accelerator": "nvidia-l4", "nvidia.com/gpu.product": "NVIDIA-L4"}, "NVIDIA-L4"},
		{map[string]string{"accelerator": " nvidia-tesla-v100 "}, "nvidia-tesla-v100"},
	}
	for _, tt := range tests {
		if got := AcceleratorFromNodeSelector(tt.labels); got != tt.want {
			t.Errorf("AcceleratorFromNodeSelector(%v) = %q, want %q", tt.labels, got, tt.want)
		}
	}
}

// FuzzMatcher checks that any accelerator name parses without panicking, that a generic
// matcher accepts every device and a foreign one none.
func FuzzMatcher(f *testing.F) {
	for _, s := range []string{"", "nvidia.com/gpu", "NVIDIA_TESLA_V100", "nvidia-a100-80gb", "TPU_V4", "80GB", "g", "0gb", "__--"} {
		f.Add(s, "Tesla V100-SXM2-16GB", uint64(16<<30))
	}
	f.Fuzz(func(t *testing.T, accel, device string, mem uint64) {
		m := ParseAccelerator(accel)
		got := m.Match(device, mem)
		if m.Generic() && !got {
			t.Fatalf("generic %q rejected %q", accel, device)
		}
		if m.Foreign() && got {
			t.Fatalf("foreign %q accepted %q", accel, device)
		}
		if ParseAccelerator(accel).Match(device, mem) != got {
			t.Fatal("matching is not deterministic")
		}
	})
}

func TestMostSpecific(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, "nvidia.com/gpu"},
		{[]string{"nvidia.com/gpu", ""}, "nvidia.com/gpu"},
		{[]string{"nvidia.com/gpu", "nvidia-tesla-t4"}, "nvidia-tesla-t4"},
		{[]string{"NVIDIA_L4", "nvidia-tesla-t4"}, "NVIDIA_L4"},
		{[]string{"", "TPU_V4"}, "TPU_V4"},
	}
	for _, tt := range tests {
		if got := MostSpecific(tt.in...); got != tt.want {
			t.Errorf("MostSpecific(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzAcceleratorFromIR checks that any field values give either an error or a count of at
// least zero with a name whenever the count is positive.
func FuzzAcceleratorFromIR(f *testing.F) {
	f.Add("nvidia.com/gpu", "nvidia.com/gpu", "1", "1")
	f.Add("", "NVIDIA_TESLA_T4", "", "2")
	f.Add("x", "", "-3", "")
	f.Fuzz(func(t *testing.T, rt, lt, rc, lc string) {
		name, n, err := AcceleratorFromIR(rt, lt, rc, lc)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if n < 0 || n > 0 && name == "" {
			t.Fatalf("got (%q, %d)", name, n)
		}
	})
}
