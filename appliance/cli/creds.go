package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kfp-box/kfp-box/appliance"
	"github.com/kfp-box/kfp-box/appliance/auth"
	"github.com/kfp-box/kfp-box/appliance/client"
)

// credentials is how a client command authenticates to the box and trusts its certificate.
type credentials struct {
	// token is the bearer token ("" sends none).
	token string
	// source says where the token came from, for error messages (never the token).
	source string
	// tls is the client's TLS configuration for an https server (nil: system roots).
	tls *tls.Config
	// caPEM is the trusted certificate's PEM, when one was given or found.
	caPEM []byte
}

// dataDirForClient is the data directory a client command looks in for the box's own token
// and certificate: KFPBOX_DATA_DIR, else the default.
func dataDirForClient() string {
	if d := os.Getenv("KFPBOX_DATA_DIR"); d != "" {
		return d
	}
	return appliance.DefaultDataDir()
}

// loadCredentials finds the token: --token-file (KFPBOX_TOKEN_FILE), KFPBOX_TOKEN,
// KF_PIPELINES_SA_TOKEN_PATH (the kfp SDK's variable), else the box's admin token when this
// user can read it. An https server's certificate is trusted from --ca-cert (KFPBOX_CA_CERT),
// else the box's own self-signed certificate, else the system's roots.
func loadCredentials(cmd *cobra.Command) (credentials, error) {
	return loadCredentialsFrom(cmd, "token-file", "ca-cert")
}

// loadCredentialsFrom is loadCredentials with other flag names (push and pull give
// --token-file and --ca-cert to the remote side and --box-token-file, --box-ca-cert to the box).
func loadCredentialsFrom(cmd *cobra.Command, tokenFlag, caFlag string) (credentials, error) {
	var c credentials
	file := flagOrEnv(cmd, tokenFlag, "KFPBOX_TOKEN_FILE")
	switch {
	case file != "":
		t, err := readTokenFile(file)
		if err != nil {
			return c, usageErr("--%s: %v", tokenFlag, err)
		}
		c.token, c.source = t, file
	case os.Getenv("KFPBOX_TOKEN") != "":
		c.token, c.source = strings.TrimSpace(os.Getenv("KFPBOX_TOKEN")), "KFPBOX_TOKEN"
	case os.Getenv("KF_PIPELINES_SA_TOKEN_PATH") != "":
		p := os.Getenv("KF_PIPELINES_SA_TOKEN_PATH")
		t, err := readTokenFile(p)
		if err != nil {
			return c, usageErr("KF_PIPELINES_SA_TOKEN_PATH: %v", err)
		}
		c.token, c.source = t, p
	default:
		p := filepath.Join(dataDirForClient(), "auth", auth.AdminTokenFile)
		if t, err := readTokenFile(p); err == nil {
			c.token, c.source = t, p
		}
	}
	ca := flagOrEnv(cmd, caFlag, "KFPBOX_CA_CERT")
	if ca == "" {
		own := filepath.Join(dataDirForClient(), "tls", "cert.pem")
		if _, err := os.Stat(own); err == nil {
			ca = own
		}
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return c, usageErr("--%s: %v", caFlag, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return c, usageErr("--%s %s: no PEM certificate in it", caFlag, ca)
		}
		c.tls = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		c.caPEM = pem
	}
	return c, nil
}

// readTokenFile reads a token file as the shared client does.
func readTokenFile(p string) (string, error) { return client.ReadTokenFile(p) }

func flagOrEnv(cmd *cobra.Command, flag, env string) string {
	if f := cmd.Flag(flag); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	return os.Getenv(env)
}

// httpClient is an HTTP client for the box; timeout 0 means none (streams).
func (c credentials) httpClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.tls != nil {
		tr.TLSClientConfig = c.tls
	}
	return &http.Client{Timeout: timeout, Transport: tr}
}

// authorize adds the bearer token to req.
func (c credentials) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
}

// explain401 says how to get a token when the box refused the request.
func (c credentials) explain401(base string) error {
	if c.token == "" {
		return errors.New("the box at " + base + " needs a token: pass --token-file FILE (the box's admin token is $DATA/auth/admin-token, readable by the box's user), or ask its owner for one ('kfp-box token create NAME')")
	}
	return errors.New("the box at " + base + " refused the token from " + c.source + ": it is unknown, revoked or expired")
}
