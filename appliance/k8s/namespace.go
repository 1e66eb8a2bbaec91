package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/kfp-box/kfp-box/storage/kv"
)

// labelRE is an RFC 1123 label: what a namespace name must be.
var labelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// ValidNamespace says whether ns can name a namespace.
func ValidNamespace(ns string) bool { return labelRE.MatchString(ns) }

// SetNamespace sets the namespace runs execute in (`--namespace`): the engine reads
// Secrets, ConfigMaps and PersistentVolumeClaims there. Call it before the store is used.
func (s *Store) SetNamespace(ns string) { s.ns = ns }

// Namespace is the namespace runs execute in.
func (s *Store) Namespace() string { return s.ns }

// Namespaces are objects like the others, stored under /k8s/namespaces//<name>. Two always
// exist and cannot be deleted: Kubernetes' `default` and the runs' namespace. Objects can be
// created only in a namespace that exists and is not being deleted. Deleting a namespace
// marks it Terminating, deletes what is in it, and removes it when the last of its claims
// is released by the tasks using it, as the namespace controller does.

// builtinNamespace says whether name is a namespace that always exists.
func (s *Store) builtinNamespace(name string) bool { return name == "default" || name == s.ns }

func (s *Store) builtinNamespaces() []string {
	if s.ns == "default" {
		return []string{"default"}
	}
	return []string{"default", s.ns}
}

// prepareNamespace gives a new namespace the spec and status the API server gives it.
func prepareNamespace(o *Object) {
	o.Spec = json.RawMessage(`{"finalizers":["kubernetes"]}`)
	o.Status = json.RawMessage(`{"phase":"Active"}`)
}

func (s *Store) builtinObject(name string, rev int64) *Object {
	o := &Object{APIVersion: "v1", Kind: "Namespace", Metadata: ObjectMeta{Name: name, ResourceVersion: strconv.FormatInt(rev, 10)}}
	prepareNamespace(o)
	return o
}

// EnsureNamespaces stores the namespaces that always exist, so that lists and watches
// report them with a uid and a creation time.
func (s *Store) EnsureNamespaces(ctx context.Context) error {
	for _, name := range s.builtinNamespaces() {
		o := &Object{Metadata: ObjectMeta{Name: name}}
		if _, err := s.Create(ctx, "namespaces", "", o); err != nil && !isAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// namespaceOpen says whether objects may be created in ns (inside a write).
func (s *Store) namespaceOpen(tx kv.Tx, ns string) error {
	b, err := tx.Get(objKey("namespaces", "", ns))
	if err != nil {
		if s.builtinNamespace(ns) {
			return nil
		}
		return fmt.Errorf("namespaces %q not found: %w", ns, ErrNotFound)
	}
	var o Object
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	if o.Metadata.DeletionTimestamp != "" {
		return fmt.Errorf("unable to create new content in namespace %s because it is being terminated: %w", ns, ErrForbidden)
	}
	return nil
}

// getNamespace returns a namespace, stored or built in.
func (s *Store) getNamespace(ctx context.Context, name string) (*Object, error) {
	var o Object
	found := false
	var rev int64
	err := s.kv.View(ctx, func(tx kv.Tx) error {
		rev = tx.Revision()
		b, mod, err := tx.GetRevision(objKey("namespaces", "", name))
		if err != nil {
			return nil
		}
		found = true
		return decodeObject(b, mod, &o)
	})
	switch {
	case err != nil:
		return nil, err
	case found:
		return &o, nil
	case s.builtinNamespace(name):
		return s.builtinObject(name, rev), nil
	}
	return nil, fmt.Errorf("namespaces %q not found: %w", name, ErrNotFound)
}

// withBuiltinNamespaces adds the built-in namespaces a list of stored ones lacks.
func (s *Store) withBuiltinNamespaces(out []*Object, rev int64) []*Object {
	for _, name := range s.builtinNamespaces() {
		if !slices.ContainsFunc(out, func(o *Object) bool { return o.Metadata.Name == name }) {
			out = append(out, s.builtinObject(name, rev))
		}
	}
	slices.SortFunc(out, func(a, b *Object) int {
		switch {
		case a.Metadata.Name < b.Metadata.Name:
			return -1
		case a.Metadata.Name > b.Metadata.Name:
			return 1
		}
		return 0
	})
	return out
}

// namespacedResources are the stored kinds that live in a namespace.
var namespacedResources = []string{"secrets", "configmaps", "persistentvolumeclaims"}

// deleteNamespace marks a namespace Terminating, deletes its objects, and removes it when
// nothing is left (a claim in use stays until its tasks end; see releaseHolder).
func (s *Store) deleteNamespace(ctx context.Context, name string) (*Object, error) {
	if s.builtinNamespace(name) {
		return nil, fmt.Errorf("namespace %q cannot be deleted: it is where this box runs pipelines or Kubernetes' default namespace: %w", name, ErrForbidden)
	}
	var o Object
	rev, err := s.kv.Update(ctx, func(tx kv.Tx) error {
		k := objKey("namespaces", "", name)
		b, err := tx.Get(k)
		if err != nil {
			return fmt.Errorf("namespaces %q not found: %w", name, ErrNotFound)
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		if o.Metadata.DeletionTimestamp != "" {
			return nil
		}
		o.Metadata.DeletionTimestamp = s.now().UTC().Format(time.RFC3339)
		o.Status = json.RawMessage(`{"phase":"Terminating"}`)
		o.Metadata.ResourceVersion = ""
		nb, err := json.Marshal(&o)
		if err != nil {
			return err
		}
		return tx.Put(k, nb)
	})
	if err != nil {
		return nil, err
	}
	o.Metadata.ResourceVersion = strconv.FormatInt(rev, 10)
	for _, r := range namespacedResources {
		items, _, err := s.List(ctx, r, name)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if _, err := s.Delete(ctx, r, name, it.Metadata.Name); err != nil && !isNotFound(err) {
				return nil, fmt.Errorf("delete %s %q of namespace %q: %w", r, it.Metadata.Name, name, err)
			}
		}
	}
	if err := s.finishNamespace(ctx, name); err != nil {
		return nil, err
	}
	return &o, nil
}

// finishNamespace removes a Terminating namespace that has no objects left.
func (s *Store) finishNamespace(ctx context.Context, name string) error {
	_, err := s.kv.Update(ctx, func(tx kv.Tx) error {
		k := objKey("namespaces", "", name)
		b, err := tx.Get(k)
		if err != nil {
			return nil // gone already
		}
		var o Object
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		if o.Metadata.DeletionTimestamp == "" {
			return nil
		}
		for _, r := range namespacedResources {
			left := false
			err := tx.Scan([]byte("/k8s/"+r+"/"+name+"/"), nil, false, func(_, _ []byte, _ int64) error {
				left = true
				return kv.ErrStop
			})
			if err != nil {
				return err
			}
			if left {
				return nil
			}
		}
		return tx.Delete(k)
	})
	return err
}
