// Package kubestack runs a real, local Kubernetes control plane for
// `streamspace dev` and the integration tests: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok (simulated nodes whose pods
// become Running without a kubelet) and metrics-server (metrics.k8s.io from
// kwok's simulated usage, so `kubectl top nodes` works), all on 127.0.0.1. Unix only; the
// facts behind it are in shared/reference/local-kubernetes.md.
//
// # Binaries
//
// EnsureBinaries builds the pinned binaries once into a versioned cache,
// <cacheDir>/k8s-v1.37.2/ (cacheDir is normally devstack.DefaultCacheDir(),
// ~/.cache/streamspace): kube-apiserver, etcd, kube-controller-manager,
// kube-scheduler and kubectl with `go build` in the nested module
// deploy/k8sbins (k8s.io/kubernetes v1.37.2, its staging modules replaced by
// v0.37.2, a committed go.sum; GOWORK=off, CGO_ENABLED=0), and kwok v0.8.0
// and metrics-server v0.9.0 with `go install` into kwok-v0.8.0/ and
// metrics-server-v0.9.0/, one `go build`/`go install` per binary, each a
// step of the caller's buildprogress.Progress (n of m, elapsed, a heartbeat
// every 30 s). About 10 minutes on two cores the first time, nothing
// afterwards; MissingBinaries lists what a call would
// build. It holds a flock on .build.lock while
// building and builds into a temporary directory renamed into place, so
// concurrent callers wait for one build and a killed build leaves no half
// binary.
//
// # Cluster
//
// Start runs the components on free loopback ports, each in its own process
// group with Pdeathsig=SIGTERM (Linux) started from a thread that lives as
// long as the child (internal/localproc, shared with internal/devstack), so
// none outlives a killed parent; their output goes to
// <RunDir>/logs/<component>.log. It generates a PKI in Go (a CA, serving
// certificates for 127.0.0.1/localhost, the service-account key pair and a
// static admin token in group system:masters), waits for the apiserver's
// /readyz and each component's health endpoint, writes <RunDir>/kubeconfig
// (token auth, the CA embedded), and creates Options.Nodes simulated nodes.
// Stop ends them in reverse order (kwok, scheduler and controller manager,
// apiserver, etcd), SIGTERM then SIGKILL after a grace period.
//
// A RunDir given by the caller (dev's .data/kube) is kept: the next Start
// reuses etcd's data, the PKI and the token, so objects and kubeconfigs
// survive a restart (only the ports change; nodes kept from the last run are
// pointed at this run's kwok). A flock on <RunDir>/.lock keeps two live
// clusters off one RunDir, and pid files let a Start kill components a killed
// run left behind.
//
// metrics.k8s.io is an APIService backed by an ExternalName Service for
// localhost on metrics-server's port (the aggregator needs no Endpoints for
// it); metrics-server scrapes kwok, which serves every node's kubelet
// endpoint on its own port, the nodes' status port. Pod usage comes from the
// pod annotations kwok.x-k8s.io/usage-cpu and kwok.x-k8s.io/usage-memory
// (default 1m and 1Mi); a node's usage is the sum of its pods'. metrics-server
// leaves out a node whose usage is zero, so a node without pods has no
// metrics unless Options.NodeBaseline puts a pod of the DaemonSet
// kube-system/node-baseline on every node, as dev does.
//
// Simulated nodes (CreateNodes) carry the annotation kwok.x-k8s.io/node=fake,
// the label type=kwok, capacity from NodeSpec and loopback addresses only;
// kwok gives their pods IPs in 127.1.0.0/16. Pods need no toleration.
// Service ClusterIPs (10.0.0.0/24) are numbers in objects only: nothing
// routes them.
//
// InstallCRDs applies deploy/crds (Session and Template, stream.space/v1alpha1)
// with server-side apply and waits until they are Established. Start does it
// itself before the controller manager starts when Options.InstallCRDs is
// set, so that garbage collection (owner references from Sessions) works at
// once rather than after the controller manager's 30s discovery resync.
//
// With the controllers, Start also creates the default StorageClass
// StorageClassName ("local-hostpath"), served by kube-controller-manager's
// in-tree hostPath provisioner (--enable-hostpath-provisioner): a claim
// gets a PersistentVolume (a directory under /tmp/hostpath_pv, removed with
// the claim) and is Bound, and the scheduler places a pod using it as on a
// real cluster. Nothing mounts the directories: kwok runs no containers.
package kubestack
