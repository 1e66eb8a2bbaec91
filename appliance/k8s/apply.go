package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/merge"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
	"sigs.k8s.io/yaml"
)

// Server-side apply (ADR 005, "Patch and apply"). The box keeps metadata.managedFields as
// the API server does: every create, update and patch records the fields its field manager
// changed (operation Update), and an apply (PATCH application/apply-patch+yaml) merges the
// applied configuration into the live object with sigs.k8s.io/structured-merge-diff,
// removes what the same manager applied before and dropped, and refuses to change a field
// another manager owns unless force=true. The machinery works on JSON documents with a
// schema per served resource, so a type joins it with RegisterApplyType and the document
// functions (ApplyDocument, PatchDocument, ManageUpdate) without touching this file.

// ApplyPatch is the content type of a server-side apply.
const ApplyPatch = "application/apply-patch+yaml"

// applyVersion is the only version the served types have.
const applyVersion = fieldpath.APIVersion("v1")

// metaSchema types the metadata of every served kind and the untyped fallbacks of the
// structured-merge-diff schema language. labels and annotations are granular maps (each
// key is owned on its own); lists the box does not interpret are atomic.
const metaSchema = `types:
- name: io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta
  map:
    fields:
    - {name: name, type: {scalar: string}}
    - {name: generateName, type: {scalar: string}}
    - {name: namespace, type: {scalar: string}}
    - {name: uid, type: {scalar: string}}
    - {name: resourceVersion, type: {scalar: string}}
    - {name: generation, type: {scalar: numeric}}
    - {name: selfLink, type: {scalar: string}}
    - {name: creationTimestamp, type: {namedType: __untyped_atomic_}}
    - {name: deletionTimestamp, type: {namedType: __untyped_atomic_}}
    - {name: labels, type: {map: {elementType: {scalar: string}}}}
    - {name: annotations, type: {map: {elementType: {scalar: string}}}}
    - {name: finalizers, type: {list: {elementType: {scalar: string}, elementRelationship: associative}}}
    - {name: ownerReferences, type: {namedType: __untyped_atomic_}}
    - {name: managedFields, type: {namedType: __untyped_atomic_}}
    elementType: {namedType: __untyped_deduced_}
- name: __untyped_atomic_
  scalar: untyped
  list: {elementType: {namedType: __untyped_atomic_}, elementRelationship: atomic}
  map: {elementType: {namedType: __untyped_atomic_}, elementRelationship: atomic}
- name: __untyped_deduced_
  scalar: untyped
  list: {elementType: {namedType: __untyped_atomic_}, elementRelationship: atomic}
  map: {elementType: {namedType: __untyped_deduced_}, elementRelationship: separable}
`

// Secrets and ConfigMaps: their data maps are granular, so two managers may own two keys.
const coreSchema = `types:
- name: io.k8s.api.core.v1.Secret
  map:
    fields:
    - {name: apiVersion, type: {scalar: string}}
    - {name: kind, type: {scalar: string}}
    - {name: metadata, type: {namedType: io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta}, default: {}}
    - {name: type, type: {scalar: string}}
    - {name: immutable, type: {scalar: boolean}}
    - {name: data, type: {map: {elementType: {scalar: string}}}}
    - {name: stringData, type: {map: {elementType: {scalar: string}}}}
    elementType: {namedType: __untyped_deduced_}
- name: io.k8s.api.core.v1.ConfigMap
  map:
    fields:
    - {name: apiVersion, type: {scalar: string}}
    - {name: kind, type: {scalar: string}}
    - {name: metadata, type: {namedType: io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta}, default: {}}
    - {name: immutable, type: {scalar: boolean}}
    - {name: data, type: {map: {elementType: {scalar: string}}}}
    - {name: binaryData, type: {map: {elementType: {scalar: string}}}}
    elementType: {namedType: __untyped_deduced_}
`

var applyTypes = struct {
	sync.Mutex
	schemas []string          // "types:" documents, joined into one parser
	names   map[string]string // resource -> schema type name
	parser  *typed.Parser
	err     error
}{schemas: []string{metaSchema, coreSchema}, names: map[string]string{
	"secrets": "io.k8s.api.core.v1.Secret", "configmaps": "io.k8s.api.core.v1.ConfigMap",
}}

// RegisterApplyType makes a resource patchable and appliable: typeName names its type in
// schemaYAML, a structured-merge-diff schema document ("types:" list) that may refer to
// io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta, __untyped_atomic_ and __untyped_deduced_.
// Call it from an init function.
func RegisterApplyType(resource, typeName, schemaYAML string) {
	applyTypes.Lock()
	defer applyTypes.Unlock()
	applyTypes.names[resource] = typeName
	if schemaYAML != "" {
		applyTypes.schemas = append(applyTypes.schemas, schemaYAML)
	}
	applyTypes.parser, applyTypes.err = nil, nil
}

// applyType returns the parseable type of a resource.
func applyType(resource string) (typed.ParseableType, error) {
	applyTypes.Lock()
	defer applyTypes.Unlock()
	name, ok := applyTypes.names[resource]
	if !ok {
		return typed.ParseableType{}, fmt.Errorf("resource %q has no apply schema: %w", resource, ErrNotFound)
	}
	if applyTypes.parser == nil && applyTypes.err == nil {
		var all strings.Builder
		all.WriteString("types:\n")
		for _, s := range applyTypes.schemas {
			all.WriteString(strings.TrimPrefix(s, "types:\n"))
		}
		applyTypes.parser, applyTypes.err = typed.NewParser(typed.YAMLObject(all.String()))
	}
	if applyTypes.err != nil {
		return typed.ParseableType{}, fmt.Errorf("apply schema: %v", applyTypes.err)
	}
	t := applyTypes.parser.Type(name)
	if !t.IsValid() {
		return typed.ParseableType{}, fmt.Errorf("apply schema lacks type %q", name)
	}
	return t, nil
}

// strippedFields are the fields no manager owns, as on the API server: identity and
// bookkeeping the server sets.
var strippedFields = fieldpath.NewSet(
	fieldpath.MakePathOrDie("apiVersion"),
	fieldpath.MakePathOrDie("kind"),
	fieldpath.MakePathOrDie("metadata"),
	fieldpath.MakePathOrDie("metadata", "name"),
	fieldpath.MakePathOrDie("metadata", "namespace"),
	fieldpath.MakePathOrDie("metadata", "uid"),
	fieldpath.MakePathOrDie("metadata", "resourceVersion"),
	fieldpath.MakePathOrDie("metadata", "generation"),
	fieldpath.MakePathOrDie("metadata", "selfLink"),
	fieldpath.MakePathOrDie("metadata", "creationTimestamp"),
	fieldpath.MakePathOrDie("metadata", "managedFields"),
)

// sameVersion converts between the single version the served types have.
type sameVersion struct{}

func (sameVersion) Convert(v *typed.TypedValue, _ fieldpath.APIVersion) (*typed.TypedValue, error) {
	return v, nil
}
func (sameVersion) IsMissingVersionError(error) bool { return false }

var updater = (&merge.UpdaterBuilder{Converter: sameVersion{}}).BuildUpdater()

// managerKey names a manager and operation in structured-merge-diff's map of managers.
func managerKey(manager string, op metav1.ManagedFieldsOperationType) string {
	b, _ := json.Marshal([]string{manager, string(op)})
	return string(b)
}

func parseManagerKey(k string) (manager string, op metav1.ManagedFieldsOperationType) {
	var p []string
	if json.Unmarshal([]byte(k), &p) != nil || len(p) != 2 {
		return k, ""
	}
	return p[0], metav1.ManagedFieldsOperationType(p[1])
}

// decodeManaged reads metadata.managedFields into structured-merge-diff's form.
func decodeManaged(entries []metav1.ManagedFieldsEntry) (fieldpath.ManagedFields, error) {
	m := fieldpath.ManagedFields{}
	for i, e := range entries {
		if e.Operation != metav1.ManagedFieldsOperationApply && e.Operation != metav1.ManagedFieldsOperationUpdate {
			return nil, fmt.Errorf("metadata.managedFields[%d].operation %q: must be Apply or Update: %w", i, e.Operation, ErrInvalid)
		}
		if e.FieldsType != "FieldsV1" || e.FieldsV1 == nil {
			return nil, fmt.Errorf("metadata.managedFields[%d]: fieldsType must be FieldsV1 with fieldsV1: %w", i, ErrInvalid)
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(bytes.NewReader(e.FieldsV1.Raw)); err != nil {
			return nil, fmt.Errorf("metadata.managedFields[%d].fieldsV1: %v: %w", i, err, ErrInvalid)
		}
		k := managerKey(e.Manager, e.Operation)
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("metadata.managedFields: manager %q with operation %s appears twice: %w", e.Manager, e.Operation, ErrInvalid)
		}
		m[k] = fieldpath.NewVersionedSet(set, fieldpath.APIVersion(e.APIVersion), e.Operation == metav1.ManagedFieldsOperationApply)
	}
	return m, nil
}

// encodeManaged writes managers back as metadata.managedFields; an entry whose set did not
// change keeps its time.
func encodeManaged(m fieldpath.ManagedFields, old []metav1.ManagedFieldsEntry, now time.Time) ([]metav1.ManagedFieldsEntry, error) {
	prev := map[string]metav1.ManagedFieldsEntry{}
	for _, e := range old {
		prev[managerKey(e.Manager, e.Operation)] = e
	}
	var out []metav1.ManagedFieldsEntry
	for k, vs := range m {
		set := vs.Set().Difference(strippedFields)
		if set.Empty() {
			continue
		}
		raw, err := set.ToJSON()
		if err != nil {
			return nil, err
		}
		manager, op := parseManagerKey(k)
		e := metav1.ManagedFieldsEntry{Manager: manager, Operation: op, APIVersion: string(vs.APIVersion()),
			Time: &metav1.Time{Time: now.UTC().Truncate(time.Second)}, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: raw}}
		if p, ok := prev[k]; ok && p.FieldsV1 != nil && bytes.Equal(p.FieldsV1.Raw, raw) && p.Time != nil {
			e.Time = p.Time
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		if out[i].Manager != out[j].Manager {
			return out[i].Manager < out[j].Manager
		}
		return out[i].Operation < out[j].Operation
	})
	return out, nil
}

// toTyped types a JSON document of a resource, without the fields no manager owns.
func toTyped(t typed.ParseableType, doc map[string]any) (*typed.TypedValue, error) {
	d := make(map[string]any, len(doc))
	for k, v := range doc {
		d[k] = v
	}
	if md, ok := d["metadata"].(map[string]any); ok {
		m := make(map[string]any, len(md))
		for k, v := range md {
			if k != "managedFields" && k != "resourceVersion" {
				m[k] = v
			}
		}
		d["metadata"] = m
	}
	tv, err := t.FromUnstructured(d)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	return tv, nil
}

// ApplyConflict is a server-side apply that would change fields other managers own.
type ApplyConflict struct{ Conflicts merge.Conflicts }

func (c *ApplyConflict) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Apply failed with %d conflict", len(c.Conflicts))
	if len(c.Conflicts) != 1 {
		b.WriteString("s")
	}
	b.WriteString(": ")
	for i, cf := range c.Conflicts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(conflictMessage(cf) + ": " + cf.Path.String())
	}
	return b.String()
}

func (c *ApplyConflict) Unwrap() error { return ErrConflict }

func conflictMessage(cf merge.Conflict) string {
	m, op := parseManagerKey(cf.Manager)
	if op == metav1.ManagedFieldsOperationUpdate {
		return fmt.Sprintf("conflict with %q using v1", m)
	}
	return fmt.Sprintf("conflict with %q", m)
}

// ApplyDocument applies config, a server-side apply configuration of resource, to live
// (nil when the object does not exist yet) as manager. It returns the merged document
// with its metadata.managedFields, or nil when the apply changes nothing. Conflicts with
// other managers are an *ApplyConflict unless force is set.
func ApplyDocument(resource string, live, config map[string]any, manager string, force bool, now time.Time) (map[string]any, error) {
	t, err := applyType(resource)
	if err != nil {
		return nil, err
	}
	if md, _ := config["metadata"].(map[string]any); md != nil && md["managedFields"] != nil {
		return nil, fmt.Errorf("metadata.managedFields must be empty in an apply configuration: %w", ErrInvalid)
	}
	var oldEntries []metav1.ManagedFieldsEntry
	if live == nil {
		live = map[string]any{}
	} else if oldEntries, err = entriesOf(live); err != nil {
		return nil, err
	}
	managers, err := decodeManaged(oldEntries)
	if err != nil {
		return nil, err
	}
	lv, err := toTyped(t, live)
	if err != nil {
		return nil, fmt.Errorf("live object: %w", err)
	}
	cv, err := toTyped(t, config)
	if err != nil {
		return nil, fmt.Errorf("apply configuration: %w", err)
	}
	key := managerKey(manager, metav1.ManagedFieldsOperationApply)
	out, managers, err := updater.Apply(lv, cv, applyVersion, managers, key, force)
	var cfs merge.Conflicts
	if errors.As(err, &cfs) && manager == kubectlManager {
		// Moving from client-side apply: conflicts on fields that the last-applied
		// annotation names and nobody changed since are taken over, as on the API server.
		if rest := notLastApplied(t, live, lv, cfs); len(rest) > 0 {
			cfs = rest
		} else if managers, err = decodeManaged(oldEntries); err == nil {
			out, managers, err = updater.Apply(lv, cv, applyVersion, managers, key, true)
		}
	}
	if errors.As(err, &cfs) {
		return nil, &ApplyConflict{Conflicts: cfs}
	}
	if err != nil {
		return nil, fmt.Errorf("apply: %v: %w", err, ErrInvalid)
	}
	entries, err := encodeManaged(managers, oldEntries, now)
	if err != nil {
		return nil, err
	}
	noop := out == nil
	if noop {
		out = lv
	}
	doc, ok := out.AsValue().Unstructured().(map[string]any)
	if !ok {
		return nil, fmt.Errorf("apply gave no object: %w", ErrInvalid)
	}
	md, _ := doc["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		doc["metadata"] = md
	}
	// kubectl's server-side apply keeps an existing last-applied annotation in step with
	// what it applied, so that a later client-side apply computes from it (as on the API
	// server; like there, the annotation's owner does not change).
	if old, has := annotation(live, lastAppliedAnnotation); has && manager == kubectlManager {
		la, err := lastApplied(config)
		if err != nil {
			return nil, err
		}
		if la != old {
			// A copy: the merged value may share its maps with the live document.
			ann := map[string]any{}
			if old, ok := md["annotations"].(map[string]any); ok {
				for k, v := range old {
					ann[k] = v
				}
			}
			ann[lastAppliedAnnotation] = la
			md["annotations"] = ann
			noop = false
		}
	}
	if noop && sameEntries(entries, oldEntries) {
		return nil, nil
	}
	if rv, _ := metaOf(config)["resourceVersion"].(string); rv != "" {
		md["resourceVersion"] = rv // the configuration's precondition
	} else if rv, _ := metaOf(live)["resourceVersion"].(string); rv != "" {
		md["resourceVersion"] = rv
	}
	md["managedFields"] = entries
	return doc, nil
}

// kubectlManager is kubectl's field manager for server-side apply, the one the API server
// lets take over from client-side apply.
const kubectlManager = "kubectl"

// lastAppliedAnnotation is where client-side kubectl apply keeps what it applied.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

func annotation(doc map[string]any, key string) (string, bool) {
	ann, _ := metaOf(doc)["annotations"].(map[string]any)
	v, ok := ann[key].(string)
	return v, ok
}

// lastApplied is the annotation value for an apply configuration: its JSON without the
// annotation itself.
func lastApplied(config map[string]any) (string, error) {
	c := make(map[string]any, len(config))
	for k, v := range config {
		c[k] = v
	}
	if md := metaOf(config); md != nil {
		m := make(map[string]any, len(md))
		for k, v := range md {
			m[k] = v
		}
		if ann, ok := md["annotations"].(map[string]any); ok {
			a := make(map[string]any, len(ann))
			for k, v := range ann {
				if k != lastAppliedAnnotation {
					a[k] = v
				}
			}
			m["annotations"] = a
			if len(a) == 0 {
				delete(m, "annotations")
			}
		}
		c["metadata"] = m
	}
	b, err := json.Marshal(c)
	return string(b) + "\n", err
}

// notLastApplied returns the conflicts that client-side apply does not explain: those on
// fields the live object's last-applied annotation does not name, or whose live value
// differs from it. Without a usable annotation that is all of them.
func notLastApplied(t typed.ParseableType, live map[string]any, lv *typed.TypedValue, cfs merge.Conflicts) merge.Conflicts {
	raw, ok := annotation(live, lastAppliedAnnotation)
	if !ok {
		return cfs
	}
	var la map[string]any
	if json.Unmarshal([]byte(raw), &la) != nil || la == nil {
		return cfs
	}
	lat, err := toTyped(t, la)
	if err != nil {
		return cfs
	}
	set, err := lat.ToFieldSet()
	if err != nil {
		return cfs
	}
	cmp, err := lat.Compare(lv)
	if err != nil {
		return cfs
	}
	allowed := set.Difference(cmp.Modified)
	var rest merge.Conflicts
	for _, c := range cfs {
		if !allowed.Has(c.Path) {
			rest = append(rest, c)
		}
	}
	return rest
}

func sameEntries(a, b []metav1.ManagedFieldsEntry) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func metaOf(doc map[string]any) map[string]any {
	md, _ := doc["metadata"].(map[string]any)
	return md
}

// entriesOf reads metadata.managedFields of a JSON document.
func entriesOf(doc map[string]any) ([]metav1.ManagedFieldsEntry, error) {
	raw, ok := metaOf(doc)["managedFields"]
	if !ok || raw == nil {
		return nil, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var es []metav1.ManagedFieldsEntry
	if err := json.Unmarshal(b, &es); err != nil {
		return nil, fmt.Errorf("metadata.managedFields: %v: %w", err, ErrInvalid)
	}
	return es, nil
}

// ManageUpdate records manager as the owner of what a create or an update changed: live is
// the stored document (nil on create), next the one to store; next's managedFields, when it
// has any, are taken as the client's, else live's are kept. It returns next's entries.
func ManageUpdate(resource string, live, next map[string]any, manager string, now time.Time) ([]metav1.ManagedFieldsEntry, error) {
	t, err := applyType(resource)
	if err != nil {
		return nil, err
	}
	entries, err := entriesOf(next)
	if err != nil {
		return nil, err
	}
	if live == nil {
		live = map[string]any{}
	}
	if entries == nil {
		if entries, err = entriesOf(live); err != nil {
			return nil, err
		}
	}
	managers, err := decodeManaged(entries)
	if err != nil {
		return nil, err
	}
	lv, err := toTyped(t, live)
	if err != nil {
		return nil, fmt.Errorf("stored object: %w", err)
	}
	nv, err := toTyped(t, next)
	if err != nil {
		return nil, err
	}
	_, managers, err = updater.Update(lv, nv, applyVersion, managers, managerKey(manager, metav1.ManagedFieldsOperationUpdate))
	if err != nil {
		return nil, fmt.Errorf("managed fields: %v: %w", err, ErrInvalid)
	}
	return encodeManaged(managers, entries, now)
}

// dryRunKey marks a context whose writes are checked and answered but not stored
// (dryRun=All: kubectl diff, --dry-run=server).
type dryRunKey struct{}

// errDryRun ends a dry run's transaction before it writes.
var errDryRun = errors.New("dry run")

// WithDryRun makes the store's writes made with ctx dry runs.
func WithDryRun(ctx context.Context) context.Context {
	return context.WithValue(ctx, dryRunKey{}, true)
}

func isDryRun(ctx context.Context) bool { v, _ := ctx.Value(dryRunKey{}).(bool); return v }

// deleteContext is writeContext for DELETE, whose dryRun may also come in the body's
// DeleteOptions (kubectl sends it there), as JSON or Kubernetes protobuf.
func deleteContext(c *gin.Context) (context.Context, error) {
	ctx, err := writeContext(c)
	if err != nil || c.Request.Body == nil {
		return ctx, err
	}
	b, err := io.ReadAll(io.LimitReader(c.Request.Body, 1<<20))
	if err != nil {
		return nil, errors.Join(ErrInvalid, err)
	}
	dry, err := ParseDeleteOptions(b)
	if err != nil {
		return nil, err
	}
	if dry {
		ctx = WithDryRun(ctx)
	}
	return ctx, nil
}

// ParseDeleteOptions reads a DELETE body (empty, JSON or Kubernetes protobuf
// DeleteOptions) and says whether it asks for a dry run.
func ParseDeleteOptions(b []byte) (dryRun bool, err error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return false, nil
	}
	var opts metav1.DeleteOptions
	if bytes.HasPrefix(b, protobufMagic) {
		var env kruntime.Unknown
		if err := env.Unmarshal(b[len(protobufMagic):]); err != nil {
			return false, fmt.Errorf("DeleteOptions: %v: %w", err, ErrInvalid)
		}
		if err := opts.Unmarshal(env.Raw); err != nil {
			return false, fmt.Errorf("DeleteOptions: %v: %w", err, ErrInvalid)
		}
	} else if err := json.Unmarshal(b, &opts); err != nil {
		return false, fmt.Errorf("DeleteOptions: %v: %w", err, ErrInvalid)
	}
	for _, d := range opts.DryRun {
		if d != "All" {
			return false, fmt.Errorf("dryRun %q: the only value is All: %w", d, ErrInvalid)
		}
		dryRun = true
	}
	return dryRun, nil
}

// fieldManager carries the request's field manager to the store's writes.
type fieldManagerKey struct{}

type fieldManagerValue struct {
	name    string
	managed bool // the caller (an apply) already set managedFields
}

// WithFieldManager names the field manager of the writes made with ctx.
func WithFieldManager(ctx context.Context, manager string) context.Context {
	return context.WithValue(ctx, fieldManagerKey{}, fieldManagerValue{name: manager})
}

func withManaged(ctx context.Context) context.Context {
	v, _ := ctx.Value(fieldManagerKey{}).(fieldManagerValue)
	v.managed = true
	return context.WithValue(ctx, fieldManagerKey{}, v)
}

// manage sets o's managedFields for a create (old nil) or an update made with ctx.
func (s *Store) manage(ctx context.Context, resource string, old, o *Object) error {
	v, _ := ctx.Value(fieldManagerKey{}).(fieldManagerValue)
	if v.managed {
		return nil
	}
	if v.name == "" {
		v.name = "unknown"
	}
	var live map[string]any
	if old != nil {
		var err error
		if live, err = objectDoc(old); err != nil {
			return err
		}
	}
	next, err := objectDoc(o)
	if err != nil {
		return err
	}
	es, err := ManageUpdate(resource, live, next, v.name, s.now())
	if err != nil {
		return err
	}
	o.Metadata.ManagedFields = es
	return nil
}

// objectDoc is an object's JSON document.
func objectDoc(o *Object) (map[string]any, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var d map[string]any
	return d, json.Unmarshal(b, &d)
}

// parseApplyConfig reads an apply body (YAML or JSON) of the given kind.
func parseApplyConfig(kind string, body []byte) (map[string]any, error) {
	j, err := yaml.YAMLToJSON(body)
	if err != nil {
		return nil, fmt.Errorf("apply configuration: %v: %w", err, ErrInvalid)
	}
	var doc map[string]any
	if err := json.Unmarshal(j, &doc); err != nil || doc == nil {
		return nil, fmt.Errorf("apply configuration: not an object: %w", ErrInvalid)
	}
	if doc["apiVersion"] != "v1" || doc["kind"] != kind {
		return nil, fmt.Errorf("apply configuration: apiVersion %v, kind %v: want v1 and %s: %w", doc["apiVersion"], doc["kind"], kind, ErrInvalid)
	}
	return doc, nil
}

// ParseApplyConfig reads a server-side apply body for a resource; exported for the fuzzer.
func ParseApplyConfig(resource string, body []byte) (map[string]any, error) {
	kind, err := checkResource(resource)
	if err != nil {
		return nil, err
	}
	return parseApplyConfig(kind, body)
}

// Apply is a server-side apply of body to an object as manager; created says it was made.
func (s *Store) Apply(ctx context.Context, resource, ns, name string, body []byte, manager string, force bool) (o *Object, created bool, err error) {
	kind, err := checkResource(resource)
	if err != nil {
		return nil, false, err
	}
	config, err := parseApplyConfig(kind, body)
	if err != nil {
		return nil, false, err
	}
	md := metaOf(config)
	if md == nil {
		return nil, false, fmt.Errorf("apply configuration: metadata.name is required: %w", ErrInvalid)
	}
	if n, _ := md["name"].(string); n != name {
		return nil, false, fmt.Errorf("apply configuration: metadata.name %v does not match %q: %w", md["name"], name, ErrInvalid)
	}
	if n, ok := md["namespace"]; ok && n != ns {
		return nil, false, fmt.Errorf("apply configuration: metadata.namespace %v does not match %q: %w", n, ns, ErrInvalid)
	}
	ctx = withManaged(ctx)
	for try := 0; ; try++ {
		cur, err := s.Get(ctx, resource, ns, name)
		var live map[string]any
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return nil, false, err
		default:
			if live, err = objectDoc(cur); err != nil {
				return nil, false, err
			}
		}
		doc, err := ApplyDocument(resource, live, config, manager, force, s.now())
		if err != nil {
			return nil, false, err
		}
		if doc == nil {
			return cur, false, nil // nothing changed: no write, as on the API server
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return nil, false, err
		}
		next, err := DecodeBody("application/json", b)
		if err != nil {
			return nil, false, err
		}
		if cur == nil {
			next.Metadata.ResourceVersion = ""
			o, err = s.Create(ctx, resource, ns, next)
			if errors.Is(err, ErrAlreadyExists) && try < patchRetries {
				continue
			}
			return o, err == nil, err
		}
		o, err = s.Update(ctx, resource, ns, name, next)
		if errors.Is(err, ErrConflict) && next.Metadata.ResourceVersion == cur.Metadata.ResourceVersion && try < patchRetries {
			continue
		}
		return o, false, err
	}
}

// applyHTTP serves a server-side apply: 201 when it created the object, 200 otherwise, and
// 409 with one cause per conflicting field when other managers own what it would change.
func (s *Store) applyHTTP(c *gin.Context, ctx context.Context, body []byte) {
	manager := c.Query("fieldManager")
	if manager == "" {
		status(c, fmt.Errorf("PATCH with %s requires the fieldManager parameter: %w", ApplyPatch, ErrInvalid))
		return
	}
	force := c.Query("force") == "true"
	o, created, err := s.Apply(ctx, c.Param("resource"), c.Param("ns"), c.Param("name"), body, manager, force)
	var cf *ApplyConflict
	if errors.As(err, &cf) {
		causes := make([]gin.H, 0, len(cf.Conflicts))
		for _, x := range cf.Conflicts {
			causes = append(causes, gin.H{"type": "FieldManagerConflict", "message": conflictMessage(x), "field": x.Path.String()})
		}
		c.AbortWithStatusJSON(http.StatusConflict, gin.H{"kind": "Status", "apiVersion": "v1", "metadata": gin.H{},
			"status": "Failure", "message": cf.Error(), "reason": "Conflict", "code": http.StatusConflict,
			"details": gin.H{"name": c.Param("name"), "kind": c.Param("resource"), "causes": causes}})
		return
	}
	if err != nil {
		status(c, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	c.JSON(code, o)
}
