package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kfp-box/kfp-box/appliance/pyenv"
	"github.com/kfp-box/kfp-box/storage/wheelhouse"
	"github.com/kfp-box/kfp-box/storage/wheelhouse/wheeltest"
)

// pyBox is one wheelhouse holding the shared KFP SDK wheels, served on loopback, and one
// host Python environment manager, shared by every test of the process that runs
// lightweight Python components: their cached environments are built once.
type pyBox struct {
	wheels *wheelhouse.Store
	srv    *httptest.Server
	mgr    *pyenv.Manager
	interp pyenv.Interpreter
	err    string
}

var (
	pyOnce   sync.Once
	pyShared *pyBox
	pyDir    string
)

// testPython is the interpreter the tests give host tasks: $KFPBOX_TEST_PYTHON, else
// Debian's /usr/bin/python3 (externally managed, PEP 668), which scripts/ensure-deps.sh
// installs with the packages kfp needs.
func testPython() string {
	if p := os.Getenv("KFPBOX_TEST_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// sharedPython returns the process's pyBox, making it the first time. It skips the test
// (fails under CI=true) when the wheels or a usable host Python are missing.
func sharedPython(t testing.TB) *pyBox {
	t.Helper()
	wheels := wheeltest.SharedWheels(t, repoRoot())
	pyOnce.Do(func() {
		b := &pyBox{}
		pyShared = b
		d, err := os.MkdirTemp("", "kfpbox-py-")
		if err != nil {
			b.err = err.Error()
			return
		}
		pyDir = d
		b.wheels, err = wheelhouse.Open(filepath.Join(d, "wheelhouse"), nil)
		if err != nil {
			b.err = err.Error()
			return
		}
		files, _ := filepath.Glob(filepath.Join(wheels, "*.whl"))
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				b.err = err.Error()
				return
			}
			_, err = b.wheels.Import(filepath.Base(f), fh, "")
			fh.Close()
			if err != nil {
				b.err = err.Error()
				return
			}
		}
		mux := http.NewServeMux()
		mux.Handle("/pypi/", &wheelhouse.Index{Store: b.wheels, Prefix: "/pypi"})
		b.srv = httptest.NewServer(mux)
		b.interp = pyenv.Probe(context.Background(), testPython())
		if b.interp.Problem != "" {
			b.err = b.interp.Problem
			return
		}
		b.mgr = pyenv.NewManager(pyenv.Config{Interpreter: b.interp, Dir: filepath.Join(d, "pyenv"), IndexURL: b.indexURL, Logger: testLogger()})
	})
	if pyShared.err != "" {
		msg := "host Python for lightweight components: " + pyShared.err + " (scripts/ensure-deps.sh installs it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return pyShared
}

func (b *pyBox) indexURL() string { return b.srv.URL + "/pypi/simple/" }

// closePython stops the shared index and removes its files (TestMain).
func closePython() {
	if pyShared != nil && pyShared.srv != nil {
		pyShared.srv.Close()
	}
	if pyDir != "" {
		_ = os.RemoveAll(pyDir)
	}
}
