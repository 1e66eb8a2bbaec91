package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() { register(newExperimentCmd) }

// newExperimentCmd is `kfp-box experiment`: list and create experiments.
func newExperimentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "experiment", Short: "List and create experiments"}
	cmd.AddCommand(newExperimentListCmd(), newExperimentCreateCmd())
	return cmd
}

func newExperimentListCmd() *cobra.Command {
	var pageSize int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List experiments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			output, _ := cmd.Flags().GetString("output")
			if err := checkOutput(output); err != nil {
				return err
			}
			var page struct {
				Experiments []struct {
					ExperimentID     string `json:"experiment_id"`
					DisplayName      string `json:"display_name"`
					StorageState     string `json:"storage_state"`
					CreatedAt        string `json:"created_at"`
					LastRunCreatedAt string `json:"last_run_created_at"`
				} `json:"experiments"`
			}
			q := url.Values{"page_size": {strconv.Itoa(pageSize)}}
			if err := newAPIClient(cmd).do(cmd.Context(), http.MethodGet, "/experiments?"+q.Encode(), nil, &page); err != nil {
				return apiExit(err)
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), page.Experiments)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EXPERIMENT ID\tNAME\tSTATE\tCREATED\tLAST RUN")
			for _, e := range page.Experiments {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.ExperimentID, e.DisplayName, e.StorageState, shortTime(e.CreatedAt), shortTime(e.LastRunCreatedAt))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&pageSize, "page-size", 50, "experiments to show (at most 200)")
	outputFlag(cmd)
	return cmd
}

func newExperimentCreateCmd() *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an experiment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var e struct {
				ExperimentID string `json:"experiment_id"`
			}
			body := map[string]any{"display_name": args[0], "description": description}
			if err := newAPIClient(cmd).do(cmd.Context(), http.MethodPost, "/experiments", body, &e); err != nil {
				return apiExit(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "experiment %s created (%s)\n", e.ExperimentID, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "description")
	return cmd
}
