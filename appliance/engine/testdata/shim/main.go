// Command shim is a minimal host-runtime shim for the engine's tests and benchmarks: a
// binary that links only the host runtime spends about 1 ms in package init, while the
// test binary or the kfp-box binary (gin, cel-go, versitygw's kafka-go...) spends about
// 40 ms, and far more under load, on every task start.
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
