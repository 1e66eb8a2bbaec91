// Command shim is a minimal host-runtime shim for the engine's benchmarks: a binary that
// links only the host runtime starts in a few milliseconds, while a shim that links the
// whole box (gin pulls a 150 ms package init) costs that on every task start.
package main

import (
	"fmt"
	"os"

	"github.com/kfp-box/kfp-box/runtime/host"
)

func main() {
	if host.ShimMain() {
		return
	}
	fmt.Fprintln(os.Stderr, "shim: run by the host runtime only")
	os.Exit(2)
}
