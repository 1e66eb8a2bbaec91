package s3server

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Credentials is the content of $DATA/s3-credentials.json: what an S3 client needs to
// reach the embedded server. The file is written once, when the credentials are
// generated; the endpoint of each start is kept apart (Options.EndpointFile).
type Credentials struct {
	// Endpoint is the server's URL, e.g. http://127.0.0.1:9000. Files written before the
	// endpoint moved to its own file hold the endpoint of their last start.
	Endpoint string `json:"endpoint,omitempty"`
	// AccessKey is the root access key id.
	AccessKey string `json:"access_key"`
	// SecretKey is the root secret access key.
	SecretKey string `json:"secret_key"`
	// Region is the region the server reports, us-east-1 unless configured.
	Region string `json:"region,omitempty"`
}

// LoadCredentials reads a credentials file; a missing file yields an error wrapping
// fs.ErrNotExist.
func LoadCredentials(path string) (Credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("s3 credentials %q: %w", path, err)
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return Credentials{}, fmt.Errorf("s3 credentials %q: %w", path, err)
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return Credentials{}, fmt.Errorf("s3 credentials %q: empty access or secret key", path)
	}
	return c, nil
}

// saveCredentials writes c to path atomically with mode 0600.
func saveCredentials(path string, c Credentials) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("s3 credentials %q: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".s3-credentials-*")
	if err != nil {
		return fmt.Errorf("s3 credentials %q: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("s3 credentials %q: %w", path, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("s3 credentials %q: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("s3 credentials %q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("s3 credentials %q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("s3 credentials %q: %w", path, err)
	}
	return nil
}

// loadOrCreateCredentials returns the stored credentials, generating and storing new ones
// when the file does not exist yet. An existing file is never written.
func loadOrCreateCredentials(path, region string) (Credentials, bool, error) {
	c, err := LoadCredentials(path)
	if err == nil {
		return c, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Credentials{}, false, err
	}
	c = Credentials{AccessKey: "kfpbox" + randomString(14, upperAlnum), SecretKey: randomString(40, mixedAlnum), Region: region}
	if err := saveCredentials(path, c); err != nil {
		return Credentials{}, false, err
	}
	return c, true, nil
}

// LoadEndpoint reads the endpoint recorded by a server started with Options.EndpointFile;
// a missing file yields an error wrapping fs.ErrNotExist.
func LoadEndpoint(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("s3 endpoint %q: %w", path, err)
	}
	ep := strings.TrimSpace(string(b))
	if ep == "" {
		return "", fmt.Errorf("s3 endpoint %q: empty", path)
	}
	return ep, nil
}

// saveEndpoint records endpoint in path unless it holds it already.
func saveEndpoint(path, endpoint string) error {
	if cur, err := LoadEndpoint(path); err == nil && cur == endpoint {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".s3-endpoint-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(endpoint + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

const (
	upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	mixedAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// randomString returns n characters drawn uniformly from alphabet with crypto/rand.
func randomString(n int, alphabet string) string {
	out := make([]byte, n)
	buf := make([]byte, 1)
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			panic(err) // crypto/rand never fails on Linux
		}
		// Reject bytes past the largest multiple of len(alphabet) to avoid modulo bias.
		if int(buf[0]) >= 256-256%len(alphabet) {
			continue
		}
		out[i] = alphabet[int(buf[0])%len(alphabet)]
		i++
	}
	return string(out)
}
