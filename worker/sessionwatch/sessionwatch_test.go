package sessionwatch

import (
	"strings"
	"testing"

	"github.com/streamspace/enterprise/activities"
)

// Run refuses a configuration it cannot watch with, saying what is missing,
// instead of failing later on a nil client. (Its behaviour on a real
// cluster is tested end to end in server/sessions_watch_test.go.)
func TestRunValidatesConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"nothing":      {},
		"no namespace": {Kube: &activities.Kube{}},
	} {
		err := New(cfg).Run(t.Context())
		if err == nil || !strings.Contains(err.Error(), "Config.Kube") {
			t.Errorf("%s: Run = %v; want an error naming Config.Kube", name, err)
		}
	}
}
