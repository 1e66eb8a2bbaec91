package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
)

func init() { register(newWheelsCmd) }

// wheelFile is a wheel as the API lists it.
type wheelFile struct {
	Name           string    `json:"filename"`
	Project        string    `json:"project"`
	Version        string    `json:"version"`
	Size           int64     `json:"size"`
	SHA256         string    `json:"sha256"`
	RequiresPython string    `json:"requires_python,omitempty"`
	AddedAt        time.Time `json:"added_at"`
}

// newWheelsCmd is `kfp-box wheels`: the running box's wheelhouse, through its API.
func newWheelsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wheels",
		Short: "Import, list and remove the Python wheels the box's package index serves",
		Long: `The box serves a Python package index (PEP 503 and PEP 691) at /pypi/simple/ over the
wheels in <data-dir>/wheelhouse; every task gets it as PIP_INDEX_URL, so lightweight Python
components pip-install offline. These commands talk to the running box (--server).`,
	}
	cmd.AddCommand(newWheelsImportCmd(), newWheelsListCmd(), newWheelsRemoveCmd())
	return cmd
}

func newWheelsImportCmd() *cobra.Command {
	var filename string
	cmd := &cobra.Command{
		Use:   "import FILE.whl|DIR|-",
		Short: "Add wheels: files, every *.whl of a directory, or one wheel on stdin (-, with --filename)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newAPIClient(cmd)
			c.http.Timeout = 0 // large wheels
			ctx := cmd.Context()
			var paths []string
			for _, a := range args {
				if a == "-" {
					if filename == "" {
						return usageErr("reading a wheel from stdin needs --filename NAME-VERSION-PY-ABI-PLATFORM.whl")
					}
					if err := importWheel(ctx, c, filename, cmd.InOrStdin()); err != nil {
						return apiExit(err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "imported %s\n", filename)
					continue
				}
				fi, err := os.Stat(a)
				if err != nil {
					return usageErr("%v", err)
				}
				if fi.IsDir() {
					m, _ := filepath.Glob(filepath.Join(a, "*.whl"))
					if len(m) == 0 {
						return usageErr("%s has no *.whl files", a)
					}
					sort.Strings(m)
					paths = append(paths, m...)
					continue
				}
				paths = append(paths, a)
			}
			for _, p := range paths {
				f, err := os.Open(p)
				if err != nil {
					return usageErr("%v", err)
				}
				err = importWheel(ctx, c, filepath.Base(p), f)
				f.Close()
				if err != nil {
					return apiExit(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "imported %s\n", filepath.Base(p))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&filename, "filename", "", "file name of the wheel read from stdin")
	return cmd
}

// importWheel posts one wheel to the box.
func importWheel(ctx context.Context, c *apiClient, name string, body io.Reader) error {
	if c.err != nil {
		return c.err
	}
	return c.wrap(c.kfp.UploadStream(ctx, "/wheels", url.Values{"filename": {name}}, "application/octet-stream", body, nil))
}

func newWheelsListCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the wheels of the box's package index",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var body struct {
				Wheels []wheelFile `json:"wheels"`
			}
			if err := newAPIClient(cmd).do(cmd.Context(), http.MethodGet, "/wheels", nil, &body); err != nil {
				return apiExit(err)
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), body.Wheels)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROJECT\tVERSION\tFILE\tSIZE\tSHA256")
			for _, w := range body.Wheels {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", w.Project, w.Version, w.Name, humanize.IBytes(uint64(w.Size)), w.SHA256[:min(12, len(w.SHA256))])
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newWheelsRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm FILE.whl|PROJECT|PROJECT==VERSION...",
		Aliases: []string{"remove"},
		Short:   "Remove wheels by file name, project (every version) or project==version",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newAPIClient(cmd)
			for _, a := range args {
				var body struct {
					Removed []wheelFile `json:"removed"`
				}
				if err := c.do(cmd.Context(), http.MethodDelete, "/wheels/"+url.PathEscape(strings.TrimSpace(a)), nil, &body); err != nil {
					return apiExit(err)
				}
				for _, w := range body.Removed {
					fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", w.Name)
				}
			}
			return nil
		},
	}
}
