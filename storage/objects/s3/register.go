package s3

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/kfp-box/kfp-box/storage/objects"
)

// ID is the external S3 store's registered id. Its settings are the object_store.s3
// section, or one object_store URL (ParseURL documents the parameters).
const ID = "s3"

// Settings is the s3 backend's configuration section (object_store.s3 in the configuration
// file). Its tags are the documentation `kfp-box config schema` prints; each field is also
// the URL parameter of the same name (the bucket is the URL's host).
type Settings struct {
	Bucket      string `json:"bucket" doc:"bucket that holds the box's artifacts"`
	Endpoint    string `json:"endpoint" doc:"scheme://host[:port] of the S3 server (a host without a scheme is https); empty: AWS (s3.amazonaws.com)"`
	Region      string `json:"region" doc:"region sent in signatures; empty: us-east-1"`
	AccessKey   string `json:"access_key" doc:"access key; with secret_key empty too, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of the box's environment are used"`
	SecretKey   string `json:"secret_key" secret:"true" doc:"secret key of access_key"`
	PartSize    int    `json:"part_size" doc:"multipart part size in bytes for uploads of unknown length (at least 5242880; 0: 16 MiB); one part per upload is held in memory"`
	SignPayload string `json:"sign_payload" doc:"sign each upload's body: true, false, or empty for on over plain http to a non-loopback host only"`
}

// NewSettings returns the section with its defaults (all empty: AWS, us-east-1, 16 MiB
// parts, credentials from the environment).
func NewSettings() *Settings { return &Settings{} }

// url is the section as the object_store URL that ParseURL reads, with secret in place of
// the secret key.
func (s *Settings) url(secret string) string {
	q := url.Values{}
	for k, v := range map[string]string{"endpoint": s.Endpoint, "region": s.Region, "access_key": s.AccessKey, "secret_key": secret, "sign_payload": s.SignPayload} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if s.PartSize != 0 {
		q.Set("part_size", strconv.Itoa(s.PartSize))
	}
	return (&url.URL{Scheme: "s3", Host: s.Bucket, RawQuery: q.Encode()}).String()
}

// Config resolves the section into the store's Config by ParseURL's rules. Its errors name
// the setting that is wrong and never hold the secret key (ParseURL is given a stand-in).
func (s *Settings) Config() (Config, error) {
	if s.Bucket == "" {
		return Config{}, fmt.Errorf("bucket is empty: %w", objects.ErrInvalid)
	}
	if s.PartSize < 0 {
		return Config{}, fmt.Errorf("part_size must be at least 5242880: %w", objects.ErrInvalid)
	}
	standIn := ""
	if s.SecretKey != "" {
		standIn = "REDACTED"
	}
	raw := s.url(standIn)
	cfg, err := ParseURL(raw)
	if err != nil {
		// ParseURL names the whole URL: say which setting is wrong instead.
		return Config{}, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), fmt.Sprintf("object store %q: ", raw)))
	}
	if s.SecretKey != "" {
		cfg.SecretKey = s.SecretKey
	}
	return cfg, nil
}

// Validate checks the section's values.
func (s *Settings) Validate() error {
	_, err := s.Config()
	return err
}

// urlParams are the query parameters FromURL knows.
var urlParams = []string{"access_key", "endpoint", "part_size", "region", "secret_key", "sign_payload"}

// FromURL resets the section and sets it from an object_store URL,
// s3://BUCKET?endpoint=URL&region=R&access_key=A&secret_key=S&part_size=N&sign_payload=B.
func (s *Settings) FromURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != ID {
		return fmt.Errorf("want s3://BUCKET?endpoint=URL&...")
	}
	*s = *NewSettings()
	s.Bucket = u.Host
	q := u.Query()
	var unknown []string
	for k := range q {
		if sort.SearchStrings(urlParams, k) == len(urlParams) || urlParams[sort.SearchStrings(urlParams, k)] != k {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown URL parameter %q (valid: %s)", unknown[0], strings.Join(urlParams, ", "))
	}
	s.Endpoint, s.Region, s.AccessKey, s.SecretKey, s.SignPayload = q.Get("endpoint"), q.Get("region"), q.Get("access_key"), q.Get("secret_key"), q.Get("sign_payload")
	if ps := q.Get("part_size"); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil {
			return fmt.Errorf("part_size %q is not an integer", ps)
		}
		s.PartSize = n
	}
	return nil
}

func init() {
	objects.Register(ID, NewSettings, func(_ context.Context, opts objects.Options, s *Settings) (objects.Store, error) {
		cfg, err := s.Config()
		if err != nil {
			return nil, fmt.Errorf("object store s3: %v: %w", err, objects.ErrInvalid)
		}
		return New(cfg, opts.Logger)
	})
}
