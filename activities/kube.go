package activities

import (
	"context"
	"fmt"
	"path/filepath"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// DefaultNamespace is where Sessions, Templates and session pods live unless
// SESSION_NAMESPACE says otherwise.
const DefaultNamespace = "streamspace"

// Kube is the Kubernetes API the activities, the session controller and the
// server act on.
type Kube struct {
	Clientset kubernetes.Interface
	Dynamic   dynamic.Interface // Sessions, Templates, metrics.k8s.io
	Config    *rest.Config
	// Namespace holds the Sessions, Templates and session pods.
	Namespace string
}

// NewKubeClient builds a client from a KUBECONFIG value (one path or a list,
// merged the way kubectl merges them), using its current context.
func NewKubeClient(kubeconfig string) (*Kube, error) {
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(kubeconfig)}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load KUBECONFIG: %w", err)
	}
	return NewKube(cfg)
}

// NewKube builds the clients for cfg, with client-side rate limits raised
// from client-go's defaults (5 QPS) to what a busy controller needs, and the
// default namespace.
func NewKube(cfg *rest.Config) (*Kube, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 100, 200
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	return &Kube{Clientset: cs, Dynamic: dyn, Config: cfg, Namespace: DefaultNamespace}, nil
}

// Ready asks the API server's /readyz endpoint.
func (k *Kube) Ready(ctx context.Context) error {
	return k.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
}
