package server

import (
	"testing"

	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
)

// TestMain stops the package's shared local Kubernetes (kubetest) after the
// tests; the session, template and node tests start it on first use.
func TestMain(m *testing.M) { kubetest.Main(m) }
