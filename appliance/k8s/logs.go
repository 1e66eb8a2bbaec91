package k8s

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/kv"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// logTick is how often a followed log's file is read again for new lines while the attempt
// runs; the attempt's end is learnt from the store's watch, not from this tick.
const logTick = 100 * time.Millisecond

// LogOptions are the query parameters of GET .../pods/{name}/log.
type LogOptions struct {
	Follow     bool
	Previous   bool
	Timestamps bool
	TailLines  int64     // -1: all
	Since      time.Time // zero: from the start
	LimitBytes int64     // 0: no limit
}

// ParseLogOptions reads the log query parameters as the API server does.
func ParseLogOptions(q map[string][]string, now time.Time) (LogOptions, error) {
	o := LogOptions{TailLines: -1}
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	var err error
	flag := func(k string) bool {
		v := get(k)
		if v == "" {
			return false
		}
		b, perr := strconv.ParseBool(v)
		if perr != nil && err == nil {
			err = fmt.Errorf("%s=%q: want true or false", k, v)
		}
		return b
	}
	o.Follow, o.Previous, o.Timestamps = flag("follow"), flag("previous"), flag("timestamps")
	if err != nil {
		return o, err
	}
	num := func(k string) (int64, bool, error) {
		v := get(k)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("%s=%q: want a non-negative integer", k, v)
		}
		return n, true, nil
	}
	if n, ok, err := num("tailLines"); err != nil {
		return o, err
	} else if ok {
		o.TailLines = n
	}
	if n, ok, err := num("limitBytes"); err != nil {
		return o, err
	} else if ok {
		if n == 0 {
			return o, errors.New("limitBytes must be greater than 0")
		}
		o.LimitBytes = n
	}
	if n, ok, err := num("sinceSeconds"); err != nil {
		return o, err
	} else if ok {
		if n == 0 {
			return o, errors.New("sinceSeconds must be greater than 0")
		}
		o.Since = now.Add(-time.Duration(n) * time.Second)
	}
	if v := get("sinceTime"); v != "" {
		if !o.Since.IsZero() {
			return o, errors.New("at most one of sinceTime or sinceSeconds may be given")
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return o, fmt.Errorf("sinceTime=%q: want an RFC 3339 time", v)
		}
		o.Since = t
	}
	if c := get("container"); c != "" && c != containerName {
		return o, fmt.Errorf("container %s is not valid for pod: its one container is %s", c, containerName)
	}
	return o, nil
}

// podLog serves GET .../pods/{name}/log from the task's log file: the lines of the pod's
// attempt (or of the attempt before it, with previous), following the file while the
// attempt runs.
func (s *Store) podLog(c *gin.Context, ns, name string) {
	opts, err := ParseLogOptions(c.Request.URL.Query(), time.Now())
	if err != nil {
		badRequest(c, err.Error())
		return
	}
	ctx := c.Request.Context()
	pod, err := s.getPod(ctx, ns, name)
	if err != nil {
		status(c, err)
		return
	}
	runID, execID := pod.Labels[LabelRunID], pod.Labels[LabelExecution]
	n, _ := strconv.Atoi(pod.Labels[LabelAttempt])
	x, err := s.pods.src.Meta.GetExecution(ctx, runID, execID)
	if err != nil {
		status(c, fmt.Errorf("pods %q: %w", name, ErrNotFound))
		return
	}
	path := x.LogPath
	var from, to time.Time
	live := false
	if x.State == meta.ExecCached {
		if x.CacheSource != nil {
			if src, err := s.pods.src.Meta.GetExecution(ctx, x.CacheSource.RunID, x.CacheSource.ExecutionID); err == nil {
				path = src.LogPath
			}
		}
		if opts.Previous {
			badRequest(c, fmt.Sprintf("previous terminated container %q in pod %q not found", containerName, name))
			return
		}
	} else {
		atts := attempts(x)
		i := -1
		for j, a := range atts {
			if a.n == n {
				i = j
			}
		}
		if opts.Previous {
			i--
			if i < 0 {
				badRequest(c, fmt.Sprintf("previous terminated container %q in pod %q not found", containerName, name))
				return
			}
		}
		if i < 0 {
			status(c, fmt.Errorf("pods %q: %w", name, ErrNotFound))
			return
		}
		a := atts[i]
		if a.state == "" && a.started.IsZero() {
			badRequest(c, fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", containerName, name))
			return
		}
		from = a.queued
		if i+1 < len(atts) {
			to = atts[i+1].queued
		}
		live = a.state == "" && i == len(atts)-1
	}
	if !opts.Since.IsZero() && opts.Since.After(from) {
		from = opts.Since
	}
	var events <-chan kv.Event
	if opts.Follow && live {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		events, _ = s.kv.Watch(wctx, []byte("/executions/"+runID+"/"+execID), 0)
		// The attempt may have ended between the read above and the watch.
		if nx, err := s.pods.src.Meta.GetExecution(ctx, runID, execID); err == nil && !attemptLive(nx, n) {
			live = false
		}
	}
	c.Header("Content-Type", "text/plain; charset=utf-8")
	c.Status(http.StatusOK)
	w := &logWriter{w: c.Writer, limit: opts.LimitBytes}
	r := &logReader{from: from, to: to, timestamps: opts.Timestamps}
	if f, err := os.Open(path); err == nil {
		r.f = f
		defer f.Close()
	}
	if err := r.tail(w, opts.TailLines); err != nil {
		return
	}
	c.Writer.Flush()
	if !opts.Follow || !live {
		return
	}
	tick := time.NewTicker(logTick)
	defer tick.Stop()
	for live {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case ev, ok := <-events:
			if !ok {
				events = nil // fell behind: the execution is read on each tick instead
				break
			}
			var nx meta.Execution
			if ev.Type == kv.EventDelete || json.Unmarshal(ev.Value, &nx) != nil || !attemptLive(&nx, n) {
				live = false
			}
		}
		if events == nil && live {
			if nx, err := s.pods.src.Meta.GetExecution(ctx, runID, execID); err != nil || !attemptLive(nx, n) {
				live = false
			}
		}
		if r.f == nil {
			if f, err := os.Open(path); err == nil {
				r.f = f
				defer f.Close()
			}
		}
		if err := r.copy(w); err != nil {
			return
		}
		c.Writer.Flush()
	}
	_ = r.flushPartial(w)
	c.Writer.Flush()
}

// attemptLive says whether attempt n of x is still queued or running.
func attemptLive(x *meta.Execution, n int) bool {
	return x.Attempt == n && (x.State == meta.ExecQueued || x.State == meta.ExecRunning)
}

// logReader reads a task log file ("<time> <stdout|stderr> <text>" lines) and writes the
// lines stamped within [from, to) as kubectl shows them.
type logReader struct {
	f          *os.File
	rd         *bufio.Reader
	partial    []byte
	from, to   time.Time
	timestamps bool
}

// line formats one complete log line, or says it is out of range.
func (r *logReader) line(raw string) (string, bool) {
	raw = strings.TrimSuffix(raw, "\n")
	ts, _, _ := strings.Cut(raw, " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err == nil {
		if !r.from.IsZero() && t.Before(r.from) || !r.to.IsZero() && !t.Before(r.to) {
			return "", false
		}
	}
	text := runtime.LogText(raw)
	if r.timestamps && err == nil {
		text = t.UTC().Format(time.RFC3339Nano) + " " + text
	}
	return text + "\n", true
}

// next returns the next complete line in range, io.EOF at the end of what is written.
func (r *logReader) next() (string, error) {
	if r.f == nil {
		return "", io.EOF
	}
	if r.rd == nil {
		r.rd = bufio.NewReaderSize(r.f, 64<<10)
	}
	for {
		b, err := r.rd.ReadBytes('\n')
		r.partial = append(r.partial, b...)
		if err != nil {
			return "", err // a partial line waits for its end
		}
		raw := string(r.partial)
		r.partial = r.partial[:0]
		if s, ok := r.line(raw); ok {
			return s, nil
		}
	}
}

// tail writes the last n lines in range (n < 0: all) of what is written so far.
func (r *logReader) tail(w io.Writer, n int64) error {
	if n < 0 {
		return r.copy(w)
	}
	ring := make([]string, 0, min(n, 4096))
	var start int
	for {
		s, err := r.next()
		if err != nil {
			break
		}
		if n == 0 {
			continue
		}
		if int64(len(ring)) < n {
			ring = append(ring, s)
		} else {
			ring[start] = s
			start = (start + 1) % len(ring)
		}
	}
	for i := range ring {
		if _, err := io.WriteString(w, ring[(start+i)%len(ring)]); err != nil {
			return err
		}
	}
	return nil
}

// copy writes every complete line in range written since the last call.
func (r *logReader) copy(w io.Writer) error {
	for {
		s, err := r.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, s); err != nil {
			return err
		}
	}
}

// flushPartial writes a last line without its newline once the attempt is over.
func (r *logReader) flushPartial(w io.Writer) error {
	if len(r.partial) == 0 {
		return nil
	}
	s, ok := r.line(string(r.partial))
	r.partial = r.partial[:0]
	if !ok {
		return nil
	}
	_, err := io.WriteString(w, s)
	return err
}

// logWriter stops after limit bytes (0: no limit), as limitBytes does.
type logWriter struct {
	w     io.Writer
	limit int64
	n     int64
}

var errLimit = errors.New("limitBytes reached")

func (l *logWriter) Write(p []byte) (int, error) {
	if l.limit > 0 && l.n+int64(len(p)) > l.limit {
		p = p[:l.limit-l.n]
		n, _ := l.w.Write(p)
		l.n += int64(n)
		return n, errLimit
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}
