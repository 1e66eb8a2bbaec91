package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance"
)

func init() { register(newConfigCmd) }

// newConfigCmd is `kfp-box config`: the configuration serve would run with.
func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show the configuration 'serve' would run with"}
	cmd.AddCommand(newConfigShowCmd())
	return cmd
}

func newConfigShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show [flags as for serve]",
		Short: "Print the merged configuration, each value with where it came from",
		Long: `Print the configuration 'kfp-box serve' would run with, given the same flags, KFPBOX_*
environment and configuration file: each key with its value and its source (default, file
PATH, env NAME or flag --NAME). The file is --config, else KFPBOX_CONFIG, else ` + appliance.DefaultConfigFile + `
when it exists (--config /dev/null reads none). The table output is itself a valid
configuration file. Passwords, secret keys and tokens inside values are shown as REDACTED.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			output, _ := cmd.Flags().GetString("output")
			if output != "yaml" && output != "json" {
				return usageErr("--output %q: want yaml or json", output)
			}
			file, _ := cmd.Flags().GetString("config")
			cfg, src, err := appliance.LoadWithSources(file, os.Getenv, cmd.Flags())
			if err != nil {
				if errors.Is(err, appliance.ErrConfig) {
					return &ExitError{Code: 2, Err: err}
				}
				return err
			}
			settings := cfg.Settings(src)
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), settings)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, s := range settings {
				v := s.Value
				if s.String {
					v = strconv.Quote(v)
				}
				fmt.Fprintf(tw, "%s: %s\t# %s\n", s.Key, v, s.Source)
			}
			return tw.Flush()
		},
	}
	appliance.AddFlags(cmd.Flags())
	cmd.Flags().StringP("output", "o", "yaml", "output format: yaml (with the sources as comments) or json")
	return cmd
}
