package appliance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tlsInfo is the serving certificate.
type tlsInfo struct {
	config      *tls.Config
	certFile    string
	fingerprint string // SHA-256 of the leaf, colon-separated hex
	selfSigned  bool
	// plainToo accepts plain HTTP on the same port (loopback listeners).
	plainToo bool
}

// Self-signed certificate files under the data directory.
const (
	tlsDir      = "tls"
	tlsCertFile = "cert.pem"
	tlsKeyFile  = "key.pem"
)

// setupTLS loads --tls-cert/--tls-key, or a self-signed certificate made once in
// $DATA/tls. A loopback listener serves plain HTTP and HTTPS on the same port (kubectl sends
// tokens over TLS only); beyond loopback it is HTTPS only. On loopback, a certificate that
// cannot be made (a full disk) leaves plain HTTP (nil) with a warning.
func (a *Appliance) setupTLS() (*tlsInfo, error) {
	loopback := IsLoopback(a.cfg.Listen)
	info, err := a.loadTLS()
	if err != nil && loopback && a.cfg.TLSCert == "" {
		a.logger.Warn("no certificate for HTTPS on loopback: plain HTTP only (kubectl will not send its token)", "err", err)
		return nil, nil
	}
	if info != nil {
		info.plainToo = loopback
	}
	return info, err
}

func (a *Appliance) loadTLS() (*tlsInfo, error) {
	certFile, keyFile, self := a.cfg.TLSCert, a.cfg.TLSKey, false
	if certFile == "" {
		dir := filepath.Join(a.cfg.DataDir, tlsDir)
		certFile, keyFile, self = filepath.Join(dir, tlsCertFile), filepath.Join(dir, tlsKeyFile), true
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			if err := writeSelfSigned(dir, a.cfg.AllowedHosts()); err != nil {
				return nil, fmt.Errorf("self-signed certificate: %w", err)
			}
			a.logger.Info("made a self-signed certificate", "cert", certFile)
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: tls certificate %s: %v", ErrConfig, certFile, err)
	}
	sum := sha256.Sum256(pair.Certificate[0])
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02X", b)
	}
	return &tlsInfo{
		config:      &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		certFile:    certFile,
		fingerprint: strings.Join(hexes, ":"),
		selfSigned:  self,
	}, nil
}

// writeSelfSigned makes a P-256 certificate valid for this machine's names and addresses,
// for ten years. The key is 0600; both files are written once.
func writeSelfSigned(dir string, names []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "kfp-box " + host, Organization: []string{"kfp-box"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
	}
	if host != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	for _, n := range names {
		if n != "*" && !strings.HasPrefix(n, "*.") {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, ad := range addrs {
			if ipn, ok := ad.(*net.IPNet); ok {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ipn.IP)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeOnce(filepath.Join(dir, tlsKeyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeOnce(filepath.Join(dir, tlsCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeOnce writes a new file through a synced temporary file and a rename.
func writeOnce(path string, data []byte, mode os.FileMode) error {
	return writeFileAtomic(path, data, mode)
}

// writeFileAtomic replaces path with data through a synced temporary file and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// devOrigin is the origin of the UI's development server ("" when there is none).
func devOrigin(devURL string) string {
	if devURL == "" {
		return ""
	}
	if i := strings.Index(devURL, "://"); i >= 0 {
		rest := devURL[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			rest = rest[:j]
		}
		return devURL[:i+3] + rest
	}
	return ""
}
