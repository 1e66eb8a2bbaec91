package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance/client"
	"github.com/kfp-box/kfp-box/appliance/lint"
	"github.com/kfp-box/kfp-box/appliance/transfer"
)

func init() {
	register(func() *cobra.Command { return newTransferCmd(true) })
	register(func() *cobra.Command { return newTransferCmd(false) })
}

// remoteFlags are the options that reach the other KFP endpoint of push and pull.
type remoteFlags struct {
	url, token, kubeconfig, kubeContext, kfpNamespace, namespace string
}

// newTransferCmd is `kfp-box push` (push true) or `kfp-box pull`.
func newTransferCmd(push bool) *cobra.Command {
	var rf remoteFlags
	var o transfer.Options
	var target string
	use, dir, urlFlag := "push", "target", "to"
	short := "Copy pipelines (and experiments, recurring runs) from the box to a KFP cluster or another box"
	if !push {
		use, dir, urlFlag = "pull", "source", "from"
		short = "Copy pipelines (and experiments, recurring runs) from a KFP cluster or another box into the box"
	}
	cmd := &cobra.Command{
		Use:   use + " --" + urlFlag + " URL [NAME...]",
		Short: short,
		Long: short + `.

NAME selects pipelines by name or glob pattern (default: all); --filter takes a KFP filter
(JSON). A version is copied unless the other side's pipeline already has a version with the same
spec digest (so running it again changes nothing); a changed spec becomes one new version, and a
version name already used there for another spec gets the digest appended (reported). With
--experiments the experiments are copied by name; with --recurring-runs the selected pipelines'
recurring runs are recreated, paused unless --enable-recurring-runs. Each object is reported as it
is handled, then a summary; the exit code is 1 when anything failed.

The ` + dir + ` is reached like the kfp SDK reaches it: --token, --token-file, or --kubeconfig
(the context's token, token file or exec credential; without --` + urlFlag + ` through the cluster's
service proxy to KFP in --kfp-namespace); --namespace is the user namespace of a multi-user KFP.
The box is --server, with its own admin token when readable, --box-token-file or KFPBOX_TOKEN.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			output, _ := cmd.Flags().GetString("output")
			if err := checkOutput(output); err != nil {
				return err
			}
			if push {
				t, err := lint.ParseTarget(target)
				if err != nil {
					return usageErr("--target: %v", err)
				}
				o.Lint, o.Target = true, t
			}
			remote, err := rf.client(cmd, urlFlag)
			if err != nil {
				return err
			}
			boxCreds, cerr := loadCredentialsFrom(cmd, "box-token-file", "box-ca-cert")
			box := apiClientWith(cmd, boxCreds, cerr)
			if box.err != nil {
				return box.err
			}
			src, dst := box.kfp, remote
			if !push {
				src, dst = remote, box.kfp
			}
			progress := cmd.OutOrStdout()
			if output == "json" {
				progress = cmd.ErrOrStderr()
			}
			o.Names, o.Progress = args, progress
			rep, err := transfer.Copy(cmd.Context(), src, dst, o)
			if err != nil {
				return transferErr(err)
			}
			if output == "json" {
				if err := printJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			}
			if rep.Refused {
				if output != "json" {
					_ = printFindings(cmd.OutOrStdout(), rep.Findings)
				}
				return &ExitError{Code: 1, Err: fmt.Errorf("push refused: %d lint finding(s) for %s (see 'kfp-box lint'); fix them or pass --force", len(rep.Findings), o.Target)}
			}
			if output != "json" {
				if len(rep.Findings) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "\npushed despite %d lint finding(s) (--force):\n", len(rep.Findings))
					_ = printFindings(cmd.OutOrStdout(), rep.Findings)
				}
				fmt.Fprintln(cmd.OutOrStdout())
				if err := rep.WriteSummary(cmd.OutOrStdout(), o.DryRun); err != nil {
					return err
				}
			}
			if n := rep.Failed(); n > 0 {
				return &ExitError{Code: 1, Err: fmt.Errorf("%s: %d object(s) failed", use, n)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&rf.url, urlFlag, "", "URL of the "+dir+": a KFP cluster's API (for example https://kfp.example.com) or another kfp-box")
	f.StringVar(&rf.token, "token", "", "bearer token for the "+dir+" (prefer --token-file: a flag is visible to other local users)")
	f.StringVar(&rf.kubeconfig, "kubeconfig", "", "kubeconfig whose token or exec credential reaches the "+dir+" (as kfp.Client() without a host)")
	f.StringVar(&rf.kubeContext, "context", "", "kubeconfig context (default: the current one)")
	f.StringVar(&rf.kfpNamespace, "kfp-namespace", "kubeflow", "namespace of KFP's ml-pipeline service, for --kubeconfig without --"+urlFlag)
	f.StringVar(&rf.namespace, "namespace", "", "user namespace of a multi-user KFP "+dir)
	f.String("box-token-file", "", "file holding the box's token (default: KFPBOX_TOKEN, or the box's admin token when readable)")
	f.String("box-ca-cert", "", "PEM certificate to trust for the box over https")
	f.StringVar(&o.Filter, "filter", "", `KFP filter (JSON) for the pipelines, e.g. {"predicates":[{"operation":"IS_SUBSTRING","key":"display_name","string_value":"train"}]}`)
	f.BoolVar(&o.Experiments, "experiments", false, "copy the experiments too (by display name)")
	f.BoolVar(&o.RecurringRuns, "recurring-runs", false, "copy the selected pipelines' recurring runs (and their experiments), paused")
	f.BoolVar(&o.EnableRecurringRuns, "enable-recurring-runs", false, "create copied recurring runs enabled instead of paused")
	f.BoolVar(&o.DryRun, "dry-run", false, "show what would be copied; change nothing")
	if push {
		f.BoolVar(&o.Force, "force", false, "push despite lint findings")
		f.StringVar(&target, "target", lint.DefaultTarget.String(), "KFP release the lint checks are for: kfp-2.N or kfp-2.x")
	}
	outputFlag(cmd)
	return cmd
}

// client builds the remote side's client. --token-file and --ca-cert (the root's flags)
// apply to it.
func (rf *remoteFlags) client(cmd *cobra.Command, urlFlag string) (*client.Client, error) {
	if rf.url == "" && rf.kubeconfig == "" {
		return nil, usageErr("--%s URL is required (or --kubeconfig, to reach KFP through the cluster's service proxy)", urlFlag)
	}
	tokenFile := ""
	if f := cmd.Flag("token-file"); f != nil {
		tokenFile = f.Value.String()
	}
	set := 0
	for _, v := range []string{rf.token, tokenFile, rf.kubeconfig} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		return nil, usageErr("give one of --token, --token-file and --kubeconfig")
	}
	o := client.Options{Server: rf.url, Token: rf.token, TokenFile: tokenFile, Kubeconfig: rf.kubeconfig,
		Context: rf.kubeContext, KFPNamespace: rf.kfpNamespace, Namespace: rf.namespace}
	if ca := cmd.Flag("ca-cert"); ca != nil && ca.Value.String() != "" {
		pem, err := os.ReadFile(ca.Value.String())
		if err != nil {
			return nil, usageErr("--ca-cert: %v", err)
		}
		o.CAPEM = pem
	}
	c, err := client.New(o)
	if err != nil {
		return nil, usageErr("--%s: %v", urlFlag, err)
	}
	return c, nil
}

// transferErr maps a copy that stopped (a side could not be listed) to an exit code: a
// refused token or request is the user's input (2), anything else a failure (1).
func transferErr(err error) error {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 {
		if ce.Status == 401 {
			return &ExitError{Code: 2, Err: fmt.Errorf("%v: the server refused the credentials (401)", err)}
		}
		return &ExitError{Code: 2, Err: err}
	}
	return err
}
