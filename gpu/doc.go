// Package gpu owns the box's NVIDIA GPUs: discovery through NVML, periodic sampling and
// health, exclusive allocation to tasks, and the injection a runtime applies to give a task
// its GPUs. It never starts containers and knows nothing of KFP runs or the metadata store;
// the engine calls it and records leases in its own execution records.
//
// # Discovery
//
// New initialises NVML (github.com/NVIDIA/go-nvml, pinned at v0.13.0-1, loaded with dlopen
// so the binary runs on machines without a driver) and reads every device once: index, UUID,
// name, minor number, memory, MIG mode, and the system's driver and CUDA versions. When
// libnvidia-ml.so.1 is absent or the driver is not loaded, New still succeeds: the Manager
// has no devices, Unavailable returns the reason, and one log line says it. Start begins a
// sampler that reads utilization and memory every SampleInterval, and a watcher of NVML's
// critical XID events (XIDs that a task's own faults cause, such as 13, 31, 43, 45, 68 and 109,
// are ignored). A device NVML reports lost, failing or hit by a critical XID becomes unhealthy:
// it keeps its holder but gets no new lease, and waiting requests that can no longer be met
// fail with ErrUnsatisfiable. GPUs in MIG mode are listed but not
// allocated: CUDA sees only their slices, which kfp-box does not schedule.
//
// # Allocation
//
// Allocate grants whole GPUs exclusively by UUID, Count per request, in arrival order. The
// queue is walked front to back on every change (request, release, cancellation, health
// change); a request that cannot be granted yet reserves every usable GPU it matches, so a
// later request never takes one of those GPUs ahead of it. On identical GPUs this is strict
// first come first served: a request for three GPUs is not starved by a stream of requests
// for one, and no request is overtaken at all. Requests for disjoint models (a V100 request
// and an A100 request) do not block each other. A waiting request's reason (free GPUs, their
// holders, requests ahead) goes to Request.OnWait for the task's details. Requests that can
// never be met fail at once with ErrUnsatisfiable and a sentence the engine shows on the
// pending task. Lease.Release is idempotent; the engine calls it on every terminal path, and
// after a restart of kfp-box it re-adopts the GPUs of still-running tasks with Restore
// (and frees those of vanished tasks with ReleaseOwner) before new requests arrive.
//
// Accelerator constraints come from the IR's accelerator.resourceType / type
// (AcceleratorFromIR) or from node selector labels (AcceleratorFromNodeSelector) and are
// matched against NVML names by model tokens (ParseAccelerator): NVIDIA_TESLA_V100 matches
// "Tesla V100-SXM2-16GB", NVIDIA_A100_80GB needs an 80 GB A100, nvidia.com/gpu matches any.
//
// # Injection
//
// InjectionFor fills runtime.GPUs: NVIDIA_VISIBLE_DEVICES and CUDA_VISIBLE_DEVICES list the
// UUIDs for every runtime; the host runtime gets only that. A container runtime gets CDI
// names (nvidia.com/gpu=UUID or =index) when a CDI spec in /etc/cdi or /var/run/cdi names the
// GPUs, else the device nodes (/dev/nvidiaN, nvidiactl, nvidia-uvm, nvidia-uvm-tools, "rwm")
// and read-only bind mounts of the driver's compute and utility libraries, at their host
// paths and the paths of their sonames, plus nvidia-smi at /usr/bin/nvidia-smi. All files
// are looked up through an fs.FS of the host root so tests run on fstest.MapFS.
//
// # Surfaces
//
// Devices (with each GPU's holder) feeds the API endpoint GET /apis/v2beta1/gpus and
// `kfp-box gpu list`; Collector exports Prometheus gauges per GPU.
//
// Tests use go-nvml's dgxa100 mock (8 A100s). Tests that need a real GPU are behind the `gpu`
// build tag and call gputest.RequireGPU.
package gpu
