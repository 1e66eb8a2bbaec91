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
