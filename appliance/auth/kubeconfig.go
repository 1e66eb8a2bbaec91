package auth

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Kubeconfig renders a kubeconfig that points kubectl (and the kfp SDK, which reads the
// kubeconfig when kfp.Client() is given no host) at the box with token. ca is the PEM of
// the server's certificate for https (nil for http).
func Kubeconfig(server, token string, ca []byte, namespace string) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Config\nclusters:\n- name: kfp-box\n  cluster:\n")
	fmt.Fprintf(&b, "    server: %s\n", server)
	if len(ca) > 0 {
		fmt.Fprintf(&b, "    certificate-authority-data: %s\n", base64.StdEncoding.EncodeToString(ca))
	}
	b.WriteString("users:\n- name: kfp-box\n  user:\n")
	fmt.Fprintf(&b, "    token: %s\n", token)
	b.WriteString("contexts:\n- name: kfp-box\n  context:\n    cluster: kfp-box\n    user: kfp-box\n")
	fmt.Fprintf(&b, "    namespace: %s\n", namespace)
	b.WriteString("current-context: kfp-box\n")
	return []byte(b.String())
}
