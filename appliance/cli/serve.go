package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/appliance/api"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the box: KFP API, UI, engine, object storage and task runtime",
		Long: `Run the box in the foreground until SIGINT or SIGTERM.

Every flag can also be set as KFPBOX_<FLAG> in the environment (for example KFPBOX_DATA_DIR)
or as a key in the YAML file given by --config (default: /etc/kfp-box/config.yaml when it
exists). Precedence: defaults < file < environment < flags. 'kfp-box config show' prints the
merged result with the source of each value.

Every request needs a token (--auth token, the default), on loopback too: on a shared
machine every local user reaches loopback. The admin token is made at the first start in
$DATA/auth/admin-token (mode 0600) and a kubeconfig for it in $DATA/auth/kubeconfig; the
box prints how to connect, never the token. --auth none is for demos on loopback only.
Requests whose Host is not an IP address, localhost or an --allowed-host name are refused
(DNS rebinding), and so are requests a browser makes for another site's page. A listener
beyond loopback serves HTTPS: --tls-cert/--tls-key, or a self-signed certificate made in
$DATA/tls. See docs/security.md.`,
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
			for _, w := range cfg.Warnings {
				logger.Warn("configuration: " + w)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			box, err := appliance.New(ctx, cfg, logger)
			if err != nil {
				return err
			}
			printConnect(cmd.OutOrStdout(), box, cfg)
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

// printConnect tells the owner how to connect: the token's file (never the token), the SDK,
// kfp CLI and kubectl lines, and a one-time UI login link.
func printConnect(w io.Writer, box *appliance.Appliance, cfg appliance.Config) {
	url := box.URL()
	fmt.Fprintf(w, "kfp-box %s serving on %s (data in %s)\n", appliance.Version, url, cfg.DataDir)
	if fp, certFile, self := box.TLSFingerprint(); fp != "" {
		kind := "certificate"
		if self {
			kind = "self-signed certificate"
		}
		where := "HTTPS"
		if box.URL() != box.TLSURL() {
			where = "HTTPS on the same port (" + box.TLSURL() + ", for kubectl)"
		}
		fmt.Fprintf(w, "%s: %s %s\n  SHA-256 fingerprint %s\n", where, kind, certFile, fp)
	}
	if !box.AuthEnabled() {
		fmt.Fprintln(w, "Authentication is OFF (--auth none): every local user and program can act as this box's owner.")
	} else {
		tok := box.AdminTokenPath()
		fmt.Fprintf(w, "Requests need a token. The admin token is in %s (readable by %s only).\n", tok, ownerName())
		fmt.Fprintf(w, "  kubectl, kfp.Client() and the kfp CLI:  export KUBECONFIG=%s\n", box.KubeconfigPath())
		fmt.Fprintf(w, "  kfp SDK with a host:  kfp.Client(host=%q, existing_token=open(%q).read().strip())\n", url, tok)
		fmt.Fprintf(w, "  kfp-box client commands find the token themselves (or --token-file)\n")
		if p := box.LoginPath(); p != "" {
			fmt.Fprintf(w, "  web UI (one-time link, %d minutes): %s%s\n", int(api.LoginCodeTTL/time.Minute), url, p)
		}
	}
	if ep, access, _, ok := box.S3(); ok {
		// Never the secret key: stdout ends up in service logs.
		fmt.Fprintf(w, "S3 endpoint %s  access key %s  (the secret key: kfp-box s3 credentials --data-dir %s)\n", ep, access, cfg.DataDir)
	}
}

// ownerName is the user running the box, for messages.
func ownerName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "the box's user"
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
