package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kfp-box/kfp-box/appliance/engine"
	"github.com/kfp-box/kfp-box/storage/kv"
)

// PersistentVolumeClaims are stored objects, each backed by a directory
// $DATA/volumes/<namespace>/<name> made when the claim is created and removed when it is
// deleted. A claim is Bound as soon as it exists, with the storage it requests as its
// capacity. The request is not a file-system quota (see ADR 005): the box reports what a
// claim's directory uses (annotation kfp-box.io/used-bytes on reads) and refuses to mount a
// claim that already uses all it requested. Tasks hold the claims they mount
// (AcquireVolumes) until they end (ReleaseVolumes); deleting a claim that is held sets its
// deletionTimestamp, keeps the kubernetes.io/pvc-protection finalizer, and removes it when
// the last task holding it ends, as Kubernetes' pvc-protection controller does.

// PVCProtection is the finalizer every claim carries while it exists.
const PVCProtection = "kubernetes.io/pvc-protection"

// AnnotationUsedBytes reports the bytes a claim's directory uses (on get and list).
const AnnotationUsedBytes = "kfp-box.io/used-bytes"

// annotationCreatedBy names the run whose kfp-kubernetes CreatePVC made a claim.
const annotationCreatedBy = "kfp-box.io/created-by-run"

// volumes is the store's state about claims: their directories and who holds them.
type volumes struct {
	dir string // $DATA/volumes ("" until OpenVolumes: claims then have no directory)

	mu       sync.Mutex
	holders  map[string]map[string]bool // "ns/name" -> holders
	byHolder map[string][]string        // holder -> "ns/name"
}

// volumesMarker says $DATA/volumes is laid out by namespace.
const volumesMarker = ".by-namespace"

// OpenVolumes sets the directory claims live under and moves the volumes of older boxes,
// $DATA/volumes/<name>, to the runs' namespace, $DATA/volumes/<ns>/<name>, each becoming a
// claim of that name (ReadWriteMany, requesting what it uses, at least 1Gi). Names that
// cannot name a claim are left in the namespace's directory without one, and reported.
func (s *Store) OpenVolumes(ctx context.Context, dir string) (skipped []string, err error) {
	s.vols.dir = dir
	if _, err := os.Stat(filepath.Join(dir, volumesMarker)); err == nil {
		return nil, nil
	}
	old := dir + ".old-layout"
	if _, err := os.Stat(old); err != nil { // not an interrupted migration
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if len(entries) > 0 {
			if err := os.Rename(dir, old); err != nil {
				return nil, err
			}
		}
	}
	target := filepath.Join(dir, s.ns)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(old)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if err := os.Rename(filepath.Join(old, e.Name()), filepath.Join(target, e.Name())); err != nil {
			return nil, err
		}
	}
	if len(entries) > 0 {
		if err := os.RemoveAll(old); err != nil {
			return nil, err
		}
	}
	moved, _ := os.ReadDir(target)
	for _, e := range moved {
		name := e.Name()
		if !e.IsDir() || ValidName(name) != nil {
			skipped = append(skipped, name)
			continue
		}
		size := max(usage(filepath.Join(target, name)), 1<<30)
		spec, _ := json.Marshal(corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: *resource.NewQuantity(size, resource.BinarySI)}},
		})
		o := &Object{Metadata: ObjectMeta{Name: name, Annotations: map[string]string{"kfp-box.io/migrated": "true"}}, Spec: spec}
		if _, err := s.Create(ctx, "persistentvolumeclaims", s.ns, o); err != nil && !isAlreadyExists(err) {
			return skipped, fmt.Errorf("claim for volume %q: %w", name, err)
		}
	}
	return skipped, os.WriteFile(filepath.Join(dir, volumesMarker), nil, 0o644)
}

// volumeDir is the directory behind claim ns/name ("" when the store has no volume
// directory).
func (s *Store) volumeDir(ns, name string) string {
	if s.vols.dir == "" {
		return ""
	}
	return filepath.Join(s.vols.dir, ns, name)
}

// accessModes the box takes: one node, so every mode is served by a directory.
var accessModes = map[corev1.PersistentVolumeAccessMode]bool{
	corev1.ReadWriteOnce: true, corev1.ReadOnlyMany: true, corev1.ReadWriteMany: true, corev1.ReadWriteOncePod: true,
}

// ParseClaimSpec reads and checks a claim's spec as the API server does for the fields the
// box acts on: at least one known access mode, a positive resources.requests.storage, a
// Filesystem volume mode. It returns the spec and the requested bytes.
func ParseClaimSpec(raw []byte) (*corev1.PersistentVolumeClaimSpec, int64, error) {
	var spec corev1.PersistentVolumeClaimSpec
	if len(raw) == 0 {
		return nil, 0, fmt.Errorf("spec is required: %w", ErrInvalid)
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, 0, fmt.Errorf("spec: %v: %w", err, ErrInvalid)
	}
	if len(spec.AccessModes) == 0 {
		return nil, 0, fmt.Errorf("spec.accessModes: at least 1 access mode is required: %w", ErrInvalid)
	}
	for _, m := range spec.AccessModes {
		if !accessModes[m] {
			return nil, 0, fmt.Errorf("spec.accessModes: unsupported value %q (ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod): %w", m, ErrInvalid)
		}
	}
	if spec.VolumeMode != nil && *spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		return nil, 0, fmt.Errorf("spec.volumeMode %q: only Filesystem volumes are served (a claim is a directory): %w", *spec.VolumeMode, ErrInvalid)
	}
	q, ok := spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		return nil, 0, fmt.Errorf("spec.resources.requests.storage is required: %w", ErrInvalid)
	}
	if q.Sign() <= 0 {
		return nil, 0, fmt.Errorf("spec.resources.requests.storage %s: must be greater than zero: %w", q.String(), ErrInvalid)
	}
	n, ok := q.AsInt64()
	if !ok {
		return nil, 0, fmt.Errorf("spec.resources.requests.storage %s: too large: %w", q.String(), ErrInvalid)
	}
	return &spec, n, nil
}

// ParseStorage reads a storage quantity ("5Gi", "500M") as a claim's request.
func ParseStorage(s string) (int64, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("storage %q: %v: %w", s, err, ErrInvalid)
	}
	n, ok := q.AsInt64()
	if !ok || n <= 0 {
		return 0, fmt.Errorf("storage %q: must be a positive number of bytes: %w", s, ErrInvalid)
	}
	return n, nil
}

// boundStatus is the status of a bound claim with spec.
func boundStatus(spec *corev1.PersistentVolumeClaimSpec) json.RawMessage {
	st := corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: spec.AccessModes,
		Capacity: corev1.ResourceList{corev1.ResourceStorage: spec.Resources.Requests[corev1.ResourceStorage]}}
	b, _ := json.Marshal(st)
	return b
}

// preparePVC checks a new claim, binds it and makes its directory. undo removes a
// directory it made, for a claim that was not stored.
func (s *Store) preparePVC(o *Object) (undo func(), err error) {
	spec, _, err := ParseClaimSpec(o.Spec)
	if err != nil {
		return nil, err
	}
	spec.VolumeName = "pvc-" + o.Metadata.UID
	if spec.VolumeMode == nil {
		fsMode := corev1.PersistentVolumeFilesystem
		spec.VolumeMode = &fsMode
	}
	if o.Spec, err = json.Marshal(spec); err != nil {
		return nil, err
	}
	o.Status = boundStatus(spec)
	if !containsString(o.Metadata.Finalizers, PVCProtection) {
		o.Metadata.Finalizers = append(o.Metadata.Finalizers, PVCProtection)
	}
	dir := s.volumeDir(o.Metadata.Namespace, o.Metadata.Name)
	if dir == "" {
		return func() {}, nil
	}
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("claim %q: make its directory: %w", o.Metadata.Name, err)
	}
	if statErr == nil {
		return func() {}, nil
	}
	return func() { _ = os.Remove(dir) }, nil
}

// updatePVC checks an update of a claim against the stored one: the spec cannot change
// except its storage request, which can grow (the capacity follows); the status is the
// server's.
func updatePVC(old, o *Object) error {
	oldSpec, _, err := ParseClaimSpec(old.Spec)
	if err != nil {
		return err
	}
	spec, n, err := ParseClaimSpec(o.Spec)
	if err != nil {
		return err
	}
	if spec.VolumeName == "" {
		spec.VolumeName = oldSpec.VolumeName
	}
	if spec.VolumeMode == nil {
		spec.VolumeMode = oldSpec.VolumeMode
	}
	oldQ := oldSpec.Resources.Requests[corev1.ResourceStorage]
	if oq, _ := oldQ.AsInt64(); n < oq {
		return fmt.Errorf("spec.resources.requests.storage: field can not be less than previous value (%s): %w", oldQ.String(), ErrInvalid)
	}
	cmp := *spec
	cmp.Resources = oldSpec.Resources
	if !reflect.DeepEqual(normalSpec(&cmp), normalSpec(oldSpec)) {
		return fmt.Errorf("spec is immutable after creation except resources.requests for bound claims: %w", ErrInvalid)
	}
	if o.Spec, err = json.Marshal(spec); err != nil {
		return err
	}
	o.Status = boundStatus(spec)
	return nil
}

func normalSpec(s *corev1.PersistentVolumeClaimSpec) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func volKey(ns, name string) string { return ns + "/" + name }

// deletePVC deletes a claim no task holds, with its directory, or marks a held one for
// deletion (it goes when released).
func (s *Store) deletePVC(ctx context.Context, ns, name string) (*Object, error) {
	s.vols.mu.Lock()
	defer s.vols.mu.Unlock()
	if len(s.vols.holders[volKey(ns, name)]) == 0 {
		return s.removePVC(ctx, ns, name)
	}
	var o Object
	rev, err := s.kv.Update(ctx, func(tx kv.Tx) error {
		k := objKey("persistentvolumeclaims", ns, name)
		b, err := tx.Get(k)
		if err != nil {
			return fmt.Errorf("persistentvolumeclaims %q not found in namespace %q: %w", name, ns, ErrNotFound)
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		if o.Metadata.DeletionTimestamp != "" {
			return nil
		}
		o.Metadata.DeletionTimestamp = s.now().UTC().Format(time.RFC3339)
		if !containsString(o.Metadata.Finalizers, PVCProtection) {
			o.Metadata.Finalizers = append(o.Metadata.Finalizers, PVCProtection)
		}
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
	return &o, nil
}

// removePVC deletes a claim and its directory (s.vols.mu held), then its namespace if that
// was waiting for it.
func (s *Store) removePVC(ctx context.Context, ns, name string) (*Object, error) {
	o, err := s.deleteStored(ctx, "persistentvolumeclaims", ns, name)
	if err != nil {
		return nil, err
	}
	if dir := s.volumeDir(ns, name); dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			return o, fmt.Errorf("claim %q deleted, its directory not: %w", name, err)
		}
	}
	return o, s.finishNamespace(ctx, ns)
}

// ResolveVolume returns the directory of claim name in the runs' namespace for a task to
// mount, or why it cannot: the claim does not exist (on Kubernetes its pod would stay
// Pending; here the task fails saying so) or it is being deleted.
func (s *Store) ResolveVolume(ctx context.Context, name string) (string, error) {
	ns := s.ns
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("persistentvolumeclaim name %q: %v", name, err)
	}
	if s.vols.dir == "" {
		return "", errors.New("persistent volume claims have no directory on this box")
	}
	o, err := s.Get(ctx, "persistentvolumeclaims", ns, name)
	if isNotFound(err) {
		return "", fmt.Errorf("persistentvolumeclaim %q not found in namespace %q: create it before the run (kubectl apply -f, or kfp-kubernetes CreatePVC)", name, ns)
	}
	if err != nil {
		return "", err
	}
	if o.Metadata.DeletionTimestamp != "" {
		return "", fmt.Errorf("persistentvolumeclaim %q in namespace %q is being deleted", name, ns)
	}
	return s.volumeDir(ns, name), nil
}

// AcquireVolumes records holder (a task attempt) as using claims of the runs' namespace
// until ReleaseVolumes(holder); none is acquired when one is gone, is being deleted, or
// already uses all the storage it requests (its directory is measured here, as the task
// starts, not while the run is planned).
func (s *Store) AcquireVolumes(ctx context.Context, holder string, names []string) error {
	ns := s.ns
	for _, name := range names {
		o, err := s.Get(ctx, "persistentvolumeclaims", ns, name)
		if err != nil {
			return fmt.Errorf("persistentvolumeclaim %q: %w", name, err)
		}
		_, want, err := ParseClaimSpec(o.Spec)
		if err != nil {
			return err
		}
		if used := usageUpTo(s.volumeDir(ns, name), want); used >= want {
			return fmt.Errorf("persistentvolumeclaim %q is full: its directory uses at least %d bytes of the %d it requests (grow spec.resources.requests.storage or free space)", name, used, want)
		}
	}
	s.vols.mu.Lock()
	defer s.vols.mu.Unlock()
	// A delete decides under the same lock, so a claim read here stays until released.
	for _, name := range names {
		o, err := s.Get(ctx, "persistentvolumeclaims", ns, name)
		if err != nil {
			return fmt.Errorf("persistentvolumeclaim %q: %w", name, err)
		}
		if o.Metadata.DeletionTimestamp != "" {
			return fmt.Errorf("persistentvolumeclaim %q in namespace %q is being deleted", name, ns)
		}
	}
	if s.vols.holders == nil {
		s.vols.holders, s.vols.byHolder = map[string]map[string]bool{}, map[string][]string{}
	}
	for _, name := range names {
		k := volKey(ns, name)
		if s.vols.holders[k] == nil {
			s.vols.holders[k] = map[string]bool{}
		}
		if !s.vols.holders[k][holder] {
			s.vols.holders[k][holder] = true
			s.vols.byHolder[holder] = append(s.vols.byHolder[holder], k)
		}
	}
	return nil
}

// ReleaseVolumes records that holder no longer uses its claims; claims marked for deletion
// that nothing holds any more are deleted.
func (s *Store) ReleaseVolumes(holder string) {
	s.vols.mu.Lock()
	defer s.vols.mu.Unlock()
	keys := s.vols.byHolder[holder]
	delete(s.vols.byHolder, holder)
	for _, k := range keys {
		delete(s.vols.holders[k], holder)
		if len(s.vols.holders[k]) > 0 {
			continue
		}
		delete(s.vols.holders, k)
		ns, name, _ := cutKey(k)
		s.collect(ns, name)
	}
}

// collect deletes claim ns/name if it is marked for deletion (s.vols.mu held, nobody holds it).
func (s *Store) collect(ns, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o, err := s.Get(ctx, "persistentvolumeclaims", ns, name)
	if err != nil || o.Metadata.DeletionTimestamp == "" {
		return
	}
	_, _ = s.removePVC(ctx, ns, name)
}

// CollectVolumes deletes the claims marked for deletion that no task holds: those whose
// tasks ended while the box was down. Call it once the engine has taken back its tasks.
func (s *Store) CollectVolumes(ctx context.Context) error {
	items, _, err := s.List(ctx, "persistentvolumeclaims", "")
	if err != nil {
		return err
	}
	s.vols.mu.Lock()
	defer s.vols.mu.Unlock()
	for _, o := range items {
		if o.Metadata.DeletionTimestamp != "" && len(s.vols.holders[volKey(o.Metadata.Namespace, o.Metadata.Name)]) == 0 {
			s.collect(o.Metadata.Namespace, o.Metadata.Name)
		}
	}
	return nil
}

func cutKey(k string) (ns, name string, ok bool) {
	for i := 0; i < len(k); i++ {
		if k[i] == '/' {
			return k[:i], k[i+1:], true
		}
	}
	return "", k, false
}

// VolumeHolders are the holders of claim ns/name, sorted.
func (s *Store) VolumeHolders(ns, name string) []string {
	s.vols.mu.Lock()
	defer s.vols.mu.Unlock()
	var out []string
	for h := range s.vols.holders[volKey(ns, name)] {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// CreateVolume makes a claim in the runs' namespace for kfp-kubernetes' CreatePVC. A claim
// of that name the same run made already (the step was prepared again after a restart) is
// taken as made.
func (s *Store) CreateVolume(ctx context.Context, c engine.VolumeClaim) error {
	if err := ValidName(c.Name); err != nil {
		return fmt.Errorf("persistentvolumeclaim name %q: %v", c.Name, err)
	}
	size := c.Size
	if size == "" {
		return fmt.Errorf("persistentvolumeclaim %q: a size is required", c.Name)
	}
	n, err := ParseStorage(size)
	if err != nil {
		return fmt.Errorf("persistentvolumeclaim %q: %w", c.Name, err)
	}
	spec := corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceStorage: *resource.NewQuantity(n, resource.BinarySI)}}}
	for _, m := range c.AccessModes {
		spec.AccessModes = append(spec.AccessModes, corev1.PersistentVolumeAccessMode(m))
	}
	if c.StorageClass != "" {
		sc := c.StorageClass
		spec.StorageClassName = &sc
	}
	if c.VolumeName != "" {
		return fmt.Errorf("persistentvolumeclaim %q: volume_name %q: the box has no PersistentVolumes to bind to (leave it empty)", c.Name, c.VolumeName)
	}
	raw, _ := json.Marshal(spec)
	ann := map[string]string{}
	for k, v := range c.Annotations {
		ann[k] = v
	}
	if c.Run != "" {
		ann[annotationCreatedBy] = c.Run
	}
	o := &Object{Metadata: ObjectMeta{Name: c.Name, Annotations: ann}, Spec: raw}
	_, err = s.Create(ctx, "persistentvolumeclaims", s.ns, o)
	if isAlreadyExists(err) && c.Run != "" {
		if cur, gerr := s.Get(ctx, "persistentvolumeclaims", s.ns, c.Name); gerr == nil && cur.Metadata.Annotations[annotationCreatedBy] == c.Run {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("create persistentvolumeclaim %q in namespace %q: %w", c.Name, s.ns, err)
	}
	return nil
}

// DeleteVolume deletes a claim of the runs' namespace for kfp-kubernetes' DeletePVC; a claim
// in use goes when its tasks end. A claim that is already gone is not an error.
func (s *Store) DeleteVolume(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return fmt.Errorf("persistentvolumeclaim name %q: %v", name, err)
	}
	_, err := s.Delete(ctx, "persistentvolumeclaims", s.ns, name)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete persistentvolumeclaim %q: %w", name, err)
	}
	return nil
}

// usage is the disk space a directory's files take, in bytes (0 when it cannot be read).
func usage(dir string) int64 { return usageUpTo(dir, -1) }

// usageUpTo is usage, stopping once it reaches limit (limit < 0: no limit).
func usageUpTo(dir string, limit int64) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if limit >= 0 && n >= limit {
			return filepath.SkipAll
		}
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// withUsage annotates claims with the bytes their directories use.
func (s *Store) withUsage(items ...*Object) {
	for _, o := range items {
		if o.Kind != "PersistentVolumeClaim" {
			continue
		}
		dir := s.volumeDir(o.Metadata.Namespace, o.Metadata.Name)
		if dir == "" {
			continue
		}
		if o.Metadata.Annotations == nil {
			o.Metadata.Annotations = map[string]string{}
		}
		o.Metadata.Annotations[AnnotationUsedBytes] = strconv.FormatInt(usage(dir), 10)
	}
}
