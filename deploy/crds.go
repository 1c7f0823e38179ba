// Package deploy holds the Kubernetes manifests of StreamSpace Enterprise and
// hands them to Go code: the CustomResourceDefinitions in crds/, the RBAC in
// rbac/ and the kwok configuration of the local control plane in kwok/. The
// Go module that builds that control plane lives in k8sbins/, a separate
// module.
package deploy

import (
	"embed"
	"io/fs"
	"path"
)

//go:embed crds/*.yaml
var crds embed.FS

// CRD is one CustomResourceDefinition manifest from deploy/crds.
type CRD struct {
	Name string // file name, which is the CRD's name plus ".yaml"
	YAML []byte
}

// CRDs returns the manifests in deploy/crds, in file-name order.
func CRDs() []CRD {
	entries, err := fs.ReadDir(crds, "crds")
	if err != nil {
		panic(err) // embedded at build time; cannot fail
	}
	out := make([]CRD, 0, len(entries))
	for _, e := range entries {
		b, err := crds.ReadFile(path.Join("crds", e.Name()))
		if err != nil {
			panic(err)
		}
		out = append(out, CRD{Name: e.Name(), YAML: b})
	}
	return out
}
