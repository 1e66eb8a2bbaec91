// Package builtins links kfp-box's backends into the binary by importing them for their
// init-time registration.
package builtins

import (
	_ "github.com/kfp-box/kfp-box/storage/kv/bolt" // bbolt metadata store
)
