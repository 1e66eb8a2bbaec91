package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

func init() { register(newLogsCmd) }

// newLogsCmd is `kfp-box logs RUN_ID [TASK]`, also reachable as `kfp-box run logs`.
func newLogsCmd() *cobra.Command {
	var follow, timestamps bool
	cmd := &cobra.Command{
		Use:   "logs RUN_ID [TASK]",
		Short: "Print a task's log (kept after the run); -f follows a running task",
		Long: `Print the log of one task of a run. TASK is a task name as shown by 'kfp-box run get'
or a task id; it may be left out when the run has exactly one container task.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newAPIClient(cmd)
			ctx := cmd.Context()
			task := ""
			if len(args) == 2 {
				task = args[1]
			}
			taskID, err := findTask(ctx, c, args[0], task)
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
			resp, err := c.stream(ctx, fmt.Sprintf("/runs/%s/tasks/%s/logs?%s", url.PathEscape(args[0]), url.PathEscape(taskID), q.Encode()))
			if err != nil {
				return apiExit(err)
			}
			defer resp.Body.Close()
			_, err = io.Copy(cmd.OutOrStdout(), resp.Body)
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream the log while the task runs")
	cmd.Flags().BoolVar(&timestamps, "timestamps", false, "keep each line's timestamp and stream tag")
	return cmd
}

// findTask resolves a task name or id to a task id of the run.
func findTask(ctx context.Context, c *apiClient, runID, task string) (string, error) {
	var r struct {
		RunDetails struct {
			TaskDetails []struct {
				TaskID      string `json:"task_id"`
				DisplayName string `json:"display_name"`
				Kind        string `json:"kind"`
			} `json:"task_details"`
		} `json:"run_details"`
	}
	if err := c.do(ctx, http.MethodGet, "/runs/"+url.PathEscape(runID), nil, &r); err != nil {
		return "", apiExit(err)
	}
	var names, containers []string
	for _, d := range r.RunDetails.TaskDetails {
		if task != "" && (d.TaskID == task || d.DisplayName == task) {
			return d.TaskID, nil
		}
		if d.Kind == "CONTAINER" {
			containers = append(containers, d.TaskID)
			names = append(names, d.DisplayName)
		}
	}
	if task == "" && len(containers) == 1 {
		return containers[0], nil
	}
	if task == "" {
		return "", usageErr("run %s has %d container tasks; name one: %s", runID, len(containers), strings.Join(names, ", "))
	}
	return "", usageErr("run %s has no task %q (tasks: %s)", runID, task, strings.Join(names, ", "))
}
