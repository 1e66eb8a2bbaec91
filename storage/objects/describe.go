package objects

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Entry describes what an artifact URI names in a store: one object, or a folder of
// objects below key + "/".
type Entry struct {
	// Folder is true when the URI names a prefix rather than an object.
	Folder bool
	// Objects is 1 for an object, the number of objects below a folder.
	Objects int
	// Size is the object's size or the folder's total.
	Size int64
}

// Describe reports whether u names an object or a folder in s, and its size; it is how
// the importer checks that a URI stored in the box exists, and how the artifact API sizes
// folders. A URI naming neither yields ErrNotFound.
func Describe(ctx context.Context, s Store, u URI) (Entry, error) {
	key := strings.TrimSuffix(u.Key, "/")
	if key == "" {
		return Entry{}, fmt.Errorf("uri %q names a bucket, not an artifact: %w", u.String(), ErrInvalid)
	}
	info, err := s.Stat(ctx, u.Bucket, key)
	if err == nil {
		return Entry{Objects: 1, Size: info.Size}, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Entry{}, err
	}
	infos, err := s.List(ctx, u.Bucket, key+"/")
	if err != nil {
		return Entry{}, err
	}
	if len(infos) == 0 {
		return Entry{}, fmt.Errorf("artifact %q: %w", u.String(), ErrNotFound)
	}
	e := Entry{Folder: true, Objects: len(infos)}
	for _, in := range infos {
		e.Size += in.Size
	}
	return e, nil
}
