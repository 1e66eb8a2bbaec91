// Command kfp-box runs Kubeflow Pipelines on one machine. All logic lives in appliance/cli.
package main

import (
	"os"

	"github.com/kfp-box/kfp-box/appliance/builtins"
	"github.com/kfp-box/kfp-box/appliance/cli"
)

func main() {
	if code, handled := builtins.Reexec(os.Args); handled {
		os.Exit(code)
	}
	os.Exit(cli.Main(os.Args[1:]))
}
