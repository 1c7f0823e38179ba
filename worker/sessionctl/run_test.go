package sessionctl

import (
	"strings"
	"testing"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/kubestack"
	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
)

// Without the CRDs Run stops at once with a message that says what to do,
// instead of its informers retrying quietly forever.
func TestRunWithoutCRDs(t *testing.T) {
	cluster := kubetest.Start(t, kubestack.Options{WithoutControllers: true, WithoutMetrics: true})
	kube, err := activities.NewKube(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	kube.Namespace = "default"
	c, err := New(Config{Kube: kube})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "install deploy/crds") {
		t.Fatalf("Run = %v; want an error about the missing CRDs", err)
	}
	if err := c.Run(t.Context()); err == nil {
		t.Error("a second Run was accepted")
	}
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no kube":    {},
		"empty Kube": {Kube: &activities.Kube{}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}
