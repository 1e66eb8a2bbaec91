// Package host is the "host" runtime backend: it runs a task's argv directly on this
// machine, without images, each task under a small shim process in a private mount
// namespace.
//
// # Shim
//
// One long-lived shim process per data dir starts and supervises every task: kfp-box's own
// binary (or Config["shim"]) re-executed, detached in its own session, listening on
// $DATA/host/shim/<pid>.sock. For each task it reads the task's spec.json and, on a thread
// of its own, makes the task's mount namespace (a recursive slave of the host's; bind
// mounts, creating missing targets such as /minio/<bucket>/... on tmpfs copies so nothing
// appears on the host), applies cgroup limits, and forks the task from that thread into
// its own process group; then it writes stdout and stderr to TaskSpec.LogPath as
// timestamped lines and, when the task exits, records exit.json. Starting a task is thus a
// fork from a running process, not an exec of a new Go program per task.
//
// The shim outlives kfp-box, so a restarted kfp-box re-adopts running tasks with Lookup and
// reads the exit of tasks that ended while it was down. A Runtime attaches to the shim for
// as long as it is open; the shim exits once nothing is attached and no task runs. A
// Runtime finding a shim of another binary (kfp-box was upgraded or rebuilt) retires it:
// it runs its tasks to their end but takes no new ones, and a new shim takes over.
//
// Requests are lines on a unix socket, one per connection: "attach", "start <dir>" (the
// answer "ok", then "exited" once the exit is recorded), "kill <dir>" (the grace period in
// kill.json), "wait <dir>" and "status <dir>". The shim starts only tasks whose requester
// is still connected once the task is registered, so Lookup forgets a task that has a spec
// but no state when no shim runs it: its Start died with the kfp-box that called it.
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
//	$DATA/host/shim/lock              flock(2)ed by the shim that takes new tasks
//	                current           that shim's pid
//	                <pid>.sock        each live shim's socket
//	                shim.log          the shims' own diagnostics
//	$DATA/host/tasks/<id>/spec.json   the TaskSpec (written by Start)
//	                      state.json  shim and task pids with start times (written by the shim)
//	                      kill.json   the grace period of the latest Kill
//	                      exit.json   the ExitStatus (written atomically by the shim)
//	                      .exit.json.reserve  exit.json's space, taken before the task runs
//	                      shim.log    the shim's diagnostics about this task
//	                      mnt/        mount points of the shim's tmpfs copies (empty on the host)
//
// State files are 0600 (a spec holds the task's environment, secrets included). A full disk
// is reported as such: Start fails with an error wrapping ENOSPC, the space of a task's exit
// record is reserved before it runs so that its exit is recorded whatever the disk does
// meanwhile, a task's output on a full disk is read and dropped (the exit message says the
// log is incomplete) rather than left to block the task, and the shim rewrites its
// "current" file in place, so that kfp-box still starts on a full disk to serve reads.
//
// The package owns only $DATA/host and the cgroups kfp-box/<id>; it knows nothing about
// KFP, runs or the metadata store.
package host
