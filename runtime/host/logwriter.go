package host

import (
	"bufio"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// logTimeFormat is RFC 3339 with a fixed nine-digit fraction, so log lines sort as text.
const logTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// maxLogLine is the longest line written as one; longer output is split into several lines.
const maxLogLine = 64 << 10

// logWriter writes the lines of a task's streams into one file, each line as
// "<time> <stream> <text>\n", one write(2) per line so a reader following the file never
// sees half a line from two streams interleaved.
type logWriter struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	buf []byte
	err error // the first failed write; later lines are dropped
}

func newLogWriter(w io.Writer) *logWriter {
	return &logWriter{w: w, now: time.Now}
}

// copyStream reads r until EOF and writes every line tagged with stream. A final line
// without a newline is written as a line. It returns nil at EOF or when r is closed, and
// the read error otherwise. When the log cannot be written (a full disk) it goes on
// reading and drops the lines, so that the task never blocks on a full pipe; writeErr
// reports the first failure.
func (l *logWriter) copyStream(r io.Reader, stream string) error {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			l.writeLine(stream, line)
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF), errors.Is(err, os.ErrClosed):
			return nil
		default:
			return err
		}
	}
}

// writeErr returns the first failed write, or nil.
func (l *logWriter) writeErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// writeLine writes one log line; text may end in a newline, which is dropped. After a
// failed write it drops every line and returns that failure.
func (l *logWriter) writeLine(stream string, text []byte) error {
	if n := len(text); n > 0 && text[n-1] == '\n' {
		text = text[:n-1]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	b := l.now().UTC().AppendFormat(l.buf[:0], logTimeFormat)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ')
	b = append(b, text...)
	b = append(b, '\n')
	l.buf = b
	if _, err := l.w.Write(b); err != nil {
		l.err = err
	}
	return l.err
}
