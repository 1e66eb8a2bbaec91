// Package tasklog is the log binary of kfp-box's containerd tasks: containerd's shim starts
// it with the task's stdout and stderr pipes, and it appends each line to the task's log file
// as "<RFC3339Nano> stdout|stderr <text>". It is tiny and has no dependencies beyond the
// standard library, so that the static kfp-box-init can carry it: the shim starts one per
// task and its start-up time is on every task's critical path.
package tasklog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Command is the first argument the containerd shim passes to the log binary (the
// kfp-box executable by default). The CLI must route `kfp-box containerd-logger LOGPATH`
// to Main; tests do the same in TestMain.
const Command = "containerd-logger"

// TimeLayout is the timestamp of every log line (RFC 3339 with nanoseconds, fixed width).
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// maxLogLine splits longer lines so that one line never holds unbounded memory.
const maxLogLine = 256 << 10

// IsInvocation reports whether args (os.Args) are those of a shim-started log binary.
func IsInvocation(args []string) bool {
	return len(args) == 3 && args[1] == Command && os.Getenv("CONTAINER_ID") != ""
}

// Main runs the log binary that containerd's shim starts for each task (its "binary"
// log URI): the task's stdout arrives on fd 3, its stderr on fd 4, and closing fd 5 tells the
// shim we are ready. Every line is appended to logPath as "<time> stdout|stderr <text>".
//
// The shim owns this process, so logs keep flowing while kfp-box itself restarts. The shim
// closes the pipes when the task is deleted and then waits for this process to exit, which
// is how Wait knows the log is complete. It returns the process exit code.
func Main(logPath string) int {
	// The shim sends SIGTERM after closing the pipes; keep draining until EOF instead.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	stdout, stderr, ready := os.NewFile(3, "stdout"), os.NewFile(4, "stderr"), os.NewFile(5, "ready")
	if stdout == nil || stderr == nil {
		fmt.Fprintln(os.Stderr, "kfp-box logger: fds 3 and 4 are not open")
		return 2
	}
	// Ready at once: the shim waits for this before it creates the task, and the pipes
	// buffer whatever the task writes while the file is being opened.
	if ready != nil {
		_ = ready.Close()
	}
	err := os.MkdirAll(filepath.Dir(logPath), 0o755)
	var out *os.File
	if err == nil {
		out, err = os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	}
	if err != nil {
		// Drain so the task never blocks on a full pipe, and say why in the shim's log.
		fmt.Fprintf(os.Stderr, "kfp-box logger: %v\n", err)
		out = nil
	}
	lw := &lineWriter{out: out}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); lw.copyLines(stdout, "stdout") }()
	go func() { defer wg.Done(); lw.copyLines(stderr, "stderr") }()
	wg.Wait()
	if out != nil {
		if err := out.Close(); err != nil {
			return 1
		}
	}
	return 0
}

// lineWriter appends timestamped lines from several streams to one file.
type lineWriter struct {
	mu  sync.Mutex
	out io.Writer
	buf []byte
}

// copyLines reads r line by line until EOF and writes each line with its stream name.
func (w *lineWriter) copyLines(r io.Reader, stream string) {
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(line) >= maxLogLine {
				w.write(stream, line)
				line = line[:0]
			}
			continue
		}
		if len(line) > 0 {
			w.write(stream, line)
			line = line[:0]
		}
		if err != nil {
			return
		}
	}
}

// write appends one line, as a single write so concurrent streams never interleave.
func (w *lineWriter) write(stream string, text []byte) {
	if n := len(text); n > 0 && text[n-1] == '\n' {
		text = text[:n-1]
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.out == nil {
		return
	}
	w.buf = w.buf[:0]
	w.buf = time.Now().UTC().AppendFormat(w.buf, TimeLayout)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, stream...)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, text...)
	w.buf = append(w.buf, '\n')
	_, _ = w.out.Write(w.buf)
}
