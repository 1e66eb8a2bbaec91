package s3server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/versity/versitygw/backend/meta"
	"github.com/versity/versitygw/backend/posix"
	"github.com/versity/versitygw/embedgw"
	"github.com/versity/versitygw/s3api"

	"github.com/kfp-box/kfp-box/storage/objects"
)

// DefaultListen is the S3 address used when Options.Listen is empty.
const DefaultListen = "127.0.0.1:9000"

// DefaultBucket is the bucket KFP's default pipeline root lives in.
const DefaultBucket = "mlpipeline"

// ErrInvalid reports a bad option; it is objects.ErrInvalid so callers need one check.
var ErrInvalid = objects.ErrInvalid

// Options configure the embedded S3 server.
type Options struct {
	// Root is the object root, $DATA/objects: bucket b is the directory Root/b.
	Root string
	// Listen is host:port; DefaultListen when empty. Port 0 picks a free port.
	Listen string
	// CredentialsFile is where generated credentials are kept, $DATA/s3-credentials.json
	// (mode 0600). It is written once, when the credentials are generated, and only read
	// afterwards. Required unless AccessKey and SecretKey are set.
	CredentialsFile string
	// EndpointFile, when set, records the server's endpoint at each start for clients such
	// as `kfp-box s3 credentials` ($DATA/s3-endpoint). It is rewritten only when the
	// endpoint changes, and a failure to write it (a full disk) is logged, not fatal.
	EndpointFile string
	// AccessKey and SecretKey, when both set, replace the generated credentials. They are
	// required to listen on anything but a loopback address.
	AccessKey, SecretKey string
	// Region is reported to clients; us-east-1 when empty.
	Region string
	// Buckets are created at start if missing; [DefaultBucket] when nil.
	Buckets []string
	// MetaDir keeps object metadata (ETags, content types) when the filesystem under Root
	// has no user xattrs; defaults to Root + "-meta".
	MetaDir string
	// Logger receives the server's own log lines.
	Logger *slog.Logger
}

// HealthPath answers GET with 200 and no credentials: `kfp-box doctor` tells the box's own
// S3 server from another program on the port by it.
const HealthPath = "/kfp-box-s3-health"

// Server is the embedded S3 server. Start it once; Stop it once.
type Server struct {
	opts     Options
	log      *slog.Logger
	creds    Credentials
	endpoint string

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// New validates opts and returns a server that has not started yet.
func New(opts Options) (*Server, error) {
	if opts.Root == "" {
		return nil, fmt.Errorf("s3 server: empty object root: %w", ErrInvalid)
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("s3 server root %q: %w", opts.Root, err)
	}
	opts.Root = root
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	host, _, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("s3 listen address %q: %v: %w", opts.Listen, err, ErrInvalid)
	}
	explicit := opts.AccessKey != "" && opts.SecretKey != ""
	if (opts.AccessKey == "") != (opts.SecretKey == "") {
		return nil, fmt.Errorf("s3 server: access key and secret key must be set together: %w", ErrInvalid)
	}
	if !isLoopback(host) && !explicit {
		return nil, fmt.Errorf("s3 listen address %q is not loopback: configure an access key and secret key to listen there: %w", opts.Listen, ErrInvalid)
	}
	if !explicit && opts.CredentialsFile == "" {
		return nil, fmt.Errorf("s3 server: no credentials file and no explicit credentials: %w", ErrInvalid)
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Buckets == nil {
		opts.Buckets = []string{DefaultBucket}
	}
	for _, b := range opts.Buckets {
		if err := objects.ValidateBucket(b); err != nil {
			return nil, fmt.Errorf("s3 server: %w", err)
		}
	}
	if opts.MetaDir == "" {
		opts.MetaDir = root + "-meta"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, log: opts.Logger.With("component", "s3server")}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Credentials returns the root access key and secret; valid after Start.
func (s *Server) Credentials() (access, secret string) { return s.creds.AccessKey, s.creds.SecretKey }

// Region returns the region the server reports.
func (s *Server) Region() string { return s.opts.Region }

// Endpoint returns the server's URL, e.g. http://127.0.0.1:9000; valid after Start.
func (s *Server) Endpoint() string { return s.endpoint }

// Root returns the absolute object root.
func (s *Server) Root() string { return s.opts.Root }

// Start loads or generates the credentials, starts the gateway, waits until it accepts
// connections (bounded by ctx) and creates the configured buckets. The server runs until
// Stop, independently of ctx.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return fmt.Errorf("s3 server: already started: %w", ErrInvalid)
	}
	creds := Credentials{AccessKey: s.opts.AccessKey, SecretKey: s.opts.SecretKey}
	if creds.AccessKey == "" {
		c, created, err := loadOrCreateCredentials(s.opts.CredentialsFile, s.opts.Region)
		if err != nil {
			return err
		}
		if created {
			s.log.Info("generated S3 credentials", "file", s.opts.CredentialsFile)
		}
		creds = c
	}
	listen, err := resolvePort(s.opts.Listen)
	if err != nil {
		return err
	}
	creds.Region = s.opts.Region
	creds.Endpoint = "http://" + listen
	s.creds = creds
	s.endpoint = creds.Endpoint
	if s.opts.EndpointFile != "" {
		if err := saveEndpoint(s.opts.EndpointFile, s.endpoint); err != nil {
			s.log.Warn("cannot record the S3 endpoint; `kfp-box s3 credentials` may show an old one", "file", s.opts.EndpointFile, "err", err)
		}
	}

	if err := os.MkdirAll(s.opts.Root, 0o755); err != nil {
		return fmt.Errorf("s3 server root %q: %w", s.opts.Root, err)
	}
	var ms meta.MetadataStorer = meta.XattrMeta{}
	if err := (meta.XattrMeta{}).Test(s.opts.Root); err != nil {
		s.log.Warn("no user xattrs on the object root, keeping object metadata in a sidecar directory", "root", s.opts.Root, "meta_dir", s.opts.MetaDir, "reason", err)
		if err := os.MkdirAll(s.opts.MetaDir, 0o755); err != nil {
			return fmt.Errorf("s3 meta dir %q: %w", s.opts.MetaDir, err)
		}
		sc, err := meta.NewSideCar(s.opts.MetaDir)
		if err != nil {
			return fmt.Errorf("s3 meta dir %q: %w", s.opts.MetaDir, err)
		}
		ms = sc
	}
	// posix.New changes the process's working directory to the root; see the ADR.
	px, err := posix.New(s.opts.Root, ms, posix.PosixOpts{
		ValidateBucketNames: true,
		// Files that tasks write directly carry no stored ETag.
		DefaultEtag: "",
	})
	if err != nil {
		return fmt.Errorf("s3 posix backend %q: %w", s.opts.Root, err)
	}
	resolved, err := filepath.EvalSymlinks(s.opts.Root)
	if err != nil {
		return fmt.Errorf("s3 server root %q: %w", s.opts.Root, err)
	}
	be := &confined{Posix: px, root: resolved}

	ready := make(chan struct{})
	var readyOnce sync.Once
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	cfg := &embedgw.Config{
		RootUserAccess:    creds.AccessKey,
		RootUserSecret:    creds.SecretKey,
		Region:            s.opts.Region,
		Ports:             []string{listen},
		MaxConnections:    1024,
		MaxRequests:       1024,
		MultipartMaxParts: 10000,
		Quiet:             true,
		KeepAlive:         true,
		HealthPath:        HealthPath,
		S3Options:         []s3api.Option{s3api.WithOnListen(func() { readyOnce.Do(func() { close(ready) }) })},
	}
	var runErr error // written before done is closed
	go func() {
		defer close(done)
		runErr = embedgw.RunVersityGW(runCtx, be, cfg)
		if runErr != nil && runCtx.Err() == nil {
			s.log.Error("S3 server stopped", "err", runErr)
		}
	}()
	s.cancel, s.done = cancel, done

	select {
	case <-ready:
	case <-done:
		cancel()
		s.cancel, s.done = nil, nil
		if runErr == nil {
			runErr = errors.New("stopped before listening")
		}
		return fmt.Errorf("s3 server on %s: %w", listen, runErr)
	case <-ctx.Done():
		cancel()
		<-done
		s.cancel, s.done = nil, nil
		return fmt.Errorf("s3 server on %s: waiting for readiness: %w", listen, ctx.Err())
	}
	if err := s.ensureBuckets(ctx); err != nil {
		cancel()
		<-done
		s.cancel, s.done = nil, nil
		return err
	}
	s.log.Info("S3 server listening", "endpoint", s.endpoint, "root", s.opts.Root)
	return nil
}

// ensureBuckets creates the configured buckets through the S3 API itself.
func (s *Server) ensureBuckets(ctx context.Context) error {
	cl, err := s.Client()
	if err != nil {
		return err
	}
	for _, b := range s.opts.Buckets {
		ok, err := cl.BucketExists(ctx, b)
		if err != nil {
			return fmt.Errorf("s3 bucket %q: %w", b, err)
		}
		if ok {
			continue
		}
		if err := cl.MakeBucket(ctx, b, minio.MakeBucketOptions{Region: s.opts.Region}); err != nil {
			return fmt.Errorf("s3 bucket %q: %w", b, err)
		}
	}
	return nil
}

// Client returns a minio-go client for this server with its root credentials.
func (s *Server) Client() (*minio.Client, error) {
	host := s.endpoint[len("http://"):]
	return minio.New(host, &minio.Options{
		Creds:  credentials.NewStaticV4(s.creds.AccessKey, s.creds.SecretKey, ""),
		Region: s.opts.Region,
	})
}

// Stop shuts the gateway down and waits for it, bounded by ctx. Stop on a server that
// never started, or a second Stop, does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("s3 server stop: %w", ctx.Err())
	}
}

// resolvePort replaces port 0 in addr with a free port, so the endpoint is known before
// the gateway binds.
func resolvePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("s3 listen address %q: %v: %w", addr, err, ErrInvalid)
	}
	if port != "0" {
		return addr, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("s3 listen address %q: %w", addr, err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
