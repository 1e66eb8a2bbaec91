package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance/auth"
)

func init() { register(newTokenCmd) }

type wireToken struct {
	Name      string `json:"name"`
	Scope     string `json:"scope"`
	Token     string `json:"token,omitempty"`
	CreatedAt string `json:"created_at,omitempty"`
	ExpiresAt string `json:"expires_at,omitempty"`
	Session   bool   `json:"session,omitempty"`
}

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the box's API tokens (create, ls, revoke), UI login links and kubeconfigs",
		Long: `Tokens let people and programs use the box: the kfp SDK (existing_token=, or a kubeconfig),
the kfp CLI (--existing-token), kubectl (a kubeconfig) and kfp-box itself (--token-file).
A token has admin scope (everything the box's owner can do) or read scope (reads, but not
Secrets and not tokens). The box keeps only a hash: a token is shown once, at creation.
These commands need an admin token (the box's own is found automatically by its user).`,
	}
	cmd.AddCommand(newTokenCreateCmd(), newTokenLsCmd(), newTokenRevokeCmd(), newTokenLoginLinkCmd(), newTokenKubeconfigCmd())
	return cmd
}

func newTokenCreateCmd() *cobra.Command {
	var scope, ttl string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a named token and print it (shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newAPIClient(cmd)
			var t wireToken
			if err := c.do(cmd.Context(), http.MethodPost, "/tokens", map[string]string{"name": args[0], "scope": scope, "ttl": ttl}, &t); err != nil {
				return apiExit(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.Token)
			exp := "never"
			if t.ExpiresAt != "" {
				exp = shortTime(t.ExpiresAt)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "token %q (%s scope, expires %s): keep it secret; it is not shown again\n", t.Name, t.Scope, exp)
			return nil
		},
	}
	cmd.Flags().StringVar(&scope, "scope", string(auth.ScopeRead), "admin or read")
	cmd.Flags().StringVar(&ttl, "ttl", "", "lifetime such as 24h or 720h (default: does not expire)")
	return cmd
}

func newTokenLsCmd() *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the tokens and UI sessions (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			c := newAPIClient(cmd)
			var l struct {
				Tokens []wireToken `json:"tokens"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/tokens", nil, &l); err != nil {
				return apiExit(err)
			}
			if *output == "json" {
				return printJSON(cmd.OutOrStdout(), l)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSCOPE\tKIND\tCREATED\tEXPIRES")
			for _, t := range l.Tokens {
				kind, exp := "token", "never"
				if t.Session {
					kind = "ui session"
				}
				if t.ExpiresAt != "" {
					exp = shortTime(t.ExpiresAt)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Scope, kind, shortTime(t.CreatedAt), exp)
			}
			return tw.Flush()
		},
	}
	output = outputFlag(cmd)
	return cmd
}

func newTokenRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token or a UI session at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newAPIClient(cmd)
			if err := c.do(cmd.Context(), http.MethodDelete, "/tokens/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return apiExit(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	}
}

func newTokenLoginLinkCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "login-link",
		Short: "Print a one-time link that logs a browser in to the web UI (valid 15 minutes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := newAPIClient(cmd)
			var r struct {
				Path string `json:"path"`
			}
			if err := c.do(cmd.Context(), http.MethodPost, "/login-codes", nil, &r); err != nil {
				return apiExit(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.base+r.Path)
			return nil
		},
	}
}

func newTokenKubeconfigCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Write a kubeconfig for this server and token (kubectl, and kfp.Client() without a host)",
		Long: `Write a kubeconfig that points kubectl at the box with the token this command uses
(--token-file, KFPBOX_TOKEN, or the box's admin token). With KUBECONFIG set to it, the kfp
SDK's kfp.Client() and the kfp CLI need no host and no token: they reach the box through the
Kubernetes service-proxy path the box serves. The file is written with mode 0600.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := newAPIClient(cmd)
			if c.err != nil {
				return c.err
			}
			if c.creds.token == "" {
				return usageErr("no token: pass --token-file FILE")
			}
			var ca []byte
			if strings.HasPrefix(c.base, "https:") {
				ca = c.creds.caPEM
			}
			data := auth.Kubeconfig(c.base, c.creds.token, ca, "kubeflow")
			if out == "" || out == "-" {
				_, err := cmd.OutOrStdout().Write(data)
				return err
			}
			if err := os.WriteFile(out, data, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: export KUBECONFIG=%s\n", out, out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default: standard output)")
	return cmd
}
