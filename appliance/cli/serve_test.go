package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	// The host runtime re-executes this test binary as its shim; the package's init
	// serves that role.
	_ "github.com/kfp-box/kfp-box/appliance/builtins"
	"github.com/kfp-box/kfp-box/internal/syncbuf"
	"github.com/kfp-box/kfp-box/storage/objects/s3server"
)

// TestServePrintsNoSecret runs `kfp-box serve` at debug level, twice (the second start
// reads the stored credentials), and looks for the S3 secret key in everything it
// printed: it must say where to read the key, never print it.
func TestServePrintsNoSecret(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("serve with the host runtime and its mount namespaces needs root")
	}
	dir := t.TempDir()
	var out, errOut syncbuf.Buffer
	for round := 0; round < 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		root := NewRoot(&out, &errOut)
		root.SetArgs([]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--s3-listen", "127.0.0.1:0",
			"--runtime", "host", "--log-level", "debug"})
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		deadline := time.Now().Add(60 * time.Second)
		for strings.Count(out.String(), "S3 endpoint") <= round {
			select {
			case err := <-done:
				cancel()
				t.Fatalf("serve ended: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("serve printed no S3 line in 60 s:\n%s", out.String())
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("serve: %v", err)
		}
	}
	creds, err := s3server.LoadCredentials(filepath.Join(dir, CredentialsFileName))
	if err != nil {
		t.Fatal(err)
	}
	all := out.String() + errOut.String()
	if strings.Contains(all, creds.SecretKey) {
		t.Errorf("serve printed the S3 secret key:\n%s", all)
	}
	if !strings.Contains(out.String(), "kfp-box s3 credentials --data-dir "+dir) || !strings.Contains(out.String(), creds.AccessKey) {
		t.Errorf("serve does not say where to read the S3 secret key:\n%s", out.String())
	}
}

// servedBox is a `kfp-box serve` running in this process for one test.
type servedBox struct {
	dir       string
	api, s3   string // host:port
	out, errs *syncbuf.Buffer
}

// startServe runs `kfp-box serve` with the host runtime on loopback ports until the test
// ends, and returns its addresses once it printed how to connect. The embedded S3 server
// changes the working directory; it is restored when the test ends.
func startServe(t *testing.T, extra ...string) *servedBox {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("serve with the host runtime and its mount namespaces needs root (run the tests as root, as CI does)")
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	b := &servedBox{dir: t.TempDir(), out: &syncbuf.Buffer{}, errs: &syncbuf.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	root := NewRoot(b.out, b.errs)
	root.SetArgs(append([]string{"serve", "--data-dir", b.dir, "--listen", "127.0.0.1:0", "--s3-listen", "127.0.0.1:0", "--runtime", "host"}, extra...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = os.Chdir(wd)
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(b.out.String(), "S3 endpoint") {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve ended: %v\nstdout:\n%s\nstderr:\n%s", err, b.out.String(), b.errs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no S3 line in 60 s:\n%s", b.out.String())
		}
	}
	for _, line := range strings.Split(b.out.String(), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			switch {
			case f[i] == "serving" && f[i+1] == "on" && i+2 < len(f):
				b.api = strings.TrimPrefix(strings.TrimPrefix(f[i+2], "http://"), "https://")
			case f[i] == "S3" && f[i+1] == "endpoint" && i+2 < len(f):
				b.s3 = strings.TrimPrefix(f[i+2], "http://")
			}
		}
	}
	if b.api == "" || b.s3 == "" {
		t.Fatalf("no API or S3 address in serve's output:\n%s", b.out.String())
	}
	return b
}
