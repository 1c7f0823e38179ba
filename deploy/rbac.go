package deploy

import _ "embed"

//go:embed rbac/streamspace.yaml
var rbac []byte

// RBAC returns deploy/rbac/streamspace.yaml: the ServiceAccount, roles and
// bindings the server and worker need, for the namespace "streamspace".
func RBAC() []byte { return rbac }
