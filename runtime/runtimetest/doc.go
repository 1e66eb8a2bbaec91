// Package runtimetest is the conformance suite every runtime backend must pass.
//
// A backend's own tests call Run with a constructor:
//
//	func TestConformance(t *testing.T) {
//		runtimetest.Run(t, func(t *testing.T) runtime.Runtime {
//			rt, err := host.New(ctx, runtime.Options{DataDir: runtimetest.DataDir(t)})
//			...
//			return rt
//		}, runtimetest.Options{})
//	}
//
// The constructor may be called more than once with the same *testing.T: the restart cases
// close the first Runtime and open a second one, which must see the same tasks (same data
// directory, same containerd namespace), exactly as after a restart of kfp-box. DataDir
// gives one directory per test for that purpose.
//
// The suite only uses commands a busybox image has (sh, echo, cat, dd, sleep, id, pwd), so
// container backends pass an Options.Image holding busybox. It owns nothing outside the
// temporary directories of the test and the tasks it starts, which it kills and deletes.
package runtimetest
