// Package k8s is the box's Kubernetes-compatible subset (docs/adr/005): core/v1 Secrets and
// ConfigMaps in namespaces, served at the Kubernetes API paths so kubectl and client-go work
// against the box, and read by the engine for kfp-kubernetes' secretAsEnv, secretAsVolume,
// configMapAsEnv and configMapAsVolume from the runs' namespace (SetNamespace, default
// kubeflow); and every task attempt as a read-only Pod with its log, made on each read from
// the execution records of storage/meta and the run's spec (pods.go, logs.go).
//
// Objects live in storage/kv under /k8s/<resource>/<namespace>/<name> as their JSON; an
// object's resourceVersion is the kv revision of its last write. Watches (watch.go) come
// from one kv.Watch subscription taken by StartWatch and a ring of recent writes under
// /k8s/ and /executions/. The package never writes execution records: deleting a pod goes
// through the engine (PodSource.Delete).
package k8s
