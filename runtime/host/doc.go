// Package host is the "host" runtime backend: it runs a task's argv directly on this
// machine, without images, each task under a small shim process in a private mount
// namespace.
//
// # Shim
//
// Start re-executes kfp-box's own binary (or Config["shim"]) as a shim, detached in its own
// session; a spare shim is kept ready so that this exec is off Start's path. The shim reads
// the task's spec.json, sets up the task's own mount namespace (a recursive slave of the
// host's; bind
// mounts, creating missing targets such as /minio/<bucket>/... on tmpfs copies so nothing
// appears on the host), applies cgroup limits, starts the task in its own process group,
// writes stdout and stderr to TaskSpec.LogPath as timestamped lines and, when the task
// exits, records exit.json. Shims outlive kfp-box, so a restarted kfp-box re-adopts running
// tasks with Lookup and reads the exit of tasks that ended while it was down.
//
// The shim starts from this package's init (so that the packages initialized after it
// never are). ShimMain is the explicit entry for main (cmd/kfp-box) and TestMain: it
// returns false in a normal process and never returns in a shim.
//
// Config keys: "shim" (ConfigShim) names another shim binary; "mount_namespaces"
// (ConfigMountNamespaces) "false" turns namespaces off, as happens anyway without root:
// tasks with mounts are then refused with runtime.ErrInvalid.
//
// # State
//
// Everything lives in files, one directory per task:
//
//	$DATA/host/tasks/<id>/spec.json   the TaskSpec (written by Start)
//	                      state.json  shim and task pids with start times (written by the shim)
//	                      kill.json   the grace period of the latest Kill
//	                      exit.json   the ExitStatus (written atomically by the shim)
//	                      shim.log    the shim's own diagnostics
//	                      mnt/        mount points of the shim's tmpfs copies (empty on the host)
//
// The package owns only $DATA/host and the cgroups kfp-box/<id>; it knows nothing about
// KFP, runs or the metadata store.
package host
