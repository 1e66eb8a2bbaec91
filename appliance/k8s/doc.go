// Package k8s is the box's Kubernetes-compatible subset: core/v1 Secrets and ConfigMaps in
// namespaces, served at the Kubernetes API paths so kubectl and client-go work against the
// box (`kubectl --server http://127.0.0.1:8888 create secret generic ...`), and read by the
// engine for kfp-kubernetes' secretAsEnv, secretAsVolume, configMapAsEnv and configMapAsVolume.
//
// Objects live in storage/kv under /k8s/<resource>/<namespace>/<name> as their JSON; an
// object's resourceVersion is the kv revision of its last write. Pods, logs and volumes are to
// come on the same store.
package k8s
