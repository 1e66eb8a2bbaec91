package containerd

import "github.com/kfp-box/kfp-box/runtime/containerd/tasklog"

// LoggerCommand is the first argument the shim passes to the log binary:
// `BINARY containerd-logger LOGPATH`. kfp-box-init understands it; when kfp-box itself is
// the log binary (no kfp-box-init installed), the CLI must route it to LoggerMain.
const LoggerCommand = tasklog.Command

// IsLoggerInvocation reports whether args (os.Args) are those of a shim-started log binary.
func IsLoggerInvocation(args []string) bool { return tasklog.IsInvocation(args) }

// LoggerMain runs the log binary for one task and returns the exit code (see tasklog.Main).
func LoggerMain(logPath string) int { return tasklog.Main(logPath) }
