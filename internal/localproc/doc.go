// Package localproc holds what internal/devstack and internal/kubestack need
// to run local server processes (PostgreSQL, Temporal, a Kubernetes control
// plane) as children of one Go process: flock-based file locks that a killed
// owner cannot leave stale, free loopback ports, children in their own
// process group that die with their parent (Pdeathsig) and stop with
// SIGTERM then SIGKILL, pid liveness checks through /proc, and polling with
// backoff. Unix only; Pdeathsig only on Linux.
package localproc
