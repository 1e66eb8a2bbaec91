// Package cli is kfp-box's command line: `serve` runs the box, the other commands are thin
// clients of its HTTP API or of local backends (images, doctor).
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// ExitError carries an exit code: 1 for a failure, 2 for usage or input errors.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// usageErr marks err as a usage or input error (exit 2).
func usageErr(format string, args ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, args...)}
}

// defaultServer is the box client commands talk to without --server or KFPBOX_SERVER (a
// variable so that tests can point it at a box of their own).
var defaultServer = "http://127.0.0.1:8888"

// commands are the subcommand constructors; files of this package add theirs in init.
var commands []func() *cobra.Command

// register adds a subcommand constructor.
func register(f func() *cobra.Command) { commands = append(commands, f) }

// NewRoot builds the command tree.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "kfp-box",
		Short: "Kubeflow Pipelines on one machine, without Kubernetes",
		Long: `kfp-box runs the Kubeflow Pipelines v2 experience on one machine: the KFP v2beta1 REST API
(the kfp Python SDK and CLI work unchanged), a DAG engine, metadata in a bbolt file, embedded
S3 object storage, one container per task through containerd, GPUs found by NVML, and a web UI.

Start it with 'kfp-box serve'; the other commands talk to a running box (--server).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().String("server", envOr("KFPBOX_SERVER", defaultServer), "URL of the kfp-box server for client commands (env KFPBOX_SERVER)")
	root.PersistentFlags().String("token-file", "", "file holding the bearer token for client commands (env KFPBOX_TOKEN_FILE; also KFPBOX_TOKEN, KF_PIPELINES_SA_TOKEN_PATH; default: the box's admin token when readable)")
	root.PersistentFlags().String("ca-cert", "", "PEM certificate to trust for an https server (env KFPBOX_CA_CERT; default: the box's own self-signed one when readable)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &ExitError{Code: 2, Err: err} })
	root.AddCommand(newServeCmd(), newVersionCmd())
	for _, f := range commands {
		root.AddCommand(f())
	}
	// `kfp-box run logs` is the same command as `kfp-box logs`.
	for _, c := range root.Commands() {
		if c.Name() == "run" {
			c.AddCommand(newLogsCmd())
		}
	}
	return root
}

// Main runs the CLI and returns the process exit code.
func Main(args []string) int {
	root := NewRoot(os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "kfp-box: "+strings.TrimSpace(err.Error()))
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if isUsage(err) {
		return 2
	}
	return 1
}

// isUsage recognises cobra's own argument errors.
func isUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "requires at most", "invalid argument", "flag needs an argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
