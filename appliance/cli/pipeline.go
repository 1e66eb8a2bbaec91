package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance/spec"
)

func init() { register(newPipelineCmd) }

// newPipelineCmd is `kfp-box pipeline`: upload and list stored pipelines.
func newPipelineCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pipeline", Short: "Upload and list pipelines"}
	cmd.AddCommand(newPipelineUploadCmd(), newPipelineListCmd())
	return cmd
}

func newPipelineUploadCmd() *cobra.Command {
	var name, description, pipelineID string
	cmd := &cobra.Command{
		Use:   "upload FILE",
		Short: "Upload a compiled pipeline, or a new version of one with --pipeline-id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			base := filepath.Base(args[0])
			// Check locally first for a clear message; the server checks again.
			p, err := spec.ParsePackage(base, data)
			if err != nil {
				return usageErr("%s: %v", args[0], err)
			}
			if name == "" {
				name = p.Name()
			}
			q := url.Values{"name": {name}}
			if description != "" {
				q.Set("description", description)
			}
			c := newAPIClient(cmd)
			w := cmd.OutOrStdout()
			if pipelineID != "" {
				q.Set("pipelineid", pipelineID)
				var v struct {
					PipelineVersionID string `json:"pipeline_version_id"`
				}
				if err := c.upload(cmd.Context(), "/pipelines/upload_version", q, base, data, &v); err != nil {
					return apiExit(err)
				}
				fmt.Fprintf(w, "pipeline version %s uploaded (%s)\n", v.PipelineVersionID, name)
				return nil
			}
			var pl struct {
				PipelineID string `json:"pipeline_id"`
			}
			if err := c.upload(cmd.Context(), "/pipelines/upload", q, base, data, &pl); err != nil {
				return apiExit(err)
			}
			fmt.Fprintf(w, "pipeline %s uploaded (%s)\n", pl.PipelineID, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "pipeline (or version) name (default: pipelineInfo.name)")
	cmd.Flags().StringVar(&description, "description", "", "description")
	cmd.Flags().StringVar(&pipelineID, "pipeline-id", "", "upload as a new version of this pipeline")
	return cmd
}

func newPipelineListCmd() *cobra.Command {
	var pageSize int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List pipelines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			output, _ := cmd.Flags().GetString("output")
			if err := checkOutput(output); err != nil {
				return err
			}
			var page struct {
				Pipelines []struct {
					PipelineID  string `json:"pipeline_id"`
					Name        string `json:"name"`
					DisplayName string `json:"display_name"`
					CreatedAt   string `json:"created_at"`
				} `json:"pipelines"`
			}
			q := url.Values{"page_size": {strconv.Itoa(pageSize)}, "sort_by": {"created_at desc"}}
			if err := newAPIClient(cmd).do(cmd.Context(), http.MethodGet, "/pipelines?"+q.Encode(), nil, &page); err != nil {
				return apiExit(err)
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), page.Pipelines)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PIPELINE ID\tNAME\tCREATED")
			for _, p := range page.Pipelines {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.PipelineID, p.DisplayName, shortTime(p.CreatedAt))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&pageSize, "page-size", 50, "pipelines to show (at most 200)")
	outputFlag(cmd)
	return cmd
}
