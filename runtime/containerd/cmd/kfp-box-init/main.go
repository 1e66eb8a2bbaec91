// Command kfp-box-init is the first process of every kfp-box container, like docker's
// --init: it starts the task's argv as its only child, forwards every signal it receives to
// that child, reaps orphaned zombies, and exits with the child's status (128+signal when the
// child died of a signal).
//
// It exists because the kernel ignores SIGTERM for a PID namespace's init process unless
// that process installed a handler, so a task such as `sleep 600` run as PID 1 would only
// die of SIGKILL after the whole grace period. It must be built static (CGO_ENABLED=0): it
// is bind-mounted into images that may have no C library at all.
//
// It is also each task's log binary (see package tasklog): containerd's shim starts it as
// `kfp-box-init containerd-logger LOGPATH`; a tiny static binary starts faster than kfp-box.
//
// Usage: kfp-box-init [--] ARGV...
//
//	kfp-box-init containerd-logger LOGPATH   (started by the shim)
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/kfp-box/kfp-box/runtime/containerd/tasklog"
)

func main() {
	if tasklog.IsInvocation(os.Args) {
		os.Exit(tasklog.Main(os.Args[2]))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "kfp-box-init: no command given")
		return 2
	}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs) // every signal, before the child exists, so no SIGCHLD is missed
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "kfp-box-init: %v\n", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return 127
		}
		return 126
	}
	child := cmd.Process.Pid
	for sig := range sigs {
		s, ok := sig.(syscall.Signal)
		if !ok {
			continue
		}
		switch s {
		case syscall.SIGCHLD:
			if code, done := reap(child); done {
				return code
			}
		case syscall.SIGURG: // the Go runtime's own preemption signal
		default:
			_ = syscall.Kill(child, s)
		}
	}
	return 1
}

// reap collects every exited child without blocking; it reports the main child's exit
// status once the main child is among them.
func reap(child int) (code int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return code, done
		}
		if pid != child {
			continue
		}
		done = true
		switch {
		case ws.Exited():
			code = ws.ExitStatus()
		case ws.Signaled():
			code = 128 + int(ws.Signal())
		default:
			code = 1
		}
	}
}
