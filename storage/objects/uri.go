package objects

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// URI schemes KFP uses for artifacts and pipeline roots.
const (
	SchemeMinio = "minio"
	SchemeS3    = "s3"
	SchemeGCS   = "gs"
)

// ReservedPrefix is the first key segment kfp-box and the embedded S3 server keep for
// in-flight uploads. Keys may not start with it, so half-written files never become
// objects.
const ReservedPrefix = ".sgwtmp"

// maxKeyLen is S3's limit on key length in bytes.
const maxKeyLen = 1024

// URI is a parsed artifact or pipeline-root URI such as minio://mlpipeline/v2/artifacts.
type URI struct {
	// Scheme is "minio", "s3" or "gs".
	Scheme string
	// Bucket is the bucket name.
	Bucket string
	// Key is the object key or key prefix; empty for the bucket itself. A trailing '/'
	// is kept.
	Key string
	// Query is the raw query string of a pipeline root (e.g. "region=x&endpoint=y"),
	// without the '?'; empty for artifact URIs.
	Query string
}

// String returns the URI in scheme://bucket/key[?query] form.
func (u URI) String() string {
	s := u.Scheme + "://" + u.Bucket
	if u.Key != "" {
		s += "/" + u.Key
	}
	if u.Query != "" {
		s += "?" + u.Query
	}
	return s
}

// Join returns u with elems appended to its key, '/'-separated. The result is not
// validated; ParseURI(result.String()) does that.
func (u URI) Join(elems ...string) URI {
	parts := make([]string, 0, len(elems)+1)
	if k := strings.TrimSuffix(u.Key, "/"); k != "" {
		parts = append(parts, k)
	}
	for _, e := range elems {
		if e = strings.Trim(e, "/"); e != "" {
			parts = append(parts, e)
		}
	}
	u.Key = strings.Join(parts, "/")
	return u
}

// ParseURI parses and validates scheme://bucket[/key][?query]. Only the minio, s3 and gs
// schemes are accepted; keys with "..", "." or empty segments, a leading '/', NUL or
// invalid UTF-8 are rejected with ErrInvalid.
func ParseURI(raw string) (URI, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return URI{}, fmt.Errorf("uri %q: missing scheme: %w", raw, ErrInvalid)
	}
	switch scheme {
	case SchemeMinio, SchemeS3, SchemeGCS:
	default:
		return URI{}, fmt.Errorf("uri %q: scheme %q: %w", raw, scheme, ErrUnsupported)
	}
	rest, query, _ := strings.Cut(rest, "?")
	bucket, key, _ := strings.Cut(rest, "/")
	if err := ValidateBucket(bucket); err != nil {
		return URI{}, fmt.Errorf("uri %q: %w", raw, err)
	}
	if err := ValidatePrefix(key); err != nil {
		return URI{}, fmt.Errorf("uri %q: %w", raw, err)
	}
	if strings.ContainsRune(query, 0) {
		return URI{}, fmt.Errorf("uri %q: NUL in query: %w", raw, ErrInvalid)
	}
	return URI{Scheme: scheme, Bucket: bucket, Key: key, Query: query}, nil
}

// ValidateBucket checks an S3 bucket name: 3 to 63 characters of lower-case letters,
// digits, '.' and '-', starting and ending with a letter or digit, no "..".
func ValidateBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket %q: length must be 3 to 63: %w", b, ErrInvalid)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '.' && c != '-' {
			return fmt.Errorf("bucket %q: character %q: %w", b, c, ErrInvalid)
		}
		if !alnum && (i == 0 || i == len(b)-1) {
			return fmt.Errorf("bucket %q: must start and end with a letter or digit: %w", b, ErrInvalid)
		}
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("bucket %q: contains \"..\": %w", b, ErrInvalid)
	}
	return nil
}

// ValidateKey checks an object key: non-empty, at most 1024 bytes of valid UTF-8, no NUL,
// not absolute, no trailing '/', and no ".", ".." or empty segment. Such keys map to one
// file below the bucket's directory and never outside it.
func ValidateKey(k string) error {
	if k == "" {
		return fmt.Errorf("empty key: %w", ErrInvalid)
	}
	if strings.HasSuffix(k, "/") {
		return fmt.Errorf("key %q: ends with '/': %w", k, ErrInvalid)
	}
	return ValidatePrefix(k)
}

// ValidatePrefix checks a key prefix: like ValidateKey, but it may be empty and may end
// with '/'.
func ValidatePrefix(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > maxKeyLen {
		return fmt.Errorf("key %q: longer than %d bytes: %w", p[:64]+"...", maxKeyLen, ErrInvalid)
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("key %q: not valid UTF-8: %w", p, ErrInvalid)
	}
	if strings.ContainsRune(p, 0) {
		return fmt.Errorf("key %q: contains NUL: %w", p, ErrInvalid)
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("key %q: absolute: %w", p, ErrInvalid)
	}
	segs := strings.Split(strings.TrimSuffix(p, "/"), "/")
	for _, s := range segs {
		switch s {
		case "":
			return fmt.Errorf("key %q: empty segment: %w", p, ErrInvalid)
		case ".", "..":
			return fmt.Errorf("key %q: segment %q: %w", p, s, ErrInvalid)
		}
	}
	if segs[0] == ReservedPrefix {
		return fmt.Errorf("key %q: reserved prefix %q: %w", p, ReservedPrefix, ErrInvalid)
	}
	return nil
}

// containerRoots maps URI schemes to the directory KFP's SDK and launcher mount them at.
var containerRoots = map[string]string{
	SchemeMinio: "/minio/",
	SchemeS3:    "/s3/",
	SchemeGCS:   "/gcs/",
}

// ContainerPath returns the path inside a task's container where KFP expects the object
// behind u: gs://b/k -> /gcs/b/k, minio://b/k -> /minio/b/k, s3://b/k -> /s3/b/k.
func ContainerPath(u URI) (string, error) {
	root, ok := containerRoots[u.Scheme]
	if !ok {
		return "", fmt.Errorf("uri %q: no container path for scheme %q: %w", u.String(), u.Scheme, ErrUnsupported)
	}
	if err := ValidateBucket(u.Bucket); err != nil {
		return "", err
	}
	if err := ValidatePrefix(u.Key); err != nil {
		return "", err
	}
	p := root + u.Bucket
	if k := strings.TrimSuffix(u.Key, "/"); k != "" {
		p += "/" + k
	}
	return p, nil
}

// ParseContainerPath is the reverse of ContainerPath, as the SDK does when a component
// assigns Artifact.path: /minio/b/k -> minio://b/k. The path must be clean and absolute.
func ParseContainerPath(p string) (URI, error) {
	if strings.ContainsRune(p, 0) {
		return URI{}, fmt.Errorf("path %q: contains NUL: %w", p, ErrInvalid)
	}
	if p != path.Clean(p) || !path.IsAbs(p) {
		return URI{}, fmt.Errorf("path %q: not clean and absolute: %w", p, ErrInvalid)
	}
	for scheme, root := range containerRoots {
		rest, ok := strings.CutPrefix(p, root)
		if !ok {
			continue
		}
		bucket, key, _ := strings.Cut(rest, "/")
		if err := ValidateBucket(bucket); err != nil {
			return URI{}, fmt.Errorf("path %q: %w", p, err)
		}
		if err := ValidatePrefix(key); err != nil {
			return URI{}, fmt.Errorf("path %q: %w", p, err)
		}
		return URI{Scheme: scheme, Bucket: bucket, Key: key}, nil
	}
	return URI{}, fmt.Errorf("path %q: not under /minio, /s3 or /gcs: %w", p, ErrUnsupported)
}
