package deploy

import (
	"bytes"
	_ "embed"
)

//go:embed kwok/kwok.yaml
var kwokConfig []byte

// KwokConfig is the kwok configuration (Stages, Metric, ClusterResourceUsage)
// the local control plane passes to `kwok --config`.
func KwokConfig() []byte { return bytes.Clone(kwokConfig) }
