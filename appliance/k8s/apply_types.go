package k8s

// The apply schemas of the kinds volumes.go and namespace.go serve. Their specs and
// statuses are read through k8s.io/api types where the box acts on them; for field
// ownership a spec's maps are granular and its lists atomic (the deduced type), and the
// status belongs to the server.
const claimNamespaceSchema = `types:
- name: io.k8s.api.core.v1.PersistentVolumeClaim
  map:
    fields:
    - {name: apiVersion, type: {scalar: string}}
    - {name: kind, type: {scalar: string}}
    - {name: metadata, type: {namedType: io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta}, default: {}}
    - {name: spec, type: {namedType: __untyped_deduced_}}
    - {name: status, type: {namedType: __untyped_atomic_}}
    elementType: {namedType: __untyped_deduced_}
- name: io.k8s.api.core.v1.Namespace
  map:
    fields:
    - {name: apiVersion, type: {scalar: string}}
    - {name: kind, type: {scalar: string}}
    - {name: metadata, type: {namedType: io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta}, default: {}}
    - {name: spec, type: {namedType: __untyped_atomic_}}
    - {name: status, type: {namedType: __untyped_atomic_}}
    elementType: {namedType: __untyped_deduced_}
`

func init() {
	RegisterApplyType("persistentvolumeclaims", "io.k8s.api.core.v1.PersistentVolumeClaim", claimNamespaceSchema)
	RegisterApplyType("namespaces", "io.k8s.api.core.v1.Namespace", "")
}
