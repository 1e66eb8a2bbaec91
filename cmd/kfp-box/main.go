// Command kfp-box runs Kubeflow Pipelines on one machine. All logic lives in appliance/cli.
package main

import (
	"os"

	_ "github.com/kfp-box/kfp-box/appliance/builtins" // backends register themselves

	"github.com/kfp-box/kfp-box/appliance/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
