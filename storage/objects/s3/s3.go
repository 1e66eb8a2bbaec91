// Package s3 is the object store over any S3 endpoint (SeaweedFS, MinIO, AWS, or the box's
// own embedded server), through minio-go. It has no LocalPath: with this store the engine
// stages a task's inputs in and its outputs out (objects.StageIn, objects.StageOut).
package s3

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kfp-box/kfp-box/storage/objects"
)

var _ objects.Store = (*Store)(nil)

// DefaultPartSize is the multipart part size for uploads of unknown length; minio-go
// buffers one part per upload in memory.
const DefaultPartSize = 16 << 20

// Config locates an S3 endpoint and its credentials.
type Config struct {
	// Endpoint is host:port, without scheme.
	Endpoint string
	// Secure selects https.
	Secure bool
	// Bucket is the default bucket (the one named in the --object-store URL).
	Bucket string
	// AccessKey and SecretKey are static credentials; both empty means anonymous.
	AccessKey, SecretKey string
	// Region is sent in signatures; us-east-1 when empty.
	Region string
	// PartSize is the multipart part size; DefaultPartSize when zero.
	PartSize uint64
	// SignPayload signs each upload's body (SHA-256 over every byte). It is on for plain
	// http to a non-loopback host, where it is the only integrity check; over https or
	// loopback it costs about two thirds of PUT throughput for nothing. The URL's
	// sign_payload=true|false overrides.
	SignPayload bool
}

// ParseURL parses an --object-store value,
//
//	s3://BUCKET?endpoint=http://host:9000&region=R&access_key=A&secret_key=S
//
// Credentials missing from the URL come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
// An endpoint without a scheme is https.
func ParseURL(raw string) (cfg Config, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("object store %q: %v: %w", raw, err, objects.ErrInvalid)
	}
	if u.Scheme != "s3" {
		return Config{}, fmt.Errorf("object store %q: scheme must be s3: %w", raw, objects.ErrInvalid)
	}
	if err := objects.ValidateBucket(u.Host); err != nil {
		return Config{}, fmt.Errorf("object store %q: %w", raw, err)
	}
	q := u.Query()
	cfg = Config{
		Bucket:    u.Host,
		Region:    q.Get("region"),
		AccessKey: q.Get("access_key"),
		SecretKey: q.Get("secret_key"),
	}
	if cfg.AccessKey == "" && cfg.SecretKey == "" {
		cfg.AccessKey, cfg.SecretKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	if ps := q.Get("part_size"); ps != "" {
		n, err := strconv.ParseUint(ps, 10, 64)
		if err != nil || n < 5<<20 {
			return Config{}, fmt.Errorf("object store %q: part_size must be at least 5242880: %w", raw, objects.ErrInvalid)
		}
		cfg.PartSize = n
	}
	ep := q.Get("endpoint")
	defer func() {
		if err != nil {
			return
		}
		switch q.Get("sign_payload") {
		case "true":
			cfg.SignPayload = true
		case "false":
			cfg.SignPayload = false
		case "":
			cfg.SignPayload = !cfg.Secure && !isLoopback(cfg.Endpoint)
		default:
			cfg, err = Config{}, fmt.Errorf("object store %q: sign_payload must be true or false: %w", raw, objects.ErrInvalid)
		}
	}()
	switch {
	case ep == "":
		cfg.Endpoint, cfg.Secure = "s3.amazonaws.com", true
	case strings.HasPrefix(ep, "http://"), strings.HasPrefix(ep, "https://"):
		e, err := url.Parse(ep)
		if err != nil || e.Host == "" || (e.Path != "" && e.Path != "/") {
			return Config{}, fmt.Errorf("object store %q: endpoint %q must be scheme://host[:port]: %w", raw, ep, objects.ErrInvalid)
		}
		cfg.Endpoint, cfg.Secure = e.Host, e.Scheme == "https"
	default:
		if strings.Contains(ep, "/") {
			return Config{}, fmt.Errorf("object store %q: endpoint %q must be scheme://host[:port]: %w", raw, ep, objects.ErrInvalid)
		}
		cfg.Endpoint, cfg.Secure = ep, true
	}
	return cfg, nil
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Store is an objects.Store over one S3 endpoint.
type Store struct {
	cl  *minio.Client
	cfg Config
	log *slog.Logger
}

// New connects lazily to the endpoint in cfg; no request is made.
func New(cfg Config, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.New(&credentials.Static{})
	}
	cl, err := minio.New(cfg.Endpoint, &minio.Options{Creds: creds, Secure: cfg.Secure, Region: cfg.Region})
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %q: %v: %w", cfg.Endpoint, err, objects.ErrInvalid)
	}
	return &Store{cl: cl, cfg: cfg, log: logger.With("component", "objects.s3", "endpoint", cfg.Endpoint)}, nil
}

// Open is ParseURL followed by New.
func Open(raw string, logger *slog.Logger) (*Store, error) {
	cfg, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return New(cfg, logger)
}

// Bucket returns the bucket named in the configuration.
func (s *Store) Bucket() string { return s.cfg.Bucket }

// Client returns the underlying minio-go client.
func (s *Store) Client() *minio.Client { return s.cl }

func check(bucket, key string) error {
	if err := objects.ValidateBucket(bucket); err != nil {
		return err
	}
	return objects.ValidateKey(key)
}

// mapErr turns S3 error codes into the objects sentinels.
func mapErr(op, bucket, key string, err error) error {
	name := bucket + "/" + key
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("%s %q: %w", op, name, objects.ErrNotFound)
	case "NoSuchBucket":
		return fmt.Errorf("%s: bucket %q: %w", op, bucket, objects.ErrNotFound)
	case "InvalidRange", "InvalidArgument", "InvalidObjectName", "KeyTooLongError":
		return fmt.Errorf("%s %q: %v: %w", op, name, err, objects.ErrInvalid)
	}
	return fmt.Errorf("%s %q: %w", op, name, err)
}

// Put uploads r; a content type is derived from the key's extension.
func (s *Store) Put(ctx context.Context, bucket, key string, r io.Reader, size int64) error {
	if err := check(bucket, key); err != nil {
		return err
	}
	if r == nil {
		r = strings.NewReader("")
	}
	opts := minio.PutObjectOptions{
		PartSize:             s.cfg.PartSize,
		ContentType:          mime.TypeByExtension(path.Ext(key)),
		DisableContentSha256: !s.cfg.SignPayload,
	}
	if opts.ContentType == "" {
		opts.ContentType = "application/octet-stream"
	}
	if _, err := s.cl.PutObject(ctx, bucket, key, r, size, opts); err != nil {
		return mapErr("put", bucket, key, err)
	}
	return nil
}

// Get reads a range of bucket/key.
func (s *Store) Get(ctx context.Context, bucket, key string, off, n int64) (io.ReadCloser, error) {
	info, err := s.Stat(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	if off < 0 || off > info.Size {
		return nil, fmt.Errorf("get %q: offset %d outside [0, %d]: %w", bucket+"/"+key, off, info.Size, objects.ErrInvalid)
	}
	if n < 0 || off+n > info.Size {
		n = info.Size - off
	}
	if n == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts minio.GetObjectOptions
	if off != 0 || n != info.Size {
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, fmt.Errorf("get %q: %v: %w", bucket+"/"+key, err, objects.ErrInvalid)
		}
	}
	// Pin the version we measured, so a concurrent overwrite cannot mix bytes.
	if info.ETag != "" {
		if err := opts.SetMatchETag(info.ETag); err != nil {
			return nil, fmt.Errorf("get %q: %w", bucket+"/"+key, err)
		}
	}
	obj, err := s.cl.GetObject(ctx, bucket, key, opts)
	if err != nil {
		return nil, mapErr("get", bucket, key, err)
	}
	return obj, nil
}

// Stat heads bucket/key.
func (s *Store) Stat(ctx context.Context, bucket, key string) (objects.Info, error) {
	if err := check(bucket, key); err != nil {
		return objects.Info{}, err
	}
	st, err := s.cl.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return objects.Info{}, mapErr("stat", bucket, key, err)
	}
	return objects.Info{Bucket: bucket, Key: key, Size: st.Size, ModTime: st.LastModified, ETag: st.ETag}, nil
}

// List lists bucket recursively under prefix, sorted by key. Folder marker objects (keys
// ending in '/') are skipped.
func (s *Store) List(ctx context.Context, bucket, prefix string) ([]objects.Info, error) {
	if err := objects.ValidateBucket(bucket); err != nil {
		return nil, err
	}
	if err := objects.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	out := []objects.Info{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range s.cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, mapErr("list", bucket, prefix, o.Err)
		}
		if strings.HasSuffix(o.Key, "/") {
			continue
		}
		out = append(out, objects.Info{Bucket: bucket, Key: o.Key, Size: o.Size, ModTime: o.LastModified, ETag: o.ETag})
	}
	// S3 lists in key order, but not every server does (SeaweedFS 3.39 walks its
	// directories); the Store contract promises key order.
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes bucket/key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	if err := check(bucket, key); err != nil {
		return err
	}
	if err := s.cl.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil
		}
		return mapErr("delete", bucket, key, err)
	}
	return nil
}
