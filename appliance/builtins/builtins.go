// Package builtins links kfp-box's backends into the binary by importing them for their
// init-time registration, and routes the binary's re-executions (the host runtime's shim, the
// containerd shim's log binary) to their entry points.
package builtins

import (
	"github.com/kfp-box/kfp-box/runtime/containerd" // containerd task runtime
	"github.com/kfp-box/kfp-box/runtime/host"       // host-process task runtime

	_ "github.com/kfp-box/kfp-box/storage/kv/bolt"       // bbolt metadata store
	_ "github.com/kfp-box/kfp-box/storage/kv/kine"       // PostgreSQL/MySQL metadata store through kine
	_ "github.com/kfp-box/kfp-box/storage/objects/local" // embedded object store
	_ "github.com/kfp-box/kfp-box/storage/objects/s3"    // external S3 object store
)

// Reexec runs the binary's helper roles when this process was started as one: the host
// runtime's per-task shim, or the log binary a containerd shim starts for each task. It
// returns handled=false for a normal invocation.
func Reexec(args []string) (code int, handled bool) {
	if host.ShimMain() { // exits the process itself when it is the shim
		return 0, true
	}
	if containerd.IsLoggerInvocation(args) {
		return containerd.LoggerMain(args[2]), true
	}
	return 0, false
}
