package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance/spec"
)

func init() { register(newRunCmd) }

// runSubcommands lets other files of this package add `run` subcommands (for example logs).
var runSubcommands []func() *cobra.Command

// apiRun is the part of a KFP Run the CLI shows.
type apiRun struct {
	RunID         string `json:"run_id"`
	DisplayName   string `json:"display_name"`
	ExperimentID  string `json:"experiment_id"`
	State         string `json:"state"`
	StorageState  string `json:"storage_state"`
	CreatedAt     string `json:"created_at"`
	FinishedAt    string `json:"finished_at"`
	RuntimeConfig struct {
		Parameters map[string]any `json:"parameters"`
	} `json:"runtime_config"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
	RunDetails *struct {
		Warnings    []string  `json:"warnings"`
		TaskDetails []apiTask `json:"task_details"`
	} `json:"run_details"`
}

// newRunCmd is `kfp-box run`: submit, list and inspect runs.
func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "run", Short: "Submit, list and inspect pipeline runs"}
	cmd.AddCommand(newRunSubmitCmd(), newRunListCmd(), newRunGetCmd())
	for _, f := range runSubcommands {
		cmd.AddCommand(f())
	}
	return cmd
}

func newRunSubmitCmd() *cobra.Command {
	var params []string
	var experiment, name, pipelineRoot, exportFile string
	var watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "submit FILE | --from-export ARCHIVE",
		Short: "Submit a compiled pipeline (.yaml, .json, .zip, .tar.gz), or an exported run again, as a run",
		Long: `Submit a compiled pipeline as a run. Parameters are given as -p key=value and typed by the
pipeline's declared inputs (integers, numbers, booleans, JSON lists and structs). With --watch
the command follows the run, printing each change of the run's and its tasks' states, ends
with a table of the tasks (state, duration, the run a cache hit came from), and exits 1
unless the run succeeded.

With --from-export ARCHIVE (from 'kfp-box run export') the run is reproduced: the same pipeline
spec, parameters and pipeline root, in an experiment of the same name; -p overrides parameters.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if exportFile != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var p *spec.Pipeline
			values := map[string]any{}
			if exportFile != "" {
				m, orig, err := fromExport(exportFile)
				if err != nil {
					return usageErr("--from-export %v", err)
				}
				if p, err = spec.FromJSON(m.PipelineSpec); err != nil {
					return usageErr("--from-export %s: %v", exportFile, err)
				}
				if rc := orig.RuntimeConfig; rc != nil {
					for k, v := range rc.Parameters {
						if v != nil {
							values[k] = v
						}
					}
					if pipelineRoot == "" {
						pipelineRoot = rc.PipelineRoot
					}
				}
				if name == "" {
					name = orig.DisplayName + " (re-run)"
				}
				if experiment == "" && m.Experiment != nil {
					experiment = m.Experiment.DisplayName
				}
			} else {
				data, err := os.ReadFile(args[0])
				if err != nil {
					return usageErr("%v", err)
				}
				if p, err = spec.ParsePackage(filepath.Base(args[0]), data); err != nil {
					return usageErr("%s: %v", args[0], err)
				}
			}
			overrides, err := parseParams(p, params)
			if err != nil {
				return err
			}
			for k, v := range overrides {
				values[k] = v
			}
			c := newAPIClient(cmd)
			expID, err := c.experimentID(ctx, experiment, true)
			if err != nil {
				return apiExit(err)
			}
			if name == "" {
				name = p.Name() + " " + time.Now().Format("2006-01-02 15-04-05")
			}
			body := map[string]any{
				"display_name":   name,
				"pipeline_spec":  json.RawMessage(p.StoredJSON()),
				"runtime_config": map[string]any{"parameters": values},
			}
			if pipelineRoot != "" {
				body["runtime_config"].(map[string]any)["pipeline_root"] = pipelineRoot
			}
			if expID != "" {
				body["experiment_id"] = expID
			}
			var run apiRun
			if err := c.do(ctx, http.MethodPost, "/runs", body, &run); err != nil {
				return apiExit(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s submitted (%s)\n", run.RunID, run.DisplayName)
			// As on KFP, the created run comes back without details: the warnings the box found
			// at creation (tasks that will fail) are in the run as it is read back.
			var got apiRun
			if err := c.do(ctx, http.MethodGet, "/runs/"+url.PathEscape(run.RunID), nil, &got); err == nil && got.RunDetails != nil {
				for _, w := range got.RunDetails.Warnings {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
				}
			}
			if !watch {
				return nil
			}
			return watchRun(ctx, c, cmd.OutOrStdout(), run.RunID, interval)
		},
	}
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "pipeline parameter key=value (repeatable)")
	cmd.Flags().StringVar(&experiment, "experiment", "", "experiment name or id (created when missing; default: Default)")
	cmd.Flags().StringVar(&name, "name", "", "run display name (default: pipeline name and time)")
	cmd.Flags().StringVar(&pipelineRoot, "pipeline-root", "", "pipeline root for the run's artifacts")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "wait for the run to finish; exit 1 unless it succeeded")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "polling interval for --watch")
	cmd.Flags().StringVar(&exportFile, "from-export", "", "run an exported run again (an archive from 'kfp-box run export')")
	return cmd
}

// parseParams types -p key=value by the pipeline's root inputs.
func parseParams(p *spec.Pipeline, kvs []string) (map[string]any, error) {
	decl := map[string]*spec.ParameterSpec{}
	if p.Spec.Root != nil && p.Spec.Root.InputDefinitions != nil {
		decl = p.Spec.Root.InputDefinitions.Parameters
	}
	out := map[string]any{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErr("-p %q: want key=value", kv)
		}
		d, known := decl[k]
		if !known {
			names := make([]string, 0, len(decl))
			for n := range decl {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, usageErr("-p %s: the pipeline has no parameter %q (it has %s)", kv, k, strings.Join(names, ", "))
		}
		val, err := typedValue(d.ParameterType, v)
		if err != nil {
			return nil, usageErr("-p %s: %v", kv, err)
		}
		out[k] = val
	}
	return out, nil
}

func typedValue(typ, v string) (any, error) {
	switch typ {
	case spec.TypeNumberInteger:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want an integer")
		}
		return n, nil
	case spec.TypeNumberDouble:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return nil, fmt.Errorf("want a number")
		}
		return f, nil
	case spec.TypeBoolean:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("want true or false")
		}
		return b, nil
	case spec.TypeList, spec.TypeStruct:
		var x any
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			return nil, fmt.Errorf("want JSON: %v", err)
		}
		return x, nil
	}
	return v, nil
}

// terminal reports whether a run state will not change any more.
func terminal(state string) bool {
	switch state {
	case "SUCCEEDED", "FAILED", "SKIPPED", "CANCELED":
		return true
	}
	return false
}

// watchRun polls a run until it finishes, printing the run's and each task's state
// changes, then a table of the tasks with their durations; a run that did not succeed is
// exit 1.
func watchRun(ctx context.Context, c *apiClient, w io.Writer, id string, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Second
	}
	last := ""
	tasks := newTaskWatcher(w)
	for {
		var run apiRun
		if err := c.do(ctx, http.MethodGet, "/runs/"+url.PathEscape(id), nil, &run); err != nil {
			return apiExit(err)
		}
		now := time.Now()
		if run.RunDetails != nil {
			tasks.update(run.RunDetails.TaskDetails, now)
		}
		if run.State != last {
			fmt.Fprintf(w, "%s  run %s\n", now.Format("15:04:05"), run.State)
			last = run.State
		}
		if terminal(run.State) {
			fmt.Fprintln(w)
			if run.RunDetails != nil {
				if err := printTaskTable(w, run.RunDetails.TaskDetails, now); err != nil {
					return err
				}
			}
			fmt.Fprintf(w, "run %s %s in %s\n", id, run.State, span(run.CreatedAt, run.FinishedAt, now))
			if run.State == "SUCCEEDED" {
				return nil
			}
			msg := ""
			if run.Error != nil && run.Error.Message != "" {
				msg = ": " + run.Error.Message
			}
			return &ExitError{Code: 1, Err: fmt.Errorf("run %s %s%s", id, run.State, msg)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

func newRunListCmd() *cobra.Command {
	var experiment, filter, sortBy string
	var pageSize int
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			output, _ := cmd.Flags().GetString("output")
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			c := newAPIClient(cmd)
			expID, err := c.experimentID(ctx, experiment, false)
			if err != nil {
				return apiExit(err)
			}
			var runs []apiRun
			tok := ""
			for {
				q := url.Values{"page_size": {strconv.Itoa(pageSize)}, "sort_by": {sortBy}, "page_token": {tok}}
				if filter != "" {
					q.Set("filter", filter)
				}
				if expID != "" {
					q.Set("experiment_id", expID)
				}
				var page struct {
					Runs          []apiRun `json:"runs"`
					NextPageToken string   `json:"next_page_token"`
				}
				if err := c.do(ctx, http.MethodGet, "/runs?"+q.Encode(), nil, &page); err != nil {
					return apiExit(err)
				}
				runs = append(runs, page.Runs...)
				if !all || page.NextPageToken == "" {
					break
				}
				tok = page.NextPageToken
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), runs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN ID\tNAME\tSTATE\tCREATED\tFINISHED")
			for _, r := range runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.RunID, r.DisplayName, r.State, shortTime(r.CreatedAt), shortTime(r.FinishedAt))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&experiment, "experiment", "", "only runs of this experiment (name or id)")
	cmd.Flags().StringVar(&filter, "filter", "", `KFP filter JSON, e.g. {"predicates":[{"operation":"EQUALS","key":"state","string_value":"FAILED"}]}`)
	cmd.Flags().StringVar(&sortBy, "sort-by", "created_at desc", "sort field and direction")
	cmd.Flags().IntVar(&pageSize, "page-size", 50, "runs per page (at most 200)")
	cmd.Flags().BoolVar(&all, "all", false, "fetch every page")
	outputFlag(cmd)
	return cmd
}

func newRunGetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get RUN_ID",
		Short: "Show a run with its parameters and tasks (cache hits name the run they reused)",
		Long: `Show a run: its state, parameters and a table of its tasks with their states, durations
and, for a cache hit, the run (and task) whose outputs it reused. RUN_ID may be any
prefix of the id that only one run has.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			output, _ := cmd.Flags().GetString("output")
			if err := checkOutput(output); err != nil {
				return err
			}
			c := newAPIClient(cmd)
			id, err := c.resolveRunID(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.do(cmd.Context(), http.MethodGet, "/runs/"+url.PathEscape(id), nil, &raw); err != nil {
				return apiExit(err)
			}
			if output == "json" {
				var v any
				_ = json.Unmarshal(raw, &v)
				return printJSON(cmd.OutOrStdout(), v)
			}
			var r apiRun
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "Run ID:\t%s\nName:\t%s\nExperiment:\t%s\nState:\t%s\nStorage:\t%s\nCreated:\t%s\nFinished:\t%s\n",
				r.RunID, r.DisplayName, r.ExperimentID, r.State, r.StorageState, shortTime(r.CreatedAt), shortTime(r.FinishedAt))
			if r.Error != nil && r.Error.Message != "" {
				fmt.Fprintf(tw, "Error:\t%s\n", r.Error.Message)
			}
			names := make([]string, 0, len(r.RuntimeConfig.Parameters))
			for k := range r.RuntimeConfig.Parameters {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				b, _ := json.Marshal(r.RuntimeConfig.Parameters[k])
				fmt.Fprintf(tw, "Parameter %s:\t%s\n", k, b)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if r.RunDetails != nil && len(shownTasks(r.RunDetails.TaskDetails)) > 0 {
				fmt.Fprintln(w)
				return printTaskTable(w, r.RunDetails.TaskDetails, time.Now())
			}
			return nil
		},
	}
	outputFlag(cmd)
	return cmd
}
