package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestS3Credentials(t *testing.T) {
	dir := t.TempDir()
	body := `{"endpoint":"http://127.0.0.1:9100","access_key":"KFPBOXAK","secret_key":"sEcReT","region":"us-east-1"}`
	if err := os.WriteFile(filepath.Join(dir, CredentialsFileName), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"s3", "credentials", "--data-dir", dir})
	if err := root.Execute(); err != nil {
		t.Fatalf("s3 credentials: %v (%s)", err, errOut.String())
	}
	for _, want := range []string{
		"endpoint:   http://127.0.0.1:9100",
		"access key: KFPBOXAK",
		"secret key: sEcReT",
		"aws s3 ls --endpoint-url http://127.0.0.1:9100 s3://mlpipeline/",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestS3CredentialsMissing(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KFPBOX_DATA_DIR", dir)
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"s3", "credentials"})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "kfp-box serve --data-dir "+dir) {
		t.Fatalf("error = %v, want a hint to start serve with the data dir from KFPBOX_DATA_DIR", err)
	}
}

func TestS3ServeRefusesPublicWithoutCredentials(t *testing.T) {
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"s3", "serve", "--data-dir", t.TempDir(), "--s3-listen", "0.0.0.0:0"})
	err := root.Execute()
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(err.Error(), "not loopback") {
		t.Fatalf("error = %v, want a usage error about a non-loopback address", err)
	}
}

// TestS3CredentialsEndpointFile prefers the endpoint of the latest start, kept beside the
// credentials file, which is written once and may hold an old one.
func TestS3CredentialsEndpointFile(t *testing.T) {
	dir := t.TempDir()
	body := `{"endpoint":"http://127.0.0.1:9100","access_key":"KFPBOXAK","secret_key":"sEcReT"}`
	if err := os.WriteFile(filepath.Join(dir, CredentialsFileName), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, EndpointFileName), []byte("http://127.0.0.1:9200\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"s3", "credentials", "--data-dir", dir})
	if err := root.Execute(); err != nil {
		t.Fatalf("s3 credentials: %v (%s)", err, errOut.String())
	}
	if !strings.Contains(out.String(), "endpoint:   http://127.0.0.1:9200\n") {
		t.Errorf("output does not show the latest endpoint:\n%s", out.String())
	}
}
