package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/storage/meta"
)

// logPoll is how often a followed log is checked for new lines.
const logPoll = 100 * time.Millisecond

// taskLogs serves GET /apis/v2beta1/runs/:id/tasks/:task_id/logs: the task's stdout and
// stderr as text/plain, kept after the run. With follow=true the response streams while
// the task runs and ends when it has finished. timestamps=true keeps the runtime's
// "<time> <stream> " prefix on each line. A cache hit shows the log of the execution it
// reused.
func (s *Server) taskLogs(c *gin.Context) {
	runID, taskID := c.Param("id"), c.Param("task_id")
	x, err := s.d.Meta.GetExecution(c, runID, taskID)
	if err != nil {
		abort(c, fmt.Errorf("task %q of run %q: %w", taskID, runID, ErrNotFound))
		return
	}
	if x.LogPath == "" && x.CacheSource != nil {
		// A cache hit ran nothing: show the log of the execution it reused.
		if src, err := s.d.Meta.GetExecution(c, x.CacheSource.RunID, x.CacheSource.ExecutionID); err == nil {
			x.LogPath = src.LogPath
		}
	}
	follow := c.Query("follow") == "true" || c.Query("follow") == "1"
	raw := c.Query("timestamps") == "true"
	c.Header("Content-Type", "text/plain; charset=utf-8")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Status(http.StatusOK)
	ctx := c.Request.Context()
	w := c.Writer
	var f *os.File
	open := func(path string) {
		if f == nil && path != "" {
			if ff, err := os.Open(path); err == nil {
				f = ff
			}
		}
	}
	open(x.LogPath)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var rd *bufio.Reader
	var partial []byte
	drain := func() error {
		if f == nil {
			return nil
		}
		if rd == nil {
			rd = bufio.NewReaderSize(f, 64<<10)
		}
		for {
			line, err := rd.ReadBytes('\n')
			if len(line) > 0 {
				partial = append(partial, line...)
				if partial[len(partial)-1] == '\n' {
					text := string(partial)
					partial = partial[:0]
					if !raw {
						text = runtime.LogText(strings.TrimSuffix(text, "\n")) + "\n"
					}
					if _, werr := io.WriteString(w, text); werr != nil {
						return werr
					}
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
	if err := drain(); err != nil {
		return
	}
	if follow {
		w.Flush()
	}
	for follow && !meta.IsTerminalExecState(x.State) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(logPoll):
		}
		nx, err := s.d.Meta.GetExecution(context.WithoutCancel(ctx), runID, taskID)
		if err == nil {
			x = nx
		}
		open(x.LogPath)
		if err := drain(); err != nil {
			return
		}
		w.Flush()
	}
	_ = drain()
	if len(partial) > 0 {
		text := string(partial)
		if !raw {
			text = runtime.LogText(text)
		}
		_, _ = io.WriteString(w, text)
	}
	w.Flush()
}
