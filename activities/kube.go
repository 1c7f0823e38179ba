package activities

import (
	"context"
	"fmt"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Kube is the Kubernetes API the activities act on.
type Kube struct {
	Clientset kubernetes.Interface
}

// NewKubeClient builds a client from a KUBECONFIG value (one path or a list,
// merged the way kubectl merges them), using its current context.
func NewKubeClient(kubeconfig string) (*Kube, error) {
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(kubeconfig)}
	rest, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load KUBECONFIG: %w", err)
	}
	cs, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Kube{Clientset: cs}, nil
}

// Ready asks the API server's /readyz endpoint.
func (k *Kube) Ready(ctx context.Context) error {
	return k.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
}
