package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newLogsCmd) }

// logsPoll is how often `logs -f` of a whole run looks for tasks that started since.
const logsPoll = time.Second

// newLogsCmd is `kfp-box logs RUN_ID [TASK]`, also reachable as `kfp-box run logs`.
func newLogsCmd() *cobra.Command {
	var follow, timestamps bool
	var only []string
	cmd := &cobra.Command{
		Use:   "logs RUN_ID [TASK]",
		Short: "Print the logs of a run's tasks, each line prefixed by its task (kept after the run); -f follows",
		Long: `Print the logs of a run's container tasks, each line prefixed with "[TASK] ", tasks in
the order they were created. --task TASK (repeatable) narrows the output to those tasks; a
single TASK argument, or a single --task, prints that task's log as it is, without a prefix.
TASK is a task name as shown by 'kfp-box run get' (NAME#ID for repeated names) or a task id.
RUN_ID may be any prefix of the id that only one run has.

With -f the logs stream while the tasks run, lines of different tasks interleaved as they
come; tasks that start later are picked up, and the command ends when the run has finished
and every log has been read. A cache hit shows the log of the execution it reused.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newAPIClient(cmd)
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if len(args) == 2 {
				only = append(only, args[1])
			}
			runID, err := c.resolveRunID(ctx, args[0])
			if err != nil {
				return err
			}
			q := url.Values{}
			if follow {
				q.Set("follow", "true")
			}
			if timestamps {
				q.Set("timestamps", "true")
			}
			l := &runLogs{c: c, runID: runID, query: q.Encode(), out: cmd.OutOrStdout(), only: only, prefix: len(only) != 1}
			if follow {
				return l.follow(ctx)
			}
			return l.print(ctx)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream the logs while the tasks run")
	cmd.Flags().BoolVar(&timestamps, "timestamps", false, "keep each line's timestamp and stream tag")
	cmd.Flags().StringArrayVar(&only, "task", nil, "only this task's log: a name or a task id (repeatable)")
	return cmd
}

// runLogs prints the logs of one run's tasks.
type runLogs struct {
	c      *apiClient
	runID  string
	query  string
	out    io.Writer
	only   []string // task names or ids; empty means every container task
	prefix bool     // prefix each line with its task's name

	mu sync.Mutex // serialises lines written to out
}

// tasks reads the run and returns the selected tasks with their names, in creation order,
// and whether the run has finished.
func (l *runLogs) tasks(ctx context.Context) ([]apiTask, map[string]string, bool, error) {
	var r apiRun
	if err := l.c.do(ctx, http.MethodGet, "/runs/"+url.PathEscape(l.runID), nil, &r); err != nil {
		return nil, nil, false, apiExit(err)
	}
	var all []apiTask
	if r.RunDetails != nil {
		all = shownTasks(r.RunDetails.TaskDetails)
	}
	names := taskNames(all)
	var containers []apiTask
	var known []string
	for _, t := range all {
		if t.Kind == "CONTAINER" {
			containers = append(containers, t)
			known = append(known, names[t.TaskID])
		}
	}
	if len(l.only) == 0 {
		return containers, names, terminal(r.State), nil
	}
	var picked []apiTask
	for _, want := range l.only {
		found := false
		for _, t := range all {
			if t.TaskID == want || t.DisplayName == want || names[t.TaskID] == want {
				picked = append(picked, t)
				found = true
			}
		}
		if !found {
			sort.Strings(known)
			return nil, nil, false, usageErr("run %s has no task %q (container tasks: %s)", l.runID, want, strings.Join(known, ", "))
		}
	}
	return picked, names, terminal(r.State), nil
}

// print writes each selected task's whole log, one task after another.
func (l *runLogs) print(ctx context.Context) error {
	tasks, names, _, err := l.tasks(ctx)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if err := l.copy(ctx, t, names[t.TaskID]); err != nil {
			return err
		}
	}
	return nil
}

// follow streams the selected tasks' logs at once, starting a stream for each task as it
// appears, until the run has finished and every stream has ended.
func (l *runLogs) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for {
		tasks, names, done, err := l.tasks(ctx)
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		for _, t := range tasks {
			if started[t.TaskID] {
				continue
			}
			started[t.TaskID] = true
			wg.Add(1)
			go func(t apiTask, name string) {
				defer wg.Done()
				if err := l.copy(ctx, t, name); err != nil && ctx.Err() == nil {
					select {
					case errs <- err:
					default:
					}
					cancel()
				}
			}(t, names[t.TaskID])
		}
		// A named task is streamed to its end by the server; only a whole run needs polls
		// for tasks that start later.
		if done || len(l.only) > 0 {
			wg.Wait()
			select {
			case err := <-errs:
				return err
			default:
			}
			return ctx.Err()
		}
		select {
		case err := <-errs:
			wg.Wait()
			return err
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		case <-time.After(logsPoll):
		}
	}
}

// copy writes one task's log to out, each line prefixed when l.prefix is set.
func (l *runLogs) copy(ctx context.Context, t apiTask, name string) error {
	resp, err := l.c.stream(ctx, fmt.Sprintf("/runs/%s/tasks/%s/logs?%s", url.PathEscape(l.runID), url.PathEscape(t.TaskID), l.query))
	if err != nil {
		return apiExit(err)
	}
	defer resp.Body.Close()
	if !l.prefix {
		l.mu.Lock()
		defer l.mu.Unlock()
		_, err = io.Copy(l.out, resp.Body)
		return err
	}
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	pre := "[" + name + "] "
	for {
		line, err := rd.ReadString('\n')
		if line != "" {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			l.mu.Lock()
			_, werr := io.WriteString(l.out, pre+line)
			l.mu.Unlock()
			if werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
