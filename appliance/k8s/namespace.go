package k8s

import "regexp"

// labelRE is an RFC 1123 label: what a namespace name must be.
var labelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// ValidNamespace says whether ns can name a namespace.
func ValidNamespace(ns string) bool { return labelRE.MatchString(ns) }

// SetNamespace sets the namespace runs execute in (`--namespace`): the engine reads
// Secrets and ConfigMaps there. Call it before the store is used.
func (s *Store) SetNamespace(ns string) { s.ns = ns }

// Namespace is the namespace runs execute in.
func (s *Store) Namespace() string { return s.ns }

// namespaces are the namespaces the box reports: Kubernetes' default one and the runs'.
func (s *Store) namespaces() []string {
	if s.ns == "default" {
		return []string{"default"}
	}
	return []string{"default", s.ns}
}
