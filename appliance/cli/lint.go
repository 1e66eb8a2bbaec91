package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance/client"
	"github.com/kfp-box/kfp-box/appliance/lint"
	"github.com/kfp-box/kfp-box/appliance/spec"
)

func init() { register(newLintCmd) }

func newLintCmd() *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "lint FILE",
		Short: "Report what a KFP cluster would reject or run differently (exit 1 with findings)",
		Long: `Report what the box accepts but a KFP cluster of the target release would reject or run
differently: ParallelFor over artifacts, the box's extensions (Concat, artifact metadata
placeholders, {{$.outputs.output_file}}, {{$.pipeline_root}}, time zones in cron schedules),
images a cluster cannot pull (local registries, imagePullPolicy Never), GPU requests without an
accelerator type, and features newer than the target. FILE is a compiled pipeline (.yaml,
.json, .zip, .tar.gz) or a recurring run as JSON (as 'GET /recurringruns/ID' returns it).
'kfp-box push' runs the same checks first. Exit 0: no findings; 1: findings; 2: bad input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			output, _ := cmd.Flags().GetString("output")
			if err := checkOutput(output); err != nil {
				return err
			}
			t, err := lint.ParseTarget(target)
			if err != nil {
				return usageErr("--target: %v", err)
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			findings, err := lintFile(filepath.Base(args[0]), data, t)
			if err != nil {
				return usageErr("%s: %v", args[0], err)
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				if findings == nil {
					findings = []lint.Finding{}
				}
				if err := printJSON(w, findings); err != nil {
					return err
				}
			} else if err := printFindings(w, findings); err != nil {
				return err
			}
			if len(findings) > 0 {
				return &ExitError{Code: 1, Err: fmt.Errorf("%s: %d finding(s) for %s", args[0], len(findings), t)}
			}
			if output != "json" {
				fmt.Fprintf(w, "%s: no findings for %s\n", args[0], t)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "target", lint.DefaultTarget.String(), "KFP release to check against: kfp-2.N, or kfp-2.x for any KFP 2")
	outputFlag(cmd)
	return cmd
}

// lintFile lints a pipeline package or a recurring run JSON.
func lintFile(name string, data []byte, t lint.Target) ([]lint.Finding, error) {
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		var probe map[string]json.RawMessage
		if json.Unmarshal(trimmed, &probe) == nil && probe["trigger"] != nil {
			var rr client.RecurringRun
			if err := json.Unmarshal(trimmed, &rr); err != nil {
				return nil, fmt.Errorf("recurring run: %v", err)
			}
			return lintRecurringRun(&rr, t)
		}
	}
	p, err := spec.ParsePackage(name, data)
	if err != nil {
		return nil, err
	}
	return lint.Pipeline(p, t), nil
}

// lintRecurringRun lints a recurring run's schedule and its inline spec, if any.
func lintRecurringRun(rr *client.RecurringRun, t lint.Target) ([]lint.Finding, error) {
	s := lint.Schedule{Name: rr.DisplayName}
	if rr.Trigger != nil && rr.Trigger.CronSchedule != nil {
		s.Cron, s.TimeZone = rr.Trigger.CronSchedule.Cron, rr.Trigger.CronSchedule.TimeZone
	}
	out := lint.RecurringRun(s, t)
	if len(rr.PipelineSpec) > 0 && string(rr.PipelineSpec) != "null" {
		p, err := spec.FromJSON(rr.PipelineSpec)
		if err != nil {
			return nil, err
		}
		out = append(out, lint.Pipeline(p, t)...)
	}
	return out, nil
}

func printFindings(w io.Writer, fs []lint.Finding) error {
	if len(fs) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tRULE\tWHERE\tFINDING")
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Severity, f.Rule, f.Where, f.Message)
	}
	return tw.Flush()
}
