package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/kfp-box/kfp-box/appliance/spec"
)

// packageFetcher downloads the pipeline package a version names by package_url, as KFP's
// CreatePipelineVersion and CreatePipelineAndVersion do when no pipeline_spec is given.
//
// Only http and https are fetched. Addresses on the box itself or on private networks
// (loopback, RFC 1918, unique-local, link-local and cloud metadata) are refused unless the
// URL's host is listed in allowed, so that a request cannot make the box reach what its
// caller could not; the check is made when connecting, on every redirect too, so a name that
// resolves differently later does not get around it.
type packageFetcher struct {
	allowed map[string]bool
	client  *http.Client
}

// packageFetchTimeout bounds one download.
const packageFetchTimeout = 30 * time.Second

func newPackageFetcher(allowedHosts []string) *packageFetcher {
	f := &packageFetcher{allowed: map[string]bool{}}
	for _, h := range allowedHosts {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			f.allowed[h] = true
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = f.dial
	f.client = &http.Client{
		Timeout:   packageFetchTimeout,
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			return checkPackageURL(req.URL)
		},
	}
	return f
}

// hostAllowed reports whether host ("name" or "name:port") may resolve to a private address.
func (f *packageFetcher) hostAllowed(hostport string) bool {
	hostport = strings.ToLower(hostport)
	if f.allowed[hostport] {
		return true
	}
	h, _, err := net.SplitHostPort(hostport)
	return err == nil && f.allowed[h]
}

func (f *packageFetcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	if !f.hostAllowed(addr) {
		for _, ip := range ips {
			if privateIP(ip.IP) {
				return nil, fmt.Errorf("%s resolves to %s, a loopback or private address; list the host in package_url_hosts to allow it", host, ip.IP)
			}
		}
	}
	var d net.Dialer
	var last error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.IP.String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("%s has no address", host)
	}
	return nil, last
}

// privateIP reports addresses a package URL may not reach by default.
func privateIP(ip net.IP) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsInterfaceLocalMulticast()
}

func checkPackageURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("package_url scheme %q is not supported (http or https): %w", u.Scheme, ErrInvalid)
	}
	if u.Host == "" {
		return fmt.Errorf("package_url %q has no host: %w", u.String(), ErrInvalid)
	}
	return nil
}

// fetch downloads and parses the package at raw.
func (f *packageFetcher) fetch(ctx context.Context, raw string) (*spec.Pipeline, error) {
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		return nil, fmt.Errorf("package_url %q is not a URL: %w", raw, ErrInvalid)
	}
	if err := checkPackageURL(u); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("package_url %q: %v: %w", raw, err, ErrInvalid)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching package_url %q: %v: %w", raw, err, ErrInvalid)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching package_url %q: %s: %w", raw, resp.Status, ErrInvalid)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, spec.MaxPackageSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetching package_url %q: %v: %w", raw, err, ErrInvalid)
	}
	if len(data) > spec.MaxPackageSize {
		return nil, fmt.Errorf("package_url %q is larger than %d bytes: %w", raw, spec.MaxPackageSize, ErrInvalid)
	}
	return spec.ParsePackage(path.Base(u.Path), data)
}
