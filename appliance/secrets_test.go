package appliance_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/internal/syncbuf"
	"github.com/kfp-box/kfp-box/storage/objects/s3server"
)

// TestBoxLogsHoldNoSecret runs a box logging at debug level through a task that uses a
// Kubernetes Secret as an environment variable and as a file, and looks for the secret and
// the S3 secret key in everything the box logged.
func TestBoxLogsHoldNoSecret(t *testing.T) {
	var logs syncbuf.Buffer
	cfg := appliance.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen, cfg.S3Listen, cfg.Runtime = "127.0.0.1:0", "127.0.0.1:0", "host"
	cfg.LogLevel = "debug"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := appliance.New(ctx, cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = a.Shutdown(sctx)
	})
	b := boxFor(t, a, cfg.DataDir)

	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	token := "tok-" + hex.EncodeToString(raw)
	secret := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"box-token"},"stringData":{"token":"` + token + `"}}`
	if code := b.do("POST", "http://"+a.Addr()+"/api/v1/namespaces/kubeflow/secrets", strings.NewReader(secret), "application/json", nil); code != http.StatusCreated {
		t.Fatalf("create secret: HTTP %d", code)
	}
	r := b.runPipeline(b.upload(filepath.Join(testdata, "secret_use.yaml"), "secret-use"), map[string]any{})
	if r.State != "SUCCEEDED" {
		t.Fatalf("run ended %s: %+v", r.State, r.RunDetails.TaskDetails)
	}
	sctx, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	if err := a.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}

	creds, err := s3server.LoadCredentials(filepath.Join(cfg.DataDir, appliance.S3CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "level=DEBUG") {
		t.Fatalf("no debug logging captured:\n%s", out)
	}
	for name, s := range map[string]string{"the Kubernetes Secret": token, "the S3 secret key": creds.SecretKey} {
		if strings.Contains(out, s) {
			t.Errorf("the box logged %s:\n%s", name, out)
		}
	}
	// The secret reached the task, and the task's own log is the only place it ran.
	tasks, _ := filepath.Glob(filepath.Join(cfg.DataDir, "logs", r.RunID, "*"))
	found := false
	for _, p := range tasks {
		b, _ := os.ReadFile(p)
		found = found || strings.Contains(string(b), "secret of 36 characters matches")
	}
	if !found {
		t.Errorf("the task did not see the secret (task logs %v)", tasks)
	}
}
