package appliance_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/storage/objects/s3server"
)

// s3ServerEnv makes the test binary act as a standalone S3 server: the external object
// store of TestBoxExternalS3, in a process of its own.
const s3ServerEnv = "KFPBOX_E2E_S3_SERVER"

const s3InfoPrefix = "S3-SERVER "

// runS3Server serves S3 over a temporary directory until stdin closes.
func runS3Server() int {
	dir, err := os.MkdirTemp("", "kfpbox-ext-s3-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	srv, err := s3server.New(s3server.Options{Root: filepath.Join(dir, "objects"), Listen: "127.0.0.1:0", CredentialsFile: filepath.Join(dir, "creds.json")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	access, secret := srv.Credentials()
	fmt.Printf("%s%s %s %s\n", s3InfoPrefix, srv.Endpoint(), access, secret)
	_, _ = io.Copy(io.Discard, os.Stdin)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = srv.Stop(sctx)
	return 0
}

// startExternalS3 starts the S3 server process and returns its endpoint and keys.
func startExternalS3(t *testing.T) (endpoint, access, secret string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), s3ServerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), s3InfoPrefix); ok {
			f := strings.Fields(line)
			if len(f) != 3 {
				t.Fatalf("S3 server process said %q", line)
			}
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return f[0], f[1], f[2]
		}
	}
	t.Fatal("the S3 server process exited without an endpoint")
	return "", "", ""
}

// TestBoxExternalS3 runs pipelines with an external S3 object store: a producer's artifact
// is staged out to the S3 server (another process), and a second box with an empty data
// directory imports it by URI and reads it, which works only when the engine staged it in.
func TestBoxExternalS3(t *testing.T) {
	endpoint, access, secret := startExternalS3(t)
	store := fmt.Sprintf("s3://mlpipeline?endpoint=%s&access_key=%s&secret_key=%s", endpoint, access, secret)
	external := func(c *appliance.Config) {
		c.Runtime = "host"
		c.ObjectStore = store
		c.S3Listen = "off"
	}

	producer := startBox(t, external)
	// The pipeline the other end-to-end tests run, producer and consumer of an artifact.
	pa := producer.upload(filepath.Join(projectTestdata, "pipelines", "params_and_artifacts.yaml"), "params-and-artifacts")
	if r := producer.runPipeline(pa, map[string]any{}); r.State != "SUCCEEDED" {
		t.Fatalf("params-and-artifacts with an external store ended %s: %+v", r.State, r.RunDetails.TaskDetails)
	}
	pid := producer.upload(filepath.Join(testdata, "limits.yaml"), "limits-probe")
	r := producer.runPipeline(pid, map[string]any{})
	if r.State != "SUCCEEDED" {
		t.Fatalf("producer run ended %s: %+v", r.State, r.RunDetails.TaskDetails)
	}
	var arts struct {
		Artifacts []struct {
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"artifacts"`
	}
	producer.do("GET", "/runs/"+r.RunID+"/artifacts", nil, "", &arts)
	var uri string
	for _, a := range arts.Artifacts {
		if a.Name == "report" {
			uri = a.URI
		}
	}
	if uri == "" {
		t.Fatalf("no report artifact: %+v", arts)
	}

	// The object is on the external server.
	mc, err := minio.New(strings.TrimPrefix(endpoint, "http://"), &minio.Options{Creds: credentials.NewStaticV4(access, secret, "")})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := mc.GetObject(context.Background(), "mlpipeline", strings.TrimPrefix(uri, "minio://mlpipeline/"), minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || string(got) != "report from the box\n" {
		t.Fatalf("external S3 has %q (%v) for %s", got, err, uri)
	}

	// A fresh box (empty data directory) reads it through an importer.
	consumer := startBox(t, external)
	pid = consumer.upload(filepath.Join(testdata, "import_report.yaml"), "import-report")
	r = consumer.runPipeline(pid, map[string]any{"uri": uri})
	if r.State != "SUCCEEDED" {
		t.Fatalf("consumer run ended %s: %+v", r.State, r.RunDetails.TaskDetails)
	}
	if text := r.task(t, "read").OutputParameters["text"]; text != "report from the box\n" {
		b, _ := json.Marshal(r.RunDetails.TaskDetails)
		t.Fatalf("the consumer read %q; task details %s", text, b)
	}
}
