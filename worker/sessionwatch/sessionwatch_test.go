package sessionwatch

import (
	"context"
	"strings"
	"testing"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/workflows"
)

// Run refuses a configuration it cannot watch with, saying what is missing,
// instead of failing later on a nil client. (Its behaviour on a real
// cluster is tested end to end in server/sessions_watch_test.go.)
func TestRunValidatesConfig(t *testing.T) {
	dyn, err := dynamic.NewForConfig(&rest.Config{Host: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	kube := &activities.Kube{Dynamic: dyn, Namespace: "sessions"}
	for name, c := range map[string]struct {
		cfg  Config
		want string
	}{
		"nothing":      {Config{}, "Config.Kube"},
		"no namespace": {Config{Kube: &activities.Kube{}}, "Config.Kube"},
		"no signaler":  {Config{Kube: kube, Store: noStore{}}, "Config.Signaler"},
		"no store":     {Config{Kube: kube, Signaler: &workflows.Client{}}, "Config.Store"},
	} {
		// Ended already: a Run that did not refuse returns nil at once.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := New(c.cfg).Run(ctx)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Run = %v; want an error naming %s", name, err, c.want)
		}
	}
}

// noStore is a Store Run must not reach (its config is refused first).
type noStore struct{ Store }
