package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance"
)

func init() { register(newConfigCmd) }

// newConfigCmd is `kfp-box config`: the configuration serve would run with.
func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show the configuration 'serve' would run with, and the reference of every key"}
	cmd.AddCommand(newConfigShowCmd(), newConfigSchemaCmd())
	return cmd
}

func newConfigShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show [flags as for serve]",
		Short: "Print the merged configuration, each value with where it came from",
		Long: `Print the configuration 'kfp-box serve' would run with, given the same flags, KFPBOX_*
environment and configuration file: each key with its value and its source (default, file
PATH, env NAME or flag --NAME). Backends' settings are nested under their family and name
(runtime: {backend: ..., containerd: {...}, host: {...}}); 'kfp-box config schema' documents
every key. The file is --config, else KFPBOX_CONFIG, else ` + appliance.DefaultConfigFile + `
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
			for _, w := range cfg.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+w)
			}
			settings := cfg.Settings(src)
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), settings)
			}
			return printSettingsYAML(cmd.OutOrStdout(), settings)
		},
	}
	appliance.AddFlags(cmd.Flags())
	cmd.Flags().StringP("output", "o", "yaml", "output format: yaml (with the sources as comments) or json")
	return cmd
}

// printSettingsYAML writes settings as a YAML configuration file, dotted keys nested
// ("runtime.containerd.address" under runtime: and containerd:), each value followed by its
// source as a comment.
func printSettingsYAML(w io.Writer, settings []appliance.Setting) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var open []string // the mapping keys the previous line is nested in
	for _, s := range settings {
		path := strings.Split(s.Key, ".")
		parents, leaf := path[:len(path)-1], path[len(path)-1]
		same := 0
		for same < len(open) && same < len(parents) && open[same] == parents[same] {
			same++
		}
		for i := same; i < len(parents); i++ {
			fmt.Fprintf(tw, "%s%s:\n", strings.Repeat("  ", i), parents[i])
		}
		open = parents
		v := s.Value
		if s.String {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(tw, "%s%s: %s\t# %s\n", strings.Repeat("  ", len(parents)), leaf, v, s.Source)
	}
	return tw.Flush()
}

func newConfigSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print every configuration key with its flag, environment variable, default and doc (Markdown)",
		Long: `Print the configuration reference as Markdown: the top-level keys, then each backend
family (runtime) with the settings of every backend linked into this binary, generated
from the code that reads them (the backends' typed sections and their doc tags).
docs/configuration.md is this output; a test keeps it so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return appliance.WriteSchema(cmd.OutOrStdout())
		},
	}
}
