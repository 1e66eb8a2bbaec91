package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode"

	"github.com/gin-gonic/gin"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
)

// Patch content types the box takes for Secrets and ConfigMaps (and ApplyPatch, apply.go).
const (
	MergePatch     = "application/merge-patch+json"
	StrategicPatch = "application/strategic-merge-patch+json"
	JSONPatch      = "application/json-patch+json"
)

// maxJSONPatchOps bounds the operations of one JSON patch, as the API server does.
const maxJSONPatchOps = 10000

func init() {
	// A JSON patch's copy operations may not grow a document without bound (the library's
	// default is no limit; the API server sets the same kind of bound).
	jsonpatch.AccumulatedCopySizeLimit = 8 << 20
}

// patchRetries bounds the read-patch-write loop when another writer wins the race.
const patchRetries = 5

// Patch applies a JSON merge patch (RFC 7386) or a strategic merge patch to an object and
// stores the result. A resourceVersion in the patch must match the stored one.
func (s *Store) Patch(ctx context.Context, resource, ns, name, contentType string, patch []byte) (*Object, error) {
	if _, err := checkResource(resource); err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		cur, err := s.Get(ctx, resource, ns, name)
		if err != nil {
			return nil, err
		}
		orig, err := json.Marshal(cur)
		if err != nil {
			return nil, err
		}
		out, err := PatchDocument(contentType, orig, patch)
		if err != nil {
			return nil, err
		}
		o, err := DecodeBody("application/json", out)
		if err != nil {
			return nil, err
		}
		if o.Metadata.Name != name {
			return nil, fmt.Errorf("a patch cannot change metadata.name: %w", ErrInvalid)
		}
		res, err := s.Update(ctx, resource, ns, name, o)
		// A conflict on the version this loop read is another writer: read again. A
		// resourceVersion the patch itself set is the client's precondition.
		if errors.Is(err, ErrConflict) && o.Metadata.ResourceVersion == cur.Metadata.ResourceVersion && try < patchRetries {
			continue
		}
		return res, err
	}
}

var errUnsupportedPatch = errors.New("unsupported patch type")

// PatchDocument applies a patch of a content type (JSON merge, strategic merge or JSON
// patch) to a JSON document. It knows no resource: a served type's Store method reads,
// patches with it and writes (see Store.Patch).
func PatchDocument(contentType string, doc, patch []byte) ([]byte, error) {
	var out []byte
	var err error
	switch contentType {
	case MergePatch:
		out, err = MergeJSON(doc, patch)
	case StrategicPatch:
		out, err = MergeStrategic(doc, patch)
	case JSONPatch:
		out, err = ApplyJSONPatch(doc, patch)
	default:
		return nil, fmt.Errorf("patch type %q is not served (use %s, %s, %s or %s): %w", contentType, MergePatch, StrategicPatch, JSONPatch, ApplyPatch, errUnsupportedPatch)
	}
	if err != nil {
		return nil, fmt.Errorf("patch: %v: %w", err, ErrInvalid)
	}
	return out, nil
}

// ApplyJSONPatch applies an RFC 6902 JSON patch to a JSON document.
func ApplyJSONPatch(doc, patch []byte) (out []byte, err error) {
	ops, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, fmt.Errorf("json patch: %v", err)
	}
	if len(ops) > maxJSONPatchOps {
		return nil, fmt.Errorf("json patch: %d operations, at most %d are taken", len(ops), maxJSONPatchOps)
	}
	defer func() {
		// The library is not known to panic on any input, but a patch is the client's:
		// a failure of the library is the request's error, never the server's crash.
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("json patch: %v", r)
		}
	}()
	out, err = ops.Apply(doc)
	if err != nil {
		return nil, fmt.Errorf("json patch: %v", err)
	}
	if !json.Valid(out) {
		return nil, errors.New("json patch: the result is not a JSON document")
	}
	return out, nil
}

// MergeJSON applies an RFC 7386 JSON merge patch to a JSON document.
func MergeJSON(doc, patch []byte) ([]byte, error) {
	var d, p any
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("document: %v", err)
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, fmt.Errorf("merge patch: %v", err)
	}
	return json.Marshal(mergeValue(d, p))
}

// MergeStrategic applies a strategic merge patch to a Secret or a ConfigMap. Their fields
// are maps and scalars with no list that has a merge key, so the patch merges as a JSON
// merge patch, with the directives kubectl sends: "$patch": "replace" replaces the map it
// is in, "$patch": "delete" removes it, and the other "$" keys ($setElementOrder,
// $retainKeys, $deleteFromPrimitiveList) concern lists these types do not have.
func MergeStrategic(doc, patch []byte) ([]byte, error) {
	var d, p any
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("document: %v", err)
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, fmt.Errorf("strategic merge patch: %v", err)
	}
	if _, ok := p.(map[string]any); !ok {
		return nil, errors.New("strategic merge patch: not a JSON object")
	}
	v, del := strategicValue(d, p)
	if del {
		return nil, errors.New("strategic merge patch: $patch delete of the whole object")
	}
	return json.Marshal(v)
}

// strategicValue merges patch into doc; del says the patch deletes doc.
func strategicValue(doc, patch any) (any, bool) {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch, false
	}
	dm, ok := doc.(map[string]any)
	if !ok {
		dm = map[string]any{}
	}
	switch pm["$patch"] {
	case "delete":
		return nil, true
	case "replace":
		dm = map[string]any{}
	}
	for k, v := range pm {
		if len(k) > 0 && k[0] == '$' {
			continue
		}
		if v == nil {
			delete(dm, k)
			continue
		}
		nv, del := strategicValue(dm[k], v)
		if del {
			delete(dm, k)
			continue
		}
		dm[k] = nv
	}
	return dm, false
}

func mergeValue(doc, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	dm, ok := doc.(map[string]any)
	if !ok {
		dm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(dm, k)
			continue
		}
		dm[k] = mergeValue(dm[k], v)
	}
	return dm
}

// fieldManager is the request's field manager: the fieldManager parameter, else the
// client's name from its User-Agent, as on the API server.
func fieldManager(c *gin.Context) (string, error) {
	m := c.Query("fieldManager")
	if m == "" {
		m, _, _ = strings.Cut(c.GetHeader("User-Agent"), "/")
	}
	if len(m) > 128 {
		return "", fmt.Errorf("fieldManager: at most 128 characters: %w", ErrInvalid)
	}
	for _, r := range m {
		if !unicode.IsPrint(r) {
			return "", fmt.Errorf("fieldManager: printable characters only: %w", ErrInvalid)
		}
	}
	return m, nil
}

// writeContext is the request's context with its field manager and its dryRun.
func writeContext(c *gin.Context) (context.Context, error) {
	m, err := fieldManager(c)
	if err != nil {
		return nil, err
	}
	ctx := WithFieldManager(c.Request.Context(), m)
	for _, d := range c.QueryArray("dryRun") {
		if d != "All" {
			return nil, fmt.Errorf("dryRun %q: the only value is All: %w", d, ErrInvalid)
		}
		ctx = WithDryRun(ctx)
	}
	return ctx, nil
}

// patchHTTP serves PATCH (and server-side apply) for Secrets and ConfigMaps.
func (s *Store) patchHTTP(c *gin.Context) {
	mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	b, err := io.ReadAll(c.Request.Body)
	if err != nil {
		status(c, errors.Join(ErrInvalid, err))
		return
	}
	ctx, err := writeContext(c)
	if err != nil {
		status(c, err)
		return
	}
	if mt == ApplyPatch {
		s.applyHTTP(c, ctx, b)
		return
	}
	o, err := s.Patch(ctx, c.Param("resource"), c.Param("ns"), c.Param("name"), mt, b)
	if errors.Is(err, errUnsupportedPatch) {
		c.AbortWithStatusJSON(http.StatusUnsupportedMediaType, gin.H{"kind": "Status", "apiVersion": "v1", "metadata": gin.H{},
			"status": "Failure", "message": err.Error(), "reason": "UnsupportedMediaType", "code": http.StatusUnsupportedMediaType})
		return
	}
	if err != nil {
		status(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}
