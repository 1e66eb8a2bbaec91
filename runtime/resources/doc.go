// Package resources parses the resource amounts of a KFP executor: Kubernetes quantity
// strings ("500m", "1.5", "512Mi", "1G", "2e3") as KFP's IR carries them in
// resourceCpuLimit and resourceMemoryLimit, and the deprecated float fields (cpuLimit in
// cores, memoryLimit in gigabytes, which the SDK formats as "%vG").
//
// It turns them into the units of runtime.Resources: cores as a float64 and bytes as an
// int64. It knows nothing about tasks, runtimes or the IR's types; the engine calls it.
package resources
