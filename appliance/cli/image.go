package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	ctdclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/appliance/api"
	"github.com/kfp-box/kfp-box/appliance/client"
	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/runtime/containerd"
)

func init() {
	register(newImageCmd)
	register(newContainerdLoggerCmd)
}

// newImageCmd is `kfp-box image`: the images tasks run from, kept in containerd's kfp-box
// namespace. The commands go through a running box's API (--server, or a box answering at
// the default address), or talk to containerd directly, so that they also work with the box
// stopped (a child containerd is then started under the data directory for the command's
// duration).
func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Import, list, remove and pull the images tasks run from",
		Long: `Manage the container images of the box. They live in containerd's "kfp-box" namespace,
under the box's containerd (--containerd-address, that is runtime.containerd.address in the
configuration file, the system socket, or the child containerd under <data-dir>/containerd). Import works without a registry: 'docker save IMAGE > img.tar'
or an OCI layout tarball on any machine, then 'kfp-box image import img.tar'.

Where the commands act:
  - with --local, --data-dir or --containerd-address: on this machine's containerd directly
    (these win over --server);
  - with --server URL (or KFPBOX_SERVER): through that box's API, from any machine; import
    uploads the tarball with a progress bar, and pull shows the box's byte progress as it
    fetches from the registry;
  - otherwise through the box answering at the default address when one runs (the command
    says so on stderr), else on this machine's containerd.
A box running with the host runtime keeps no images and answers so.`,
	}
	fs := cmd.PersistentFlags()
	fs.String("data-dir", appliance.Defaults().DataDir, "data directory, for --local (env KFPBOX_DATA_DIR)")
	fs.String("containerd-address", "", "containerd socket, for --local (env KFPBOX_CONTAINERD_ADDRESS)")
	fs.String("config", "", "YAML configuration file, for --local (env KFPBOX_CONFIG; default "+appliance.DefaultConfigFile+" when it exists)")
	fs.Bool("local", false, "act on this machine's containerd directly, not through a running box")
	cmd.AddCommand(newImageImportCmd(), newImageListCmd(), newImageRemoveCmd(), newImagePullCmd())
	return cmd
}

// imageAPI returns a client of the box the image commands should go through, or nil when
// they act on containerd directly (see newImageCmd's help for the rule).
func imageAPI(cmd *cobra.Command) *apiClient {
	if local, _ := cmd.Flags().GetBool("local"); local {
		return nil
	}
	// Naming this machine's containerd or data directory asks for it, even beside a
	// --server that a wrapper or the environment sets for every command.
	if cmd.Flags().Changed("data-dir") || cmd.Flags().Changed("containerd-address") {
		return nil
	}
	if cmd.Flags().Changed("server") || os.Getenv("KFPBOX_SERVER") != "" {
		return newAPIClient(cmd)
	}
	base := serverURL(cmd)
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" {
		return nil
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := boxAPI(ctx, u.Host); !ok {
		return nil
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "using the box running at %s (--local acts on this machine's containerd)\n", base)
	return newAPIClient(cmd)
}

// containerdSettings is cfg's runtime.containerd section (its defaults when the backend
// registered none, which cannot happen in the kfp-box binary).
func containerdSettings(cfg appliance.Config) *containerd.Settings {
	if s, ok := cfg.Section("runtime", containerd.ID).(*containerd.Settings); ok {
		return s
	}
	return containerd.NewSettings()
}

// imagePath is an image route below the API prefix.
func imagePath(full string) string { return strings.TrimPrefix(full, client.APIPrefix) }

// withContainerd loads the configuration, connects to the box's containerd (starting a
// child one when none runs) and calls fn with a client in the kfp-box namespace.
func withContainerd(cmd *cobra.Command, fn func(ctx context.Context, c *ctdclient.Client) error) error {
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
	ctd := containerdSettings(cfg)
	c, d, err := containerd.Connect(startCtx, containerd.ConnectOptions{Address: ctd.Address, Namespace: ctd.Namespace, DataDir: cfg.DataDir})
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
			var size int64 = -1
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return usageErr("%v", err)
				}
				defer f.Close()
				if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
					size = st.Size()
				}
				in = f
			}
			if c := imageAPI(cmd); c != nil {
				return importViaAPI(cmd, c, in, args[0], size, name)
			}
			return withContainerd(cmd, func(ctx context.Context, c *ctdclient.Client) error {
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
			if c := imageAPI(cmd); c != nil {
				imgs, err := listViaAPI(cmd.Context(), c)
				if err != nil {
					return apiExit(err)
				}
				return printImages(cmd.OutOrStdout(), imgs, output)
			}
			return withContainerd(cmd, func(ctx context.Context, c *ctdclient.Client) error {
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
			if c := imageAPI(cmd); c != nil {
				var errs []error
				for _, ref := range args {
					if err := c.do(cmd.Context(), http.MethodDelete, imagePath(api.ImagesPath)+"/"+url.PathEscape(ref), nil, nil); err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", ref, err))
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", ref)
				}
				return errors.Join(errs...)
			}
			return withContainerd(cmd, func(ctx context.Context, c *ctdclient.Client) error {
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
			if c := imageAPI(cmd); c != nil {
				if c.err != nil {
					return c.err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "pulling %s on the box at %s\n", args[0], c.base)
				body, _ := json.Marshal(map[string]string{"ref": args[0]})
				bar := &progressBar{w: cmd.ErrOrStderr(), ref: args[0]}
				name, err := func() (string, error) {
					resp, err := c.kfp.PostStream(cmd.Context(), imagePath(api.ImagePullPath), "application/json", api.PullStreamType, bytes.NewReader(body))
					if err != nil {
						return "", c.wrap(err)
					}
					defer resp.Body.Close()
					return readPullStream(resp, bar.update)
				}()
				bar.finish()
				if err != nil {
					return apiExit(fmt.Errorf("%w; without a registry, import the image: docker save %s > img.tar, then kfp-box image import img.tar", err, args[0]))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "pulled %s\n", name)
				return nil
			}
			return withContainerd(cmd, func(ctx context.Context, c *ctdclient.Client) error {
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

// readPullStream reads the box's answer to a streamed images:pull, calling progress for each
// progress line, and returns the pulled image's name or the box's error (as an apiError with
// the status the same failure has without streaming). A box that answers with one JSON
// object (one that predates streaming) gives the name alone.
func readPullStream(resp *http.Response, progress func(done, total int64)) (string, error) {
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), api.PullStreamType) {
		var out struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil || out.Name == "" {
			return "", fmt.Errorf("bad answer to images:pull (%v)", err)
		}
		return out.Name, nil
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev api.PullEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return "", fmt.Errorf("the box's pull stream ended without a result: %w", err)
		}
		switch {
		case ev.Error != nil:
			status := ev.Error.Status
			if status == 0 {
				status = http.StatusInternalServerError
			}
			return "", &apiError{Status: status, Message: ev.Error.Message}
		case ev.Name != "":
			return ev.Name, nil
		case ev.Progress != nil && progress != nil:
			progress(ev.Progress.Done, ev.Progress.Total)
		}
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
	if total < 0 {
		fmt.Fprintf(p.w, "\r%s %s   ", p.ref, humanize.IBytes(uint64(max(done, 0))))
	} else {
		fmt.Fprintf(p.w, "\r%s [%s] %s / %s   ", p.ref, bar, humanize.IBytes(uint64(max(done, 0))), humanize.IBytes(uint64(max(total, 0))))
	}
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

// importViaAPI uploads a tarball to the box's images:import route as a multipart stream,
// drawing the bytes sent on stderr (size -1: unknown, as for stdin).
func importViaAPI(cmd *cobra.Command, c *apiClient, in io.Reader, file string, size int64, name string) error {
	if c.err != nil {
		return c.err
	}
	bar := &progressBar{w: cmd.ErrOrStderr(), ref: filepath.Base(file)}
	if file == "-" {
		bar.ref = "stdin"
	}
	counted := &countingReader{r: in, every: 200 * time.Millisecond, report: func(n int64) { bar.update(n, size) }}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, err := mw.CreateFormFile("uploadfile", bar.ref)
		if err == nil {
			_, err = io.Copy(fw, counted)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	var out struct {
		Images []string `json:"images"`
	}
	err := c.wrap(c.kfp.UploadStream(cmd.Context(), imagePath(api.ImageImportPath), q, mw.FormDataContentType(), pr, &out))
	pr.CloseWithError(errors.New("upload ended"))
	bar.update(counted.n, size)
	bar.finish()
	if err != nil {
		return apiExit(err)
	}
	for _, n := range out.Images {
		fmt.Fprintf(cmd.OutOrStdout(), "imported %s\n", n)
	}
	return nil
}

// countingReader counts the bytes read through it and reports the count at most once per
// interval.
type countingReader struct {
	r      io.Reader
	n      int64
	every  time.Duration
	last   time.Time
	report func(n int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if now := time.Now(); now.Sub(c.last) >= c.every {
		c.last = now
		c.report(c.n)
	}
	return n, err
}

// listViaAPI reads the box's images.
func listViaAPI(ctx context.Context, c *apiClient) ([]containerd.ImageInfo, error) {
	var body struct {
		Images []struct {
			Name      string `json:"name"`
			Digest    string `json:"digest"`
			Size      string `json:"size"`
			CreatedAt string `json:"created_at"`
		} `json:"images"`
	}
	if err := c.do(ctx, http.MethodGet, imagePath(api.ImagesPath), nil, &body); err != nil {
		return nil, err
	}
	out := make([]containerd.ImageInfo, 0, len(body.Images))
	for _, i := range body.Images {
		size, err := strconv.ParseInt(i.Size, 10, 64)
		if err != nil {
			size = -1
		}
		created, _ := time.Parse(time.RFC3339Nano, i.CreatedAt)
		out = append(out, containerd.ImageInfo{Name: i.Name, Digest: i.Digest, Size: size, CreatedAt: created})
	}
	return out, nil
}
