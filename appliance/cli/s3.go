package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/storage/objects/s3server"
)

func init() { register(newS3Cmd) }

// CredentialsFileName is the embedded S3 server's credentials file inside the data
// directory.
const CredentialsFileName = "s3-credentials.json"

// newS3Cmd is `kfp-box s3`: facts about the embedded S3 endpoint.
func newS3Cmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "s3",
		Short: "The embedded S3 endpoint (artifacts over the S3 protocol)",
	}
	cmd.AddCommand(newS3CredentialsCmd())
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
			endpoint := c.Endpoint
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
