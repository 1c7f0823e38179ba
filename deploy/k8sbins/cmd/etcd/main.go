// Command etcd is etcd's server main, built at the version k8s.io/kubernetes
// v1.37.2 uses (go.etcd.io/etcd/server/v3 v3.7.0).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
