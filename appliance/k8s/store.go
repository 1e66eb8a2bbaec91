package k8s

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kfp-box/kfp-box/storage/kv"
)

// Sentinel errors.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrInvalid       = errors.New("invalid")
	ErrConflict      = errors.New("conflict")
	ErrForbidden     = errors.New("forbidden")
)

func isNotFound(err error) bool      { return errors.Is(err, ErrNotFound) }
func isAlreadyExists(err error) bool { return errors.Is(err, ErrAlreadyExists) }

// DefaultNamespace is where KFP tasks look for secrets and configmaps unless the box is
// configured otherwise (SetNamespace): KFP's own namespace, where single-user KFP runs its
// pods and where users and KFP's end-to-end suite create them.
const DefaultNamespace = "kubeflow"

// Resources served, with their kinds.
var kinds = map[string]string{"secrets": "Secret", "configmaps": "ConfigMap",
	"persistentvolumeclaims": "PersistentVolumeClaim", "namespaces": "Namespace"}

// ObjectMeta is the subset of Kubernetes metadata the box keeps.
type ObjectMeta struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace,omitempty"`
	UID               string            `json:"uid,omitempty"`
	ResourceVersion   string            `json:"resourceVersion,omitempty"`
	CreationTimestamp string            `json:"creationTimestamp,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	// ManagedFields says which field manager owns which fields (apply.go).
	ManagedFields     []metav1.ManagedFieldsEntry `json:"managedFields,omitempty"`
	Finalizers        []string                    `json:"finalizers,omitempty"`
	DeletionTimestamp string                      `json:"deletionTimestamp,omitempty"`
}

// Object is a Secret, a ConfigMap, a PersistentVolumeClaim or a Namespace. Secret data is
// base64 on the wire ([]byte in Go); the spec and status of the others are kept as JSON
// and read with the types of k8s.io/api where the box acts on them (volumes.go, namespace.go).
type Object struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   ObjectMeta        `json:"metadata"`
	Type       string            `json:"type,omitempty"`
	Data       map[string][]byte `json:"-"`
	StringData map[string]string `json:"-"`
	Immutable  *bool             `json:"immutable,omitempty"`
	Spec       json.RawMessage   `json:"spec,omitempty"`
	Status     json.RawMessage   `json:"status,omitempty"`
}

type wireObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   ObjectMeta        `json:"metadata"`
	Type       string            `json:"type,omitempty"`
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string]string `json:"binaryData,omitempty"`
	StringData map[string]string `json:"stringData,omitempty"`
	Immutable  *bool             `json:"immutable,omitempty"`
	Spec       json.RawMessage   `json:"spec,omitempty"`
	Status     json.RawMessage   `json:"status,omitempty"`
}

// MarshalJSON writes Secret data as base64 and ConfigMap data as plain strings.
func (o Object) MarshalJSON() ([]byte, error) {
	w := wireObject{APIVersion: o.APIVersion, Kind: o.Kind, Metadata: o.Metadata, Type: o.Type, Immutable: o.Immutable, Spec: o.Spec, Status: o.Status}
	if len(o.Data) > 0 {
		w.Data = map[string]string{}
		for k, v := range o.Data {
			if o.Kind == "Secret" {
				w.Data[k] = base64.StdEncoding.EncodeToString(v)
			} else {
				w.Data[k] = string(v)
			}
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the wire form; Secret stringData is merged into data.
func (o *Object) UnmarshalJSON(b []byte) error {
	var w wireObject
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*o = Object{APIVersion: w.APIVersion, Kind: w.Kind, Metadata: w.Metadata, Type: w.Type, Immutable: w.Immutable, Data: map[string][]byte{},
		Spec: w.Spec, Status: w.Status}
	for k, v := range w.Data {
		if w.Kind == "Secret" {
			d, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return fmt.Errorf("data[%q] is not base64: %w", k, err)
			}
			o.Data[k] = d
		} else {
			o.Data[k] = []byte(v)
		}
	}
	for k, v := range w.BinaryData {
		d, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return fmt.Errorf("binaryData[%q] is not base64: %w", k, err)
		}
		o.Data[k] = d
	}
	for k, v := range w.StringData {
		o.Data[k] = []byte(v)
	}
	return nil
}

var keyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]{1,253}$`)

// Store keeps objects in the kv store.
type Store struct {
	kv  kv.Store
	now func() time.Time
	ns  string // where runs execute (see namespace.go)

	pods *pods    // nil until ServePods (pods.go)
	hist *history // nil until StartWatch (watch.go)

	vols volumes // the directories behind claims and who holds them (volumes.go)
}

// NewStore returns a store over s.
func NewStore(s kv.Store) *Store { return &Store{kv: s, now: time.Now, ns: DefaultNamespace} }

func objKey(resource, ns, name string) []byte {
	return []byte("/k8s/" + resource + "/" + ns + "/" + name)
}

func checkResource(resource string) (string, error) {
	kind, ok := kinds[resource]
	if !ok {
		return "", fmt.Errorf("resource %q: %w", resource, ErrNotFound)
	}
	return kind, nil
}

func validate(o *Object) error {
	if err := ValidName(o.Metadata.Name); err != nil {
		return fmt.Errorf("metadata.name %q: %v: %w", o.Metadata.Name, err, ErrInvalid)
	}
	if o.Kind == "Namespace" {
		if !ValidNamespace(o.Metadata.Name) {
			return fmt.Errorf("metadata.name %q: a namespace must be a lowercase RFC 1123 label (at most 63 characters): %w", o.Metadata.Name, ErrInvalid)
		}
	} else if !ValidNamespace(o.Metadata.Namespace) {
		return fmt.Errorf("metadata.namespace %q: must be a lowercase RFC 1123 label: %w", o.Metadata.Namespace, ErrInvalid)
	}
	for k := range o.Data {
		if !keyRE.MatchString(k) {
			return fmt.Errorf("data key %q: must consist of alphanumerics, '-', '_' or '.': %w", k, ErrInvalid)
		}
	}
	return nil
}

// Create stores a new object.
func (s *Store) Create(ctx context.Context, resource, ns string, o *Object) (*Object, error) {
	kind, err := checkResource(resource)
	if err != nil {
		return nil, err
	}
	if kind == "Namespace" {
		ns, o.Metadata.Namespace = "", ""
	} else {
		if o.Metadata.Namespace == "" {
			o.Metadata.Namespace = ns
		}
		if o.Metadata.Namespace != ns {
			return nil, fmt.Errorf("metadata.namespace %q does not match the request's namespace %q: %w", o.Metadata.Namespace, ns, ErrInvalid)
		}
	}
	o.APIVersion, o.Kind = "v1", kind
	if kind == "Secret" || kind == "ConfigMap" {
		o.Spec, o.Status = nil, nil // they have neither
	}
	if kind == "Secret" && o.Type == "" {
		o.Type = "Opaque"
	}
	if err := validate(o); err != nil {
		return nil, err
	}
	o.Metadata.UID = uuid.NewString()
	o.Metadata.CreationTimestamp = s.now().UTC().Format(time.RFC3339)
	o.Metadata.ResourceVersion = "" // the key's modification revision, set when read
	if err := s.manage(ctx, resource, nil, o); err != nil {
		return nil, err
	}
	o.Metadata.DeletionTimestamp = ""
	switch kind {
	case "PersistentVolumeClaim":
		undo, err := s.preparePVC(o)
		if err != nil {
			return nil, err
		}
		defer func() {
			if undo != nil {
				undo()
			}
		}()
		created, err := s.createStored(ctx, resource, ns, o)
		if err == nil && !isDryRun(ctx) {
			undo = nil // a dry run keeps no directory
		}
		return created, err
	case "Namespace":
		prepareNamespace(o)
	}
	return s.createStored(ctx, resource, ns, o)
}

// createStored writes a new object prepared by Create.
func (s *Store) createStored(ctx context.Context, resource, ns string, o *Object) (*Object, error) {
	rev, err := s.kv.Update(ctx, func(tx kv.Tx) error {
		if resource != "namespaces" {
			if err := s.namespaceOpen(tx, ns); err != nil {
				return err
			}
		}
		k := objKey(resource, ns, o.Metadata.Name)
		if _, err := tx.Get(k); err == nil {
			return fmt.Errorf("%s %q: %w", resource, o.Metadata.Name, ErrAlreadyExists)
		}
		b, err := json.Marshal(o)
		if err != nil {
			return err
		}
		if isDryRun(ctx) {
			return errDryRun
		}
		return tx.Put(k, b)
	})
	if errors.Is(err, errDryRun) {
		return o, nil
	}
	if err != nil {
		return nil, err
	}
	o.Metadata.ResourceVersion = strconv.FormatInt(rev, 10)
	return o, nil
}

// Update replaces an object; a non-empty resourceVersion must match the stored one.
func (s *Store) Update(ctx context.Context, resource, ns, name string, o *Object) (*Object, error) {
	kind, err := checkResource(resource)
	if err != nil {
		return nil, err
	}
	if o.Metadata.Name != name {
		return nil, fmt.Errorf("metadata.name %q does not match %q: %w", o.Metadata.Name, name, ErrInvalid)
	}
	if kind == "Namespace" {
		ns, o.Metadata.Namespace = "", ""
	} else if o.Metadata.Namespace == "" {
		o.Metadata.Namespace = ns
	}
	if o.Metadata.Namespace != ns {
		return nil, fmt.Errorf("metadata.namespace %q does not match the request's namespace %q: %w", o.Metadata.Namespace, ns, ErrInvalid)
	}
	o.APIVersion, o.Kind = "v1", kind
	if kind == "Secret" || kind == "ConfigMap" {
		o.Spec, o.Status = nil, nil
	}
	if err := validate(o); err != nil {
		return nil, err
	}
	want := o.Metadata.ResourceVersion
	rev, err := s.kv.Update(ctx, func(tx kv.Tx) error {
		k := objKey(resource, ns, name)
		b, mod, err := tx.GetRevision(k)
		if err != nil {
			return fmt.Errorf("%s %q: %w", resource, name, ErrNotFound)
		}
		var old Object
		if err := json.Unmarshal(b, &old); err != nil {
			return err
		}
		if cur := strconv.FormatInt(mod, 10); want != "" && want != cur {
			return fmt.Errorf("%s %q: resourceVersion %s is not the latest (%s): %w", resource, name, want, cur, ErrConflict)
		}
		if old.Immutable != nil && *old.Immutable {
			return fmt.Errorf("%s %q is immutable: %w", resource, name, ErrInvalid)
		}
		o.Metadata.UID, o.Metadata.CreationTimestamp = old.Metadata.UID, old.Metadata.CreationTimestamp
		// Deletion is the server's to record, as are the status of claims and namespaces.
		o.Metadata.DeletionTimestamp = old.Metadata.DeletionTimestamp
		if kind == "Secret" && o.Type == "" {
			o.Type = old.Type
		}
		switch kind {
		case "PersistentVolumeClaim":
			if err := updatePVC(&old, o); err != nil {
				return err
			}
		case "Namespace":
			o.Spec, o.Status = old.Spec, old.Status
		}
		o.Metadata.ResourceVersion = ""
		if err := s.manage(ctx, resource, &old, o); err != nil {
			return err
		}
		nb, err := json.Marshal(o)
		if err != nil {
			return err
		}
		if isDryRun(ctx) {
			o.Metadata.ResourceVersion = strconv.FormatInt(mod, 10)
			return errDryRun
		}
		return tx.Put(k, nb)
	})
	if errors.Is(err, errDryRun) {
		return o, nil
	}
	if err != nil {
		return nil, err
	}
	o.Metadata.ResourceVersion = strconv.FormatInt(rev, 10)
	return o, nil
}

// decodeObject reads a stored object; its resourceVersion is the key's modification revision.
func decodeObject(b []byte, mod int64, o *Object) error {
	if err := json.Unmarshal(b, o); err != nil {
		return err
	}
	o.Metadata.ResourceVersion = strconv.FormatInt(mod, 10)
	return nil
}

// Get returns one object.
func (s *Store) Get(ctx context.Context, resource, ns, name string) (*Object, error) {
	if _, err := checkResource(resource); err != nil {
		return nil, err
	}
	if resource == "namespaces" {
		return s.getNamespace(ctx, name)
	}
	var o Object
	err := s.kv.View(ctx, func(tx kv.Tx) error {
		b, mod, err := tx.GetRevision(objKey(resource, ns, name))
		if err != nil {
			return fmt.Errorf("%s %q not found in namespace %q: %w", resource, name, ns, ErrNotFound)
		}
		return decodeObject(b, mod, &o)
	})
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// List returns the objects of a namespace ("" = all namespaces) and the store's revision.
func (s *Store) List(ctx context.Context, resource, ns string) ([]*Object, int64, error) {
	if _, err := checkResource(resource); err != nil {
		return nil, 0, err
	}
	if resource == "namespaces" {
		ns = ""
	}
	prefix := "/k8s/" + resource + "/"
	if ns != "" {
		prefix += ns + "/"
	}
	var out []*Object
	var rev int64
	err := s.kv.View(ctx, func(tx kv.Tx) error {
		rev = tx.Revision()
		return tx.Scan([]byte(prefix), nil, false, func(_, v []byte, mod int64) error {
			var o Object
			if err := decodeObject(v, mod, &o); err != nil {
				return err
			}
			out = append(out, &o)
			return nil
		})
	})
	if err == nil && resource == "namespaces" {
		out = s.withBuiltinNamespaces(out, rev)
	}
	return out, rev, err
}

// Delete removes an object and returns it. A claim in use by a running task and a namespace
// with objects in it are marked for deletion and returned; they go when nothing holds them
// (volumes.go, namespace.go).
func (s *Store) Delete(ctx context.Context, resource, ns, name string) (*Object, error) {
	if _, err := checkResource(resource); err != nil {
		return nil, err
	}
	if isDryRun(ctx) {
		// A dry run reads what would go and keeps everything: a claim's directory and a
		// namespace's objects included.
		return s.deleteStored(ctx, resource, ns, name)
	}
	switch resource {
	case "persistentvolumeclaims":
		return s.deletePVC(ctx, ns, name)
	case "namespaces":
		return s.deleteNamespace(ctx, name)
	}
	return s.deleteStored(ctx, resource, ns, name)
}

// deleteStored removes an object from the store and returns it.
func (s *Store) deleteStored(ctx context.Context, resource, ns, name string) (*Object, error) {
	var o Object
	_, err := s.kv.Update(ctx, func(tx kv.Tx) error {
		k := objKey(resource, ns, name)
		b, mod, err := tx.GetRevision(k)
		if err != nil {
			return fmt.Errorf("%s %q not found in namespace %q: %w", resource, name, ns, ErrNotFound)
		}
		if err := decodeObject(b, mod, &o); err != nil {
			return err
		}
		if isDryRun(ctx) {
			return errDryRun
		}
		return tx.Delete(k)
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, err
	}
	return &o, nil
}

// Secret returns a secret's data from the runs' namespace (the engine's SecretStore).
func (s *Store) Secret(ctx context.Context, name string) (map[string][]byte, error) {
	o, err := s.Get(ctx, "secrets", s.ns, name)
	if err != nil {
		return nil, err
	}
	return o.Data, nil
}

// ConfigMap returns a configmap's data from the runs' namespace.
func (s *Store) ConfigMap(ctx context.Context, name string) (map[string]string, error) {
	o, err := s.Get(ctx, "configmaps", s.ns, name)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(o.Data))
	for k, v := range o.Data {
		out[k] = string(v)
	}
	return out, nil
}
