package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the box: KFP API, UI, engine, object storage and task runtime",
		Long: `Run the box in the foreground until SIGINT or SIGTERM.

Every flag can also be set as KFPBOX_<FLAG> in the environment (for example KFPBOX_DATA_DIR)
or as a key in the YAML file given by --config. Precedence: defaults < file < environment <
flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, _ := cmd.Flags().GetString("config")
			cfg, err := appliance.Load(file, os.Getenv, cmd.Flags())
			if err != nil {
				if errors.Is(err, appliance.ErrConfig) {
					return &ExitError{Code: 2, Err: err}
				}
				return err
			}
			logger := newLogger(cfg, cmd.ErrOrStderr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			box, err := appliance.New(ctx, cfg, logger)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "kfp-box %s serving on http://%s (data in %s)\n", appliance.Version, box.Addr(), cfg.DataDir)
			if ep, access, _, ok := box.S3(); ok {
				// Never the secret key: stdout ends up in service logs.
				fmt.Fprintf(cmd.OutOrStdout(), "S3 endpoint %s  access key %s  (the secret key: kfp-box s3 credentials --data-dir %s)\n", ep, access, cfg.DataDir)
			}
			werr := box.Wait(ctx)
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			logger.Info("shutting down")
			return errors.Join(werr, box.Shutdown(sctx))
		},
	}
	appliance.AddFlags(cmd.Flags())
	return cmd
}

func newLogger(cfg appliance.Config, w interface{ Write([]byte) (int, error) }) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "kfp-box %s\n", appliance.Version)
		},
	}
}
