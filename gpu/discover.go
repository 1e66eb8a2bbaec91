package gpu

import (
	"errors"
	"fmt"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Device is one physical GPU as discovered by NVML, with its last sample. Values returned by
// Manager.Devices are copies.
type Device struct {
	// Index is NVML's device index (the order nvidia-smi prints).
	Index int `json:"index"`
	// UUID is the GPU's stable identity ("GPU-…"); allocation and injection use it.
	UUID string `json:"uuid"`
	// Name is the product name, for example "NVIDIA A100-SXM4-40GB".
	Name string `json:"name"`
	// Minor is the minor number of the device node /dev/nvidia<Minor>.
	Minor int `json:"minor"`
	// PCIBusID is the PCI address, for example "0000:07:00.0".
	PCIBusID string `json:"pci_bus_id,omitempty"`
	// MemoryTotal and MemoryUsed are in bytes; MemoryUsed comes from the last sample.
	MemoryTotal uint64 `json:"memory_total_bytes"`
	MemoryUsed  uint64 `json:"memory_used_bytes"`
	// Utilization is the GPU's busy percentage over NVML's last sample period; -1 when the
	// device does not report it.
	Utilization int `json:"utilization_percent"`
	// MIGEnabled is true when the GPU is in MIG mode. Such GPUs are listed but not allocated:
	// CUDA sees only their MIG slices, which kfp-box does not schedule.
	MIGEnabled bool `json:"mig_enabled"`
	// DriverVersion and CUDAVersion are the system's driver version ("550.54.15") and the
	// highest CUDA version the driver supports ("12.4").
	DriverVersion string `json:"driver_version"`
	CUDAVersion   string `json:"cuda_version"`
	// Healthy is false after NVML reported the GPU lost or failing; HealthReason says why.
	Healthy      bool   `json:"healthy"`
	HealthReason string `json:"health_reason,omitempty"`
	// SampledAt is when utilization and memory were last read.
	SampledAt time.Time `json:"sampled_at,omitzero"`
	// AssignedTo is the owner (task execution id) holding the GPU, "" when free.
	AssignedTo string `json:"assigned_to,omitempty"`
}

// allocatable reports whether new leases may take the device.
func (d *Device) allocatable() bool { return d.Healthy && !d.MIGEnabled }

// nvmlError wraps a non-success NVML return code.
type nvmlError struct {
	op  string
	ret nvml.Return
}

func (e *nvmlError) Error() string { return fmt.Sprintf("nvml %s: %s", e.op, returnString(e.ret)) }

// returnString names an NVML return code without calling into the library, which may be absent.
func returnString(r nvml.Return) string {
	switch r {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return "library not found"
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return "driver not loaded"
	case nvml.ERROR_NO_PERMISSION:
		return "no permission"
	case nvml.ERROR_NOT_SUPPORTED:
		return "not supported"
	case nvml.ERROR_GPU_IS_LOST:
		return "GPU is lost"
	case nvml.ERROR_UNINITIALIZED:
		return "not initialized"
	case nvml.ERROR_INVALID_ARGUMENT:
		return "invalid argument"
	case nvml.ERROR_UNKNOWN:
		return "unknown error"
	}
	return fmt.Sprintf("error code %d", int32(r))
}

// unavailableReason turns a failed nvml.Init into the one sentence users see.
func unavailableReason(ret nvml.Return) string {
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return "NVIDIA driver library libnvidia-ml.so.1 not found (no NVIDIA driver installed?)"
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return "NVIDIA kernel driver not loaded"
	case nvml.ERROR_NO_PERMISSION:
		return "no permission to talk to the NVIDIA driver"
	}
	return "NVML initialization failed: " + returnString(ret)
}

// discover reads every device from an initialized NVML. A device that cannot be read at all is
// skipped with its error; one whose UUID or name is readable but not its details is kept and
// marked unhealthy.
func discover(lib nvml.Interface) ([]*Device, []error) {
	driver, ret := lib.SystemGetDriverVersion()
	if ret != nvml.SUCCESS {
		driver = ""
	}
	cuda := ""
	if v, ret := lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS && v > 0 {
		cuda = fmt.Sprintf("%d.%d", v/1000, (v%1000)/10)
	}
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, []error{&nvmlError{op: "device count", ret: ret}}
	}
	var devs []*Device
	var errs []error
	for i := range n {
		h, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			errs = append(errs, fmt.Errorf("device %d: %w", i, &nvmlError{op: "handle", ret: ret}))
			continue
		}
		uuid, ret := h.GetUUID()
		if ret != nvml.SUCCESS {
			errs = append(errs, fmt.Errorf("device %d: %w", i, &nvmlError{op: "uuid", ret: ret}))
			continue
		}
		d := &Device{Index: i, UUID: uuid, Minor: i, Utilization: -1, DriverVersion: driver, CUDAVersion: cuda, Healthy: true}
		var problems []error
		if idx, ret := h.GetIndex(); ret == nvml.SUCCESS {
			d.Index = idx
		}
		if name, ret := h.GetName(); ret == nvml.SUCCESS {
			d.Name = name
		} else {
			problems = append(problems, &nvmlError{op: "name", ret: ret})
		}
		if minor, ret := h.GetMinorNumber(); ret == nvml.SUCCESS {
			d.Minor = minor
		} else {
			problems = append(problems, &nvmlError{op: "minor number", ret: ret})
		}
		if pci, ret := h.GetPciInfo(); ret == nvml.SUCCESS {
			d.PCIBusID = cString(pci.BusId[:])
		}
		if mem, ret := h.GetMemoryInfo(); ret == nvml.SUCCESS {
			d.MemoryTotal, d.MemoryUsed = mem.Total, mem.Used
		} else {
			problems = append(problems, &nvmlError{op: "memory info", ret: ret})
		}
		if cur, _, ret := h.GetMigMode(); ret == nvml.SUCCESS {
			d.MIGEnabled = cur == nvml.DEVICE_MIG_ENABLE
		}
		if len(problems) > 0 {
			d.Healthy = false
			d.HealthReason = errors.Join(problems...).Error()
		}
		devs = append(devs, d)
	}
	return devs, errs
}

// cString converts a NUL-terminated C char array to a string.
func cString[T ~int8 | ~uint8](b []T) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// sample is one reading of a device's utilization and memory.
type sample struct {
	util      int
	memUsed   uint64
	memTotal  uint64
	healthErr error
}

// readSample queries utilization and memory of the device with the given UUID. NVML's
// ERROR_NOT_SUPPORTED leaves a value unknown; a lost GPU or an unknown error marks it unhealthy.
func readSample(lib nvml.Interface, uuid string) sample {
	s := sample{util: -1}
	h, ret := lib.DeviceGetHandleByUUID(uuid)
	if ret != nvml.SUCCESS {
		s.healthErr = &nvmlError{op: "handle", ret: ret}
		return s
	}
	if u, ret := h.GetUtilizationRates(); ret == nvml.SUCCESS {
		s.util = int(u.Gpu)
	} else if fatal(ret) {
		s.healthErr = &nvmlError{op: "utilization", ret: ret}
		return s
	}
	if m, ret := h.GetMemoryInfo(); ret == nvml.SUCCESS {
		s.memUsed, s.memTotal = m.Used, m.Total
	} else if fatal(ret) {
		s.healthErr = &nvmlError{op: "memory info", ret: ret}
	}
	return s
}

// fatal reports whether a return code means the device itself is failing.
func fatal(r nvml.Return) bool {
	switch r {
	case nvml.ERROR_GPU_IS_LOST, nvml.ERROR_UNKNOWN, nvml.ERROR_NOT_FOUND, nvml.ERROR_CORRUPTED_INFOROM, nvml.ERROR_RESET_REQUIRED:
		return true
	}
	return false
}
