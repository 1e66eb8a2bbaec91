// Package containerd is kfp-box's container backend: one containerd container per task,
// in the "kfp-box" namespace, run by runc through containerd's runc v2 shim.
//
// It owns: connecting to containerd (an explicit socket, the system socket, or a child
// containerd it starts and supervises under $DATA/containerd, see Daemon); turning a
// runtime.TaskSpec into an OCI spec (argv, env, working directory, bind mounts, user and
// group, CPU and memory limits, /dev/shm size, GPU devices by CDI or device nodes, the host
// network, no new privileges, and the static kfp-box-init as PID 1); task logs, written by a
// log binary the shim owns (LoggerMain) so they survive restarts of kfp-box; the task
// lifecycle (start, wait, kill with a grace period, delete with snapshot cleanup, and
// re-adoption by Lookup and List); and images (import, list, remove, pull, pull policy).
//
// Exit statuses are recorded in the container's labels before the containerd task is
// deleted, so an exit seen once is never lost across restarts.
//
// It must not know about KFP, runs or the metadata store: the engine builds the TaskSpec.
// Docs: docs/adr/004-containerd-runtime.md.
package containerd
