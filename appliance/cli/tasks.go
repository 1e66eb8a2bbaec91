package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// apiTask is the part of a run's task detail the CLI shows.
type apiTask struct {
	TaskID       string `json:"task_id"`
	DisplayName  string `json:"display_name"`
	State        string `json:"state"`
	Kind         string `json:"kind"`
	CreateTime   string `json:"create_time"`
	StartTime    string `json:"start_time"`
	EndTime      string `json:"end_time"`
	ParentTaskID string `json:"parent_task_id"`
	CacheSource  *struct {
		RunID    string `json:"run_id"`
		TaskName string `json:"task_name"`
	} `json:"cache_source"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// taskKindRoot is the task standing for the whole run.
const taskKindRoot = "ROOT"

// cachedFrom says where a cache hit's outputs came from ("-" for tasks that ran).
func (t apiTask) cachedFrom() string {
	if t.CacheSource == nil || t.CacheSource.RunID == "" {
		return "-"
	}
	s := "run " + t.CacheSource.RunID
	if t.CacheSource.TaskName != "" {
		s += " (task " + t.CacheSource.TaskName + ")"
	}
	return s
}

// duration is how long a task ran: to its end, or so far while it runs; "-" for tasks that
// did not start and for cache hits (they ran nothing).
func (t apiTask) duration(now time.Time) string {
	if t.CacheSource != nil && t.CacheSource.RunID != "" {
		return "-"
	}
	return span(t.StartTime, t.EndTime, now)
}

// span renders the time from start to end (or to now when end is unset) for tables.
func span(start, end string, now time.Time) string {
	s, err := time.Parse(time.RFC3339Nano, start)
	if err != nil || s.Unix() <= 0 {
		return "-"
	}
	e, err := time.Parse(time.RFC3339Nano, end)
	if err != nil || e.Unix() <= 0 {
		e = now
	}
	d := e.Sub(s)
	if d < 0 {
		return "-"
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// taskNames gives each task the name the CLI shows: its display name, with a short task id
// added where several tasks share one (loop iterations).
func taskNames(tasks []apiTask) map[string]string {
	count := map[string]int{}
	for _, t := range tasks {
		count[t.DisplayName]++
	}
	names := make(map[string]string, len(tasks))
	for _, t := range tasks {
		n := t.DisplayName
		if n == "" {
			n = t.TaskID
		}
		if count[t.DisplayName] > 1 || t.DisplayName == "" {
			id := t.TaskID
			if len(id) > 8 {
				id = id[:8]
			}
			if t.DisplayName != "" {
				n = t.DisplayName + "#" + id
			}
		}
		names[t.TaskID] = n
	}
	return names
}

// shownTasks are the tasks a table shows, in the order they were created: every task but
// the run's root.
func shownTasks(tasks []apiTask) []apiTask {
	out := make([]apiTask, 0, len(tasks))
	for _, t := range tasks {
		if t.Kind != taskKindRoot {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreateTime < out[j].CreateTime })
	return out
}

// printTaskTable writes the tasks with their state, duration and, for cache hits, the run
// whose outputs they reused.
func printTaskTable(w io.Writer, tasks []apiTask, now time.Time) error {
	shown := shownTasks(tasks)
	names := taskNames(shown)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATE\tDURATION\tCACHED FROM")
	for _, t := range shown {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", names[t.TaskID], t.State, t.duration(now), t.cachedFrom())
	}
	return tw.Flush()
}

// taskWatcher prints each task's state changes between polls of a run.
type taskWatcher struct {
	w    io.Writer
	seen map[string]string // task id -> last state printed
}

func newTaskWatcher(w io.Writer) *taskWatcher {
	return &taskWatcher{w: w, seen: map[string]string{}}
}

// update prints one line for each task whose state changed since the last call.
func (tw *taskWatcher) update(tasks []apiTask, now time.Time) {
	shown := shownTasks(tasks)
	names := taskNames(shown)
	for _, t := range shown {
		if t.State == "" || tw.seen[t.TaskID] == t.State {
			continue
		}
		tw.seen[t.TaskID] = t.State
		line := fmt.Sprintf("%s  task %s  %s", now.Format("15:04:05"), names[t.TaskID], t.State)
		if from := t.cachedFrom(); from != "-" {
			line += "  (cached from " + from + ")"
		}
		if t.Error != nil && t.Error.Message != "" && terminal(t.State) {
			line += ": " + firstLine(strings.TrimSpace(t.Error.Message))
		}
		fmt.Fprintln(tw.w, line)
	}
}
