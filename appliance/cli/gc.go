package cli

import (
	"fmt"
	"net/http"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() { register(newGCCmd) }

func newGCCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete the artifacts of deleted runs (--dry-run lists what would go)",
		Long: `Delete the artifacts that runs no longer in the box left behind, except those that
other runs still use (a cache hit reuses the files of the run it came from). Deleting a run
already does this; gc catches up after crashes and shows what it would free with --dry-run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := newAPIClient(cmd)
			path := "/gc"
			if dryRun {
				path += "?dry_run=true"
			}
			var rep struct {
				Items []struct {
					URI     string `json:"uri"`
					Objects int    `json:"objects"`
					Bytes   int64  `json:"bytes"`
					Kept    int    `json:"kept"`
				} `json:"items"`
				Objects int   `json:"objects"`
				Bytes   int64 `json:"bytes"`
			}
			if err := c.do(cmd.Context(), http.MethodPost, path, nil, &rep); err != nil {
				return apiExit(err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			if len(rep.Items) > 0 {
				fmt.Fprintln(w, "URI\tOBJECTS\tBYTES\tKEPT")
				for _, it := range rep.Items {
					fmt.Fprintf(w, "%s\t%d\t%d\t%d\n", it.URI, it.Objects, it.Bytes, it.Kept)
				}
			}
			verb := "freed"
			if dryRun {
				verb = "would free"
			}
			fmt.Fprintf(w, "%s %d bytes in %d objects\n", verb, rep.Bytes, rep.Objects)
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only list what would be deleted and the space it would free")
	return cmd
}
