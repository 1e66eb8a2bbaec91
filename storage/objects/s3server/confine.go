package s3server

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/versity/versitygw/backend"
	"github.com/versity/versitygw/backend/posix"
	"github.com/versity/versitygw/s3err"
	"github.com/versity/versitygw/s3response"
)

// confined is the posix backend refusing every object key that reaches, through a
// symbolic link, a path outside the object root. Tasks write the files under the root and
// may leave links there (a link to $DATA/meta.db, to /etc); the gateway, running as
// kfp-box's user, would otherwise serve, overwrite or delete what they point at. Links
// that stay inside the root (a model directory linking its own files) keep working.
type confined struct {
	*posix.Posix
	root string // with its own links resolved
}

var _ backend.Backend = (*confined)(nil)

// escapes reports whether bucket/key leads out of the root: through a link whose target
// lies outside it, or by "..". Components that do not exist end the walk: nothing below
// them exists either, and what a write makes there is made inside.
func (c *confined) escapes(bucket, key string) bool {
	p := c.root
	for _, part := range append([]string{bucket}, strings.Split(key, "/")...) {
		switch part {
		case "", ".":
			continue
		case "..":
			return true
		}
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if err != nil {
			return false
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			continue
		}
		t, err := filepath.EvalSymlinks(p)
		if err != nil || !withinDir(t, c.root) {
			return true
		}
		p = t
	}
	return false
}

func withinDir(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

var (
	errDenied = s3err.GetAPIError(s3err.ErrAccessDenied)
	// errBadKey answers a key no file can be named after (a NUL byte): 400, not the 500
	// the file system's EINVAL would give.
	errBadKey = s3err.APIError{Code: "InvalidArgument", Description: "Object and bucket names cannot hold a NUL character.", HTTPStatusCode: 400}
)

// refuse says why bucket/key is refused: errBadKey for a NUL, errDenied for a key that
// leads out of the root, nil when it may be served.
func (c *confined) refuse(bucket, key string) error {
	if strings.IndexByte(bucket, 0) >= 0 || strings.IndexByte(key, 0) >= 0 {
		return errBadKey
	}
	if c.escapes(bucket, key) {
		return errDenied
	}
	return nil
}

// copySourceEscapes checks the source of a copy ("bucket/key[?versionId=...]").
func (c *confined) copySourceEscapes(src *string) bool {
	bucket, key, _, err := backend.ParseCopySource(str(src))
	return err == nil && c.escapes(bucket, key)
}

func (c *confined) PutObject(ctx context.Context, in s3response.PutObjectInput) (s3response.PutObjectOutput, error) {
	if err := c.refuse(str(in.Bucket), str(in.Key)); err != nil {
		return s3response.PutObjectOutput{}, err
	}
	return c.Posix.PutObject(ctx, in)
}

func (c *confined) HeadObject(ctx context.Context, in *s3.HeadObjectInput) (*s3.HeadObjectOutput, error) {
	if err := c.refuse(str(in.Bucket), str(in.Key)); err != nil {
		return nil, err
	}
	return c.Posix.HeadObject(ctx, in)
}

func (c *confined) GetObject(ctx context.Context, in *s3.GetObjectInput) (*s3.GetObjectOutput, error) {
	if err := c.refuse(str(in.Bucket), str(in.Key)); err != nil {
		return nil, err
	}
	return c.Posix.GetObject(ctx, in)
}

func (c *confined) GetObjectAttributes(ctx context.Context, in *s3.GetObjectAttributesInput) (s3response.GetObjectAttributesResponse, error) {
	if err := c.refuse(str(in.Bucket), str(in.Key)); err != nil {
		return s3response.GetObjectAttributesResponse{}, err
	}
	return c.Posix.GetObjectAttributes(ctx, in)
}

func (c *confined) CopyObject(ctx context.Context, in s3response.CopyObjectInput) (s3response.CopyObjectOutput, error) {
	if err := c.refuse(str(in.Bucket), str(in.Key)); err != nil {
		return s3response.CopyObjectOutput{}, err
	}
	if c.copySourceEscapes(in.CopySource) {
		return s3response.CopyObjectOutput{}, errDenied
	}
	return c.Posix.CopyObject(ctx, in)
}

func (c *confined) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput) (*s3.DeleteObjectOutput, error) {
	if err := c.refuse(str(in.Bucket), str(in.Key)); err != nil {
		return nil, err
	}
	return c.Posix.DeleteObject(ctx, in)
}

func (c *confined) DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput) (s3response.DeleteResult, error) {
	if in.Delete != nil {
		for _, o := range in.Delete.Objects {
			if err := c.refuse(str(in.Bucket), str(o.Key)); err != nil {
				return s3response.DeleteResult{}, err
			}
		}
	}
	return c.Posix.DeleteObjects(ctx, in)
}

func (c *confined) CreateMultipartUpload(ctx context.Context, in s3response.CreateMultipartUploadInput) (s3response.InitiateMultipartUploadResult, error) {
	if err := c.refuse(str(in.Bucket), str(in.Key)); err != nil {
		return s3response.InitiateMultipartUploadResult{}, err
	}
	return c.Posix.CreateMultipartUpload(ctx, in)
}

func (c *confined) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput) (s3response.CompleteMultipartUploadResult, string, error) {
	if err := c.refuse(str(in.Bucket), str(in.Key)); err != nil {
		return s3response.CompleteMultipartUploadResult{}, "", err
	}
	return c.Posix.CompleteMultipartUpload(ctx, in)
}

func (c *confined) UploadPartCopy(ctx context.Context, in *s3.UploadPartCopyInput) (s3response.CopyPartResult, error) {
	if err := c.refuse(str(in.Bucket), str(in.Key)); err != nil {
		return s3response.CopyPartResult{}, err
	}
	if c.copySourceEscapes(in.CopySource) {
		return s3response.CopyPartResult{}, errDenied
	}
	return c.Posix.UploadPartCopy(ctx, in)
}

func (c *confined) GetObjectTagging(ctx context.Context, bucket, object, versionID string) (map[string]string, error) {
	if err := c.refuse(bucket, object); err != nil {
		return nil, err
	}
	return c.Posix.GetObjectTagging(ctx, bucket, object, versionID)
}

func (c *confined) PutObjectTagging(ctx context.Context, bucket, object, versionID string, tags map[string]string) error {
	if err := c.refuse(bucket, object); err != nil {
		return err
	}
	return c.Posix.PutObjectTagging(ctx, bucket, object, versionID, tags)
}

func (c *confined) DeleteObjectTagging(ctx context.Context, bucket, object, versionID string) error {
	if err := c.refuse(bucket, object); err != nil {
		return err
	}
	return c.Posix.DeleteObjectTagging(ctx, bucket, object, versionID)
}

func (c *confined) PutObjectLegalHold(ctx context.Context, bucket, object, versionID string, status bool) error {
	if err := c.refuse(bucket, object); err != nil {
		return err
	}
	return c.Posix.PutObjectLegalHold(ctx, bucket, object, versionID, status)
}

func (c *confined) GetObjectLegalHold(ctx context.Context, bucket, object, versionID string) (*bool, error) {
	if err := c.refuse(bucket, object); err != nil {
		return nil, err
	}
	return c.Posix.GetObjectLegalHold(ctx, bucket, object, versionID)
}

func (c *confined) PutObjectRetention(ctx context.Context, bucket, object, versionID string, retention []byte) error {
	if err := c.refuse(bucket, object); err != nil {
		return err
	}
	return c.Posix.PutObjectRetention(ctx, bucket, object, versionID, retention)
}

func (c *confined) GetObjectRetention(ctx context.Context, bucket, object, versionID string) ([]byte, error) {
	if err := c.refuse(bucket, object); err != nil {
		return nil, err
	}
	return c.Posix.GetObjectRetention(ctx, bucket, object, versionID)
}
