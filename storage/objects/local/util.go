package local

import (
	"errors"
	"math/rand/v2"
	"syscall"
)

func randUint() uint64 { return rand.Uint64() }

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
