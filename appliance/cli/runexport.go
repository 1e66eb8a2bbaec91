package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/url"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/appliance/api"
	"github.com/kfp-box/kfp-box/appliance/client"
	"github.com/kfp-box/kfp-box/appliance/runarchive"
)

func init() {
	runSubcommands = append(runSubcommands, newRunExportCmd, newRunImportCmd)
}

func newRunExportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export RUN_ID -o FILE",
		Short: "Write a finished run (spec, parameters, tasks, outputs, metrics, artifacts, logs) to one archive",
		Long: `Write a finished run to one archive (.tar.gz): its pipeline spec and runtime config, its task
details with input and output parameters, its artifacts with their URIs, metadata (metrics) and
bytes, and each task's log. 'kfp-box run import FILE' shows it on another box as a finished
run; 'kfp-box run submit --from-export FILE' runs it again. RUN_ID may be any prefix of the
id that only one run has.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErr("-o FILE is required")
			}
			c := newAPIClient(cmd)
			if c.err != nil {
				return c.err
			}
			id, err := c.resolveRunID(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tmp, err := os.CreateTemp(filepath.Dir(out), ".kfp-box-export-*")
			if err != nil {
				return usageErr("-o %s: %v", out, err)
			}
			defer os.Remove(tmp.Name())
			m, err := runarchive.Export(cmd.Context(), c.kfp, id, appliance.Version, tmp)
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				if errors.Is(err, runarchive.ErrNotFinished) {
					return usageErr("%v; export it when it has finished", err)
				}
				return apiExit(c.wrap(err))
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return err
			}
			files := 0
			for _, a := range m.Artifacts {
				if a.File != "" {
					files++
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s exported to %s: %d task(s), %d artifact(s) (%d with files), %d log(s)\n",
				id, out, len(client.RunDetailsOf(&client.Run{RunDetails: runDetailsRaw(m)})), len(m.Artifacts), files, len(m.Logs))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "archive file to write")
	return cmd
}

// runDetailsRaw returns the run_details of an exported run.
func runDetailsRaw(m *runarchive.Manifest) []byte {
	var r client.Run
	_ = json.Unmarshal(m.Run, &r)
	return r.RunDetails
}

func newRunImportCmd() *cobra.Command {
	var experiment string
	var newID bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Show an exported run on this box as a finished run (marked as imported, with its origin)",
		Long: `Recreate an exported run (kfp-box run export) on this box: a finished run that the API and
the web UI show like any other, with its tasks, parameters, metrics, artifacts (downloadable)
and logs, marked as imported with the server and run it came from. The engine never runs it;
'kfp-box run submit --from-export FILE' runs it again. The run keeps its id unless --new-id.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			defer f.Close()
			if _, err := runarchive.ReadManifest(f); err != nil {
				return usageErr("%s: %v", args[0], err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			c := newAPIClient(cmd)
			if c.err != nil {
				return c.err
			}
			pr, pw := io.Pipe()
			mw := multipart.NewWriter(pw)
			go func() {
				fw, err := mw.CreateFormFile("uploadfile", filepath.Base(args[0]))
				if err == nil {
					_, err = io.Copy(fw, f)
				}
				if err == nil {
					err = mw.Close()
				}
				pw.CloseWithError(err)
			}()
			q := url.Values{}
			if experiment != "" {
				q.Set("experiment", experiment)
			}
			if newID {
				q.Set("new_id", "true")
			}
			var run client.Run
			path := api.ImportPath[len(client.APIPrefix):]
			if err := c.wrap(c.kfp.UploadStream(cmd.Context(), path, q, mw.FormDataContentType(), pr, &run)); err != nil {
				pr.CloseWithError(err)
				return apiExit(err)
			}
			from := ""
			if o := run.ImportedFrom; o != nil {
				from = fmt.Sprintf(" from run %s of %s", o.RunID, o.Server)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s imported (%s, %s)%s\n", run.RunID, run.DisplayName, run.State, from)
			return nil
		},
	}
	cmd.Flags().StringVar(&experiment, "experiment", "", "experiment name or id (default: the run's experiment name on its origin, created when missing)")
	cmd.Flags().BoolVar(&newID, "new-id", false, "give the run a new id (to import a run into the box it came from)")
	return cmd
}

// fromExport reads an archive's pipeline and run for `run submit --from-export`.
func fromExport(file string) (*runarchive.Manifest, *client.Run, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	m, err := runarchive.ReadManifest(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	var r client.Run
	if err := json.Unmarshal(m.Run, &r); err != nil {
		return nil, nil, fmt.Errorf("%s: the run: %w", file, err)
	}
	return m, &r, nil
}
