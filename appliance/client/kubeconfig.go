package client

import (
	"fmt"
	"net/http"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kube is what a kubeconfig gives: the cluster's URL and a transport carrying the user's
// credentials (token, token file, client certificate or exec credential) and trusting the
// cluster's CA.
type kube struct {
	host      string
	transport http.RoundTripper
}

// loadKubeconfig reads path (and its context, "" for the current one) as kubectl and the
// SDK's kubernetes client do.
func loadKubeconfig(path, context string) (*kube, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %v: %w", path, err, ErrUsage)
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %v: %w", path, err, ErrUsage)
	}
	return &kube{host: cfg.Host, transport: rt}, nil
}
