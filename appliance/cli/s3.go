package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/storage/objects/s3server"
)

func init() { register(newS3Cmd) }

// CredentialsFileName is the embedded S3 server's credentials file inside the data
// directory; EndpointFileName records the endpoint of its latest start.
const (
	CredentialsFileName = appliance.S3CredentialsFile
	EndpointFileName    = appliance.S3EndpointFile
)

// newS3Cmd is `kfp-box s3`: facts about the embedded S3 endpoint.
func newS3Cmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "s3",
		Short: "The embedded S3 endpoint (artifacts over the S3 protocol)",
	}
	cmd.AddCommand(newS3CredentialsCmd(), newS3ServeCmd())
	return cmd
}

// newS3ServeCmd runs only the embedded S3 server, over <data-dir>/objects, until
// interrupted: an S3 endpoint in its own process for external-mode tests and for sharing
// a box's artifacts without running the box.
func newS3ServeCmd() *cobra.Command {
	var dataDir, listen, access, secret string
	cmd := &cobra.Command{
		Use:    "serve",
		Short:  "Run only the embedded S3 server over <data-dir>/objects",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			abs, err := filepath.Abs(dataDir)
			if err != nil {
				return err
			}
			srv, err := s3server.New(s3server.Options{
				Root:            filepath.Join(abs, "objects"),
				Listen:          listen,
				CredentialsFile: filepath.Join(abs, CredentialsFileName),
				EndpointFile:    filepath.Join(abs, EndpointFileName),
				AccessKey:       access,
				SecretKey:       secret,
				Logger:          slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)),
			})
			if err != nil {
				return usageErr("%v", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := srv.Start(ctx); err != nil {
				return err
			}
			a, _ := srv.Credentials()
			fmt.Fprintf(cmd.OutOrStdout(), "S3 endpoint %s (access key %s; 'kfp-box s3 credentials --data-dir %s' prints the secret)\n", srv.Endpoint(), a, abs)
			<-ctx.Done()
			stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			return srv.Stop(stopCtx)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", envOr("KFPBOX_DATA_DIR", appliance.DefaultDataDir()), "data directory (env KFPBOX_DATA_DIR)")
	cmd.Flags().StringVar(&listen, "s3-listen", envOr("KFPBOX_S3_LISTEN", s3server.DefaultListen), "S3 listen address; non-loopback needs --access-key and --secret-key (env KFPBOX_S3_LISTEN)")
	cmd.Flags().StringVar(&access, "access-key", os.Getenv("KFPBOX_S3_ACCESS_KEY"), "root access key instead of the generated one (env KFPBOX_S3_ACCESS_KEY)")
	cmd.Flags().StringVar(&secret, "secret-key", os.Getenv("KFPBOX_S3_SECRET_KEY"), "root secret key instead of the generated one (env KFPBOX_S3_SECRET_KEY)")
	return cmd
}

func newS3CredentialsCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "credentials",
		Short: "Print the embedded S3 endpoint and its credentials",
		Long: `Prints the endpoint, access key and secret key of the S3 server kfp-box serve embeds.
They are generated at the first start and kept in <data-dir>/` + CredentialsFileName + ` (mode 0600),
so this command reads that file and needs the permission to.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := filepath.Join(dataDir, CredentialsFileName)
			c, err := s3server.LoadCredentials(path)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("no S3 credentials at %s: start 'kfp-box serve --data-dir %s' once to create them", path, dataDir)
			}
			if err != nil {
				return err
			}
			endpoint, err := s3server.LoadEndpoint(filepath.Join(dataDir, EndpointFileName))
			if err != nil {
				endpoint = c.Endpoint // kept there by earlier versions
			}
			if endpoint == "" {
				endpoint = "http://" + s3server.DefaultListen
			}
			region := c.Region
			if region == "" {
				region = "us-east-1"
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "endpoint:   %s\n", endpoint)
			fmt.Fprintf(out, "access key: %s\n", c.AccessKey)
			fmt.Fprintf(out, "secret key: %s\n", c.SecretKey)
			fmt.Fprintf(out, "region:     %s\n", region)
			fmt.Fprintf(out, "bucket:     %s\n\n", s3server.DefaultBucket)
			fmt.Fprintf(out, "example:\n  AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s aws s3 ls --endpoint-url %s s3://%s/\n",
				c.AccessKey, c.SecretKey, endpoint, s3server.DefaultBucket)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", envOr("KFPBOX_DATA_DIR", appliance.DefaultDataDir()), "data directory of the box (env KFPBOX_DATA_DIR)")
	return cmd
}
