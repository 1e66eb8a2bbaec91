package gpu

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Generic accelerator names that accept any NVIDIA GPU.
var genericNames = map[string]bool{
	"":               true,
	"nvidia.com/gpu": true,
	"nvidia_gpu":     true,
	"nvidia":         true,
	"gpu":            true,
}

// noiseTokens carry no information about the model and are dropped from both sides.
var noiseTokens = map[string]bool{
	"nvidia": true, "tesla": true, "com": true, "gpu": true, "mock": true,
	// GKE's A3 Mega machines carry ordinary H100 80GB parts.
	"mega": true,
}

// nonNVIDIA are prefixes of accelerator names that never match an NVIDIA device.
var nonNVIDIA = []string{"tpu", "amd", "intel", "habana", "gaudi", "aws", "google.com/tpu"}

// Matcher decides whether a device satisfies an accelerator constraint. The zero value is
// not usable; build one with ParseAccelerator.
type Matcher struct {
	raw     string
	any     bool
	foreign bool
	tokens  []string
	memGB   int
}

// ParseAccelerator builds a Matcher from an accelerator name as it appears in KFP's IR
// (`accelerator.resourceType` or the deprecated `accelerator.type`, for example
// "nvidia.com/gpu" or "NVIDIA_TESLA_V100") or in a node selector label value (for example
// "nvidia-tesla-t4" or "NVIDIA-A100-SXM4-40GB"). The empty string and "nvidia.com/gpu" match
// every NVIDIA GPU. Matching is by model tokens: every token of the name other than vendor
// words must appear in the device name, so "V100" matches "Tesla V100-SXM2-16GB" but "A10"
// does not match "A100". A memory token such as "80GB" may also be satisfied by the
// device's total memory.
func ParseAccelerator(name string) Matcher {
	m := Matcher{raw: name}
	lower := strings.ToLower(strings.TrimSpace(name))
	if genericNames[lower] {
		m.any = true
		return m
	}
	for _, p := range nonNVIDIA {
		if strings.HasPrefix(lower, p) {
			m.foreign = true
			return m
		}
	}
	lower = strings.TrimPrefix(lower, "nvidia.com/")
	for _, t := range tokenize(lower) {
		if noiseTokens[t] {
			continue
		}
		if gb, ok := memToken(t); ok {
			m.memGB = gb
			continue
		}
		m.tokens = append(m.tokens, t)
	}
	if len(m.tokens) == 0 && m.memGB == 0 {
		m.any = true
	}
	return m
}

// String returns the accelerator name the matcher was built from, or "nvidia.com/gpu" for a
// generic one.
func (m Matcher) String() string {
	if m.any && m.raw == "" {
		return "nvidia.com/gpu"
	}
	return m.raw
}

// Generic reports whether the matcher accepts any NVIDIA GPU.
func (m Matcher) Generic() bool { return m.any }

// Foreign reports whether the name names a non-NVIDIA accelerator (a TPU, an AMD GPU...),
// which no device on this box can satisfy.
func (m Matcher) Foreign() bool { return m.foreign }

// Match reports whether a device with the given NVML name and total memory satisfies the
// constraint.
func (m Matcher) Match(deviceName string, memoryTotal uint64) bool {
	if m.foreign {
		return false
	}
	if m.any {
		return true
	}
	have := map[string]bool{}
	nameMem := 0
	for _, t := range tokenize(strings.ToLower(deviceName)) {
		have[t] = true
		if gb, ok := memToken(t); ok {
			nameMem = gb
		}
	}
	for _, t := range m.tokens {
		if !have[t] {
			return false
		}
	}
	if m.memGB == 0 {
		return true
	}
	if nameMem != 0 {
		return nameMem == m.memGB
	}
	return memoryClose(memoryTotal, m.memGB)
}

// memoryClose reports whether total bytes is within 10% of gb gigabytes (GB or GiB).
func memoryClose(total uint64, gb int) bool {
	if total == 0 {
		return false
	}
	want := float64(gb) * (1 << 30)
	return math.Abs(float64(total)-want)/want <= 0.10
}

// memToken parses "80gb" or "16g" into 80 or 16.
func memToken(t string) (int, bool) {
	s := strings.TrimSuffix(t, "gb")
	if s == t {
		s = strings.TrimSuffix(t, "g")
		if s == t {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// tokenize splits s on every character that is not a letter or a digit.
func tokenize(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z')
	})
}

// Node selector label keys that name an accelerator model, most specific first.
var acceleratorLabels = []string{
	"nvidia.com/gpu.product",
	"cloud.google.com/gke-accelerator",
	"k8s.amazonaws.com/accelerator",
	"accelerator",
}

// AcceleratorFromNodeSelector returns the accelerator name found in a task's node selector
// labels (KFP's kubernetes platform spec `nodeSelector.labels`), or "" when none of the known
// keys is present. Labels that have nothing to do with accelerators are ignored: the box is a
// single node and satisfies them trivially.
func AcceleratorFromNodeSelector(labels map[string]string) string {
	for _, k := range acceleratorLabels {
		if v, ok := labels[k]; ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// AcceleratorFromIR combines the accelerator fields of a KFP executor's
// `container.resources.accelerator` after placeholders are resolved: resourceType and the
// deprecated type, resourceCount and the deprecated count. The more specific name wins (a
// model name over "nvidia.com/gpu"); the count prefers resourceCount. A zero count with no
// error means the task asks for no GPU.
func AcceleratorFromIR(resourceType, legacyType, resourceCount, legacyCount string) (name string, count int, err error) {
	name = strings.TrimSpace(resourceType)
	if lt := strings.TrimSpace(legacyType); lt != "" && (name == "" || ParseAccelerator(name).Generic() && !ParseAccelerator(lt).Generic()) {
		name = lt
	}
	c := strings.TrimSpace(resourceCount)
	if c == "" {
		c = strings.TrimSpace(legacyCount)
	}
	if c == "" {
		if name == "" {
			return "", 0, nil
		}
		return name, 1, nil
	}
	n, err := strconv.Atoi(c)
	if err != nil || n < 0 {
		return "", 0, fmt.Errorf("accelerator count %q: %w", c, ErrInvalid)
	}
	if n > 0 && name == "" {
		name = "nvidia.com/gpu"
	}
	return name, n, nil
}

// MostSpecific returns the first name that names a GPU model rather than any NVIDIA GPU, or
// "nvidia.com/gpu" when none does. The engine uses it to combine the IR's accelerator type
// with a node selector's accelerator label.
func MostSpecific(names ...string) string {
	for _, n := range names {
		if !ParseAccelerator(n).Generic() {
			return strings.TrimSpace(n)
		}
	}
	return "nvidia.com/gpu"
}
