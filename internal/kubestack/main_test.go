package kubestack_test

import (
	"testing"

	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }
