package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/runtime/containerd"
)

func init() {
	register(newImageCmd)
	register(newContainerdLoggerCmd)
}

// newImageCmd is `kfp-box image`: the images tasks run from, kept in containerd's kfp-box
// namespace. The commands talk to containerd directly, so they work with the box stopped
// (a child containerd is then started under the data directory for the command's duration).
func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Import, list, remove and pull the images tasks run from",
		Long: `Manage the container images of the box. They live in containerd's "kfp-box" namespace,
under the box's containerd (--containerd-address, the system socket, or the child containerd
under <data-dir>/containerd). Import works without a registry: 'docker save IMAGE > img.tar'
or an OCI layout tarball on any machine, then 'kfp-box image import img.tar' on the box.`,
	}
	fs := cmd.PersistentFlags()
	fs.String("data-dir", appliance.Defaults().DataDir, "data directory (env KFPBOX_DATA_DIR)")
	fs.String("containerd-address", "", "containerd socket (env KFPBOX_CONTAINERD_ADDRESS)")
	fs.String("config", "", "YAML configuration file (env KFPBOX_CONFIG)")
	cmd.AddCommand(newImageImportCmd(), newImageListCmd(), newImageRemoveCmd(), newImagePullCmd())
	return cmd
}

// withContainerd loads the configuration, connects to the box's containerd (starting a
// child one when none runs) and calls fn with a client in the kfp-box namespace.
func withContainerd(cmd *cobra.Command, fn func(ctx context.Context, c *client.Client) error) error {
	file, _ := cmd.Flags().GetString("config")
	cfg, err := appliance.Load(file, os.Getenv, cmd.Flags())
	if err != nil {
		return &ExitError{Code: 2, Err: err}
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	c, d, err := containerd.Connect(startCtx, containerd.ConnectOptions{Address: cfg.ContainerdAddress, DataDir: cfg.DataDir})
	cancel()
	if err != nil {
		return fmt.Errorf("%w (run 'kfp-box doctor' for what is missing)", err)
	}
	defer func() {
		_ = c.Close()
		if d != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = d.Stop(sctx)
		}
	}()
	return fn(namespaces.WithNamespace(ctx, containerd.DefaultNamespace), c)
}

func newImageImportCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import a docker-archive (docker save) or OCI layout tarball; FILE - reads stdin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return usageErr("%v", err)
				}
				defer f.Close()
				in = f
			}
			return withContainerd(cmd, func(ctx context.Context, c *client.Client) error {
				names, err := containerd.ImportImages(ctx, c, in, "", name)
				if err != nil {
					if errors.Is(err, runtime.ErrInvalid) {
						return &ExitError{Code: 2, Err: err}
					}
					return err
				}
				for _, n := range names {
					fmt.Fprintf(cmd.OutOrStdout(), "imported %s\n", n)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name for an OCI layout image whose index names none")
	return cmd
}

func newImageListCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the images tasks can use",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return usageErr("--output %q: want table or json", output)
			}
			return withContainerd(cmd, func(ctx context.Context, c *client.Client) error {
				imgs, err := containerd.ListImages(ctx, c)
				if err != nil {
					return err
				}
				return printImages(cmd.OutOrStdout(), imgs, output)
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// printImages writes images as a table or as JSON.
func printImages(w io.Writer, imgs []containerd.ImageInfo, output string) error {
	if output == "json" {
		type row struct {
			Name      string    `json:"name"`
			Digest    string    `json:"digest"`
			Size      int64     `json:"size"`
			CreatedAt time.Time `json:"created_at"`
		}
		rows := make([]row, 0, len(imgs))
		for _, i := range imgs {
			rows = append(rows, row(i))
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDIGEST\tSIZE\tCREATED")
	for _, i := range imgs {
		digest := strings.TrimPrefix(i.Digest, "sha256:")
		if len(digest) > 12 {
			digest = digest[:12]
		}
		size := "?"
		if i.Size >= 0 {
			size = humanize.IBytes(uint64(i.Size))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", i.Name, digest, size, humanize.Time(i.CreatedAt))
	}
	return tw.Flush()
}

func newImageRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm REF...",
		Aliases: []string{"remove"},
		Short:   "Remove images (short names like busybox:1.36 work)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withContainerd(cmd, func(ctx context.Context, c *client.Client) error {
				var errs []error
				for _, ref := range args {
					if err := containerd.RemoveImage(ctx, c, ref); err != nil {
						errs = append(errs, err)
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", ref)
				}
				return errors.Join(errs...)
			})
		},
	}
}

func newImagePullCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image from its registry (needs network access to the registry)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withContainerd(cmd, func(ctx context.Context, c *client.Client) error {
				bar := &progressBar{w: cmd.ErrOrStderr(), ref: args[0]}
				name, err := containerd.PullImage(ctx, c, args[0], "", bar.update)
				bar.finish()
				if err != nil {
					return fmt.Errorf("%w; without a registry, import the image: docker save %s > img.tar, then kfp-box image import img.tar", err, args[0])
				}
				fmt.Fprintf(cmd.OutOrStdout(), "pulled %s\n", name)
				return nil
			})
		},
	}
}

// progressBar draws "REF [=====>    ] 12 MiB / 40 MiB" on one line.
type progressBar struct {
	w     io.Writer
	ref   string
	drawn bool
}

func (p *progressBar) update(done, total int64) {
	const width = 30
	filled := 0
	if total > 0 {
		filled = int(float64(width) * float64(done) / float64(total))
	}
	filled = min(max(filled, 0), width)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	if filled > 0 && filled < width {
		bar = strings.Repeat("=", filled-1) + ">" + strings.Repeat(" ", width-filled)
	}
	fmt.Fprintf(p.w, "\r%s [%s] %s / %s   ", p.ref, bar, humanize.IBytes(uint64(max(done, 0))), humanize.IBytes(uint64(max(total, 0))))
	p.drawn = true
}

func (p *progressBar) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

// newContainerdLoggerCmd is the hidden `kfp-box containerd-logger LOGPATH` that
// containerd's shim runs as a task's log binary when kfp-box-init is not installed.
func newContainerdLoggerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    containerd.LoggerCommand + " LOGPATH",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if code := containerd.LoggerMain(args[0]); code != 0 {
				return &ExitError{Code: code, Err: fmt.Errorf("task logger for %s failed", args[0])}
			}
			return nil
		},
	}
}
