package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/storage/kv"
)

func init() { register(newDatastoreCmd) }

func newDatastoreCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "datastore",
		Short: "Move the box's metadata between its bbolt file and PostgreSQL or MySQL",
	}
	cmd.AddCommand(newDatastoreMigrateCmd())
	return cmd
}

func newDatastoreMigrateCmd() *cobra.Command {
	var to, from, dataDir string
	cmd := &cobra.Command{
		Use:   "migrate (--to URL | --from URL)",
		Short: "Copy <data-dir>/meta.db to an SQL datastore (--to) or back (--from), verified",
		Long: `Copy every key of the box's metadata from its bbolt file (<data-dir>/meta.db) into an
SQL datastore served through kine (--to postgres://... or mysql://...), or from such a
datastore into a new meta.db (--from URL). The box must be stopped, and the destination must
hold no metadata yet. The copy is verified: both sides are read again and must hold the same
number of keys with the same SHA-256 digest over every key and value.

Then serve with --datastore-endpoint URL (or datastore_endpoint in the configuration file)
after --to, or without it after --from. Revisions are the destination's own, so Kubernetes
clients of the box see new resourceVersions and list again.`,
		Example: `  kfp-box datastore migrate --to 'postgres://kfp:PASSWORD@127.0.0.1:5432/kfp?sslmode=disable'
  kfp-box datastore migrate --from 'postgres://kfp:PASSWORD@127.0.0.1:5432/kfp?sslmode=disable'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (to == "") == (from == "") {
				return usageErr("datastore migrate: give exactly one of --to URL or --from URL")
			}
			url := to + from
			if id, err := appliance.DatastoreBackend(url); err != nil || id == "bolt" {
				return usageErr("datastore migrate: %s: want postgres://... or mysql://...", appliance.RedactDSN(url))
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			return migrateDatastore(ctx, cmd, dataDir, url, to != "")
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "copy <data-dir>/meta.db into this datastore URL")
	cmd.Flags().StringVar(&from, "from", "", "copy this datastore URL into a new <data-dir>/meta.db")
	cmd.Flags().StringVar(&dataDir, "data-dir", envOr("KFPBOX_DATA_DIR", appliance.Defaults().DataDir), "data directory (env KFPBOX_DATA_DIR)")
	return cmd
}

func migrateDatastore(ctx context.Context, cmd *cobra.Command, dataDir, url string, toSQL bool) error {
	path := filepath.Join(dataDir, "meta.db")
	if !toSQL {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return err
		}
	} else if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("datastore migrate: no metadata to copy: %w", err)
	}
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	bolt, err := kv.Open(octx, "bolt", kv.Options{Path: path})
	cancel()
	if err != nil {
		return fmt.Errorf("datastore migrate: open %s (is the box running? stop it first): %w", path, err)
	}
	defer bolt.Close()
	octx, cancel = context.WithTimeout(ctx, time.Minute)
	sql, err := kv.Open(octx, "kine", kv.Options{Path: url})
	cancel()
	if err != nil {
		return fmt.Errorf("datastore migrate: %w", err)
	}
	defer sql.Close()
	src, dst, srcName, dstName := bolt, sql, path, appliance.RedactDSN(url)
	if !toSQL {
		src, dst, srcName, dstName = sql, bolt, dstName, srcName
	}
	copied, err := kv.Copy(ctx, dst, src)
	if errors.Is(err, kv.ErrNotEmpty) {
		return fmt.Errorf("datastore migrate: %s already holds metadata; copy only into an empty datastore", dstName)
	}
	if err != nil {
		return fmt.Errorf("datastore migrate: copy %s to %s: %w", srcName, dstName, err)
	}
	srcSum, err := kv.Digest(ctx, src)
	if err != nil {
		return fmt.Errorf("datastore migrate: verify %s: %w", srcName, err)
	}
	dstSum, err := kv.Digest(ctx, dst)
	if err != nil {
		return fmt.Errorf("datastore migrate: verify %s: %w", dstName, err)
	}
	if srcSum != copied || dstSum != copied {
		return fmt.Errorf("datastore migrate: verification failed: copied %d keys (sha256 %s), %s holds %d (%s), %s holds %d (%s)",
			copied.Keys, copied.Digest, srcName, srcSum.Keys, srcSum.Digest, dstName, dstSum.Keys, dstSum.Digest)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "copied %d keys (%s) from %s to %s\n", copied.Keys, humanize.IBytes(uint64(copied.Bytes)), srcName, dstName)
	fmt.Fprintf(out, "verified: both hold %d keys, sha256 %s\n", dstSum.Keys, dstSum.Digest)
	if toSQL {
		fmt.Fprintln(out, "serve with --datastore-endpoint set to the URL given to --to")
	} else {
		fmt.Fprintf(out, "serve without --datastore-endpoint to use %s\n", path)
	}
	return nil
}
