package engine

import (
	"testing"

	"github.com/kfp-box/kfp-box/appliance/spec"
)

// TestFieldPathNamespace: the downward API's metadata.namespace is the runs' namespace the
// box was configured with, "kubeflow" when none was, as on single-user KFP.
func TestFieldPathNamespace(t *testing.T) {
	k8s := &spec.KubernetesExecutorConfig{}
	for _, tc := range []struct{ configured, want string }{{"", "kubeflow"}, {"team-a", "team-a"}} {
		e := &Engine{cfg: Config{Namespace: tc.configured}}
		if got := fieldPath("metadata.namespace", "pod-1", e.namespace(), k8s); got != tc.want {
			t.Errorf("namespace %q: metadata.namespace = %q, want %q", tc.configured, got, tc.want)
		}
	}
	if got := fieldPath("metadata.name", "pod-1", "team-a", k8s); got != "pod-1" {
		t.Errorf("metadata.name = %q", got)
	}
}
