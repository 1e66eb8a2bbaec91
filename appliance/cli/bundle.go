package cli

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/platforms"
	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/runtime"
	"github.com/kfp-box/kfp-box/runtime/containerd"
	"github.com/kfp-box/kfp-box/storage/wheelhouse"
)

func init() { register(newBundleCmd) }

// bundleManifest is kfp-box-bundle.json, the first member of a bundle.
type bundleManifest struct {
	Format    int       `json:"format"`
	CreatedAt time.Time `json:"created_at"`
	// Images are the image references in images.tar (an OCI archive).
	Images []string `json:"images,omitempty"`
	// Wheels are the files under wheels/, with their sha256.
	Wheels []bundleWheel `json:"wheels,omitempty"`
}

type bundleWheel struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
}

const bundleManifestName = "kfp-box-bundle.json"

// newBundleCmd is `kfp-box bundle`: what an air-gapped box needs, carried in one file.
func newBundleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Carry images and Python wheels to an offline box in one file",
		Long: `'bundle create' runs on a connected machine: it pulls images from their registries (into
that machine's containerd) and fetches wheels from a package index, and writes them into one
file. 'bundle import' runs on the offline box: images go into its containerd (as 'image
import'), wheels into its wheelhouse through the running box (as 'wheels import').`,
	}
	fs := cmd.PersistentFlags()
	fs.String("data-dir", appliance.Defaults().DataDir, "data directory (env KFPBOX_DATA_DIR)")
	fs.String("containerd-address", "", "containerd socket (env KFPBOX_CONTAINERD_ADDRESS)")
	fs.String("config", "", "YAML configuration file (env KFPBOX_CONFIG)")
	cmd.AddCommand(newBundleCreateCmd(), newBundleImportCmd())
	return cmd
}

func newBundleCreateCmd() *cobra.Command {
	var out, index string
	var imgs, reqs []string
	cmd := &cobra.Command{
		Use:   "create -o FILE [--image REF]... [--pip REQ]...",
		Short: "Pull images and fetch wheels into one bundle file",
		Long: `Pull each --image from its registry and fetch, for each --pip requirement (kfp==2.14.6,
'pandas>=2,<3'), the newest matching wheels from --index-url (default: PyPI), verified against
the sha256 the index publishes. Each requirement is fetched as named, without its
dependencies (as KFP components install kfp: --no-deps); name the dependencies too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr("give the bundle's file with -o FILE")
			}
			if len(imgs) == 0 && len(reqs) == 0 {
				return usageErr("nothing to bundle: give --image REF and/or --pip REQ")
			}
			var parsed []wheelhouse.Requirement
			for _, r := range reqs {
				p, err := wheelhouse.ParseRequirement(r)
				if err != nil {
					return usageErr("--pip %q: %v", r, err)
				}
				parsed = append(parsed, p)
			}
			ctx := cmd.Context()
			tmp, err := os.MkdirTemp(filepath.Dir(out), ".kfp-box-bundle-")
			if err != nil {
				return usageErr("%v", err)
			}
			defer os.RemoveAll(tmp)
			m := bundleManifest{Format: 1, CreatedAt: time.Now().UTC()}
			if len(parsed) > 0 {
				ws, err := fetchWheels(ctx, cmd, index, parsed, filepath.Join(tmp, "wheels"))
				if err != nil {
					return err
				}
				m.Wheels = ws
			}
			if len(imgs) > 0 {
				if err := withContainerd(cmd, func(ctx context.Context, c *client.Client) error {
					var exp []archive.ExportOpt
					for _, ref := range imgs {
						bar := &progressBar{w: cmd.ErrOrStderr(), ref: ref}
						name, err := containerd.PullImage(ctx, c, ref, "", bar.update)
						bar.finish()
						if err != nil {
							return fmt.Errorf("%w (bundle create needs the registry of %s)", err, ref)
						}
						m.Images = append(m.Images, name)
						exp = append(exp, archive.WithImage(c.ImageService(), name))
					}
					f, err := os.Create(filepath.Join(tmp, "images.tar"))
					if err != nil {
						return err
					}
					exp = append(exp, archive.WithPlatform(platforms.DefaultStrict()))
					if err := c.Export(ctx, f, exp...); err != nil {
						f.Close()
						return fmt.Errorf("export images: %w", err)
					}
					return f.Close()
				}); err != nil {
					return err
				}
			}
			if err := writeBundle(out, tmp, m); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d image(s), %d wheel(s)\n", out, len(m.Images), len(m.Wheels))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "bundle file to write")
	cmd.Flags().StringArrayVar(&imgs, "image", nil, "image to pull and include (repeatable)")
	cmd.Flags().StringArrayVar(&reqs, "pip", nil, "Python requirement whose wheels to include (repeatable)")
	cmd.Flags().StringVar(&index, "index-url", "https://pypi.org/simple/", "package index the wheels come from (PEP 503)")
	return cmd
}

// fetchWheels fetches, for each requirement, the wheels of its newest matching version
// (every platform variant for this machine's architecture, and pure-Python ones).
func fetchWheels(ctx context.Context, cmd *cobra.Command, index string, reqs []wheelhouse.Requirement, dir string) ([]bundleWheel, error) {
	up, err := wheelhouse.NewUpstream(index, nil)
	if err != nil {
		return nil, usageErr("--index-url: %v", err)
	}
	st, err := wheelhouse.Open(dir, nil)
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		names, err := up.Matching(ctx, r, archTag())
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, &ExitError{Code: 1, Err: fmt.Errorf("%s: no wheel on %s matches %s", r.Name, up.URL(), r)}
		}
		for _, n := range names {
			if _, err := up.Fetch(ctx, st, n); err != nil {
				return nil, err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "fetched %s\n", n)
		}
	}
	var out []bundleWheel
	for _, f := range st.List() {
		out = append(out, bundleWheel{File: f.Name, SHA256: f.SHA256})
	}
	return out, nil
}

// archTag is this machine's architecture as wheel platform tags spell it.
func archTag() string {
	switch p := platforms.DefaultSpec(); p.Architecture {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	default:
		return p.Architecture
	}
}

// writeBundle writes the manifest, then images.tar and wheels/ from dir, as one tar file.
func writeBundle(out, dir string, m bundleManifest) error {
	f, err := os.CreateTemp(filepath.Dir(out), ".bundle-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	tw := tar.NewWriter(f)
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := tw.WriteHeader(&tar.Header{Name: bundleManifestName, Mode: 0o644, Size: int64(len(mb)), ModTime: m.CreatedAt}); err != nil {
		return err
	}
	if _, err := tw.Write(mb); err != nil {
		return err
	}
	var members []string
	if len(m.Images) > 0 {
		members = append(members, "images.tar")
	}
	for _, w := range m.Wheels {
		members = append(members, "wheels/"+w.File)
	}
	for _, name := range members {
		if err := addFile(tw, filepath.Join(dir, filepath.FromSlash(name)), name); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}

func addFile(tw *tar.Writer, path, name string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, in)
	return err
}

func newBundleImportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Load a bundle's images into containerd and its wheels into the running box",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			defer f.Close()
			tr := tar.NewReader(f)
			h, err := tr.Next()
			if err != nil || h.Name != bundleManifestName {
				return usageErr("%s is not a kfp-box bundle (it must start with %s)", args[0], bundleManifestName)
			}
			var m bundleManifest
			if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&m); err != nil || m.Format != 1 {
				return usageErr("%s: bad bundle manifest (format %d): %v", args[0], m.Format, err)
			}
			want := map[string]string{}
			for _, w := range m.Wheels {
				want["wheels/"+w.File] = w.SHA256
			}
			c := newAPIClient(cmd)
			c.http.Timeout = 0
			var done []string
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return usageErr("%s: %v", args[0], err)
				}
				switch {
				case h.Name == "images.tar":
					err = withContainerd(cmd, func(ctx context.Context, cl *client.Client) error {
						names, err := containerd.ImportImages(ctx, cl, tr, "", "")
						if err != nil {
							if errors.Is(err, runtime.ErrInvalid) {
								return &ExitError{Code: 2, Err: err}
							}
							return err
						}
						sort.Strings(names)
						for _, n := range names {
							fmt.Fprintf(cmd.OutOrStdout(), "imported image %s\n", n)
						}
						return nil
					})
				case strings.HasPrefix(h.Name, "wheels/"):
					sum, ok := want[h.Name]
					if !ok {
						return usageErr("%s: %s is not in the bundle's manifest", args[0], h.Name)
					}
					name := strings.TrimPrefix(h.Name, "wheels/")
					err = importWheelChecked(cmd.Context(), c, name, sum, tr)
					if err == nil {
						fmt.Fprintf(cmd.OutOrStdout(), "imported wheel %s\n", name)
						done = append(done, name)
					}
				default:
					return usageErr("%s: unexpected member %s", args[0], h.Name)
				}
				if err != nil {
					return err
				}
			}
			if len(done) != len(m.Wheels) {
				return usageErr("%s is truncated: %d of %d wheels", args[0], len(done), len(m.Wheels))
			}
			return nil
		},
	}
}

// importWheelChecked posts a wheel with the sha256 the bundle recorded; the box refuses a
// mismatch.
func importWheelChecked(ctx context.Context, c *apiClient, name, sum string, body io.Reader) error {
	if c.err != nil {
		return c.err
	}
	return apiExit(c.wrap(c.kfp.UploadStream(ctx, "/wheels", url.Values{"filename": {name}, "sha256": {sum}}, "application/octet-stream", body, nil)))
}
