package activities_test

import (
	"testing"

	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
)

// TestMain shares one local Kubernetes among the package's tests.
func TestMain(m *testing.M) { kubetest.Main(m) }
