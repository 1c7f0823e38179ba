package kubestack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/streamspace/enterprise/deploy"

	"github.com/streamspace/enterprise/internal/localproc"
)

// Options configures Start.
type Options struct {
	// Binaries are the executables to run (from EnsureBinaries). Start does
	// not build them.
	Binaries Binaries
	// RunDir holds the PKI, etcd's data, the logs and the kubeconfig. "" = a
	// temporary directory removed by Stop. A given RunDir is kept and reused
	// by the next Start (same objects, same CA and token); a flock on
	// <RunDir>/.lock keeps two live clusters off it.
	RunDir string
	// Nodes is the number of simulated (kwok) nodes to have schedulable
	// (CreateNodes) before Start returns, named Node.NamePrefix + 0..Nodes-1.
	// Default 0.
	Nodes int
	// Node shapes those nodes (capacity, labels); see NodeSpec.
	Node NodeSpec
	// InstallCRDs applies deploy/crds (InstallCRDs) before the controller
	// manager starts, so its garbage collector watches Sessions and Templates
	// from the start. CRDs installed later are noticed by its discovery
	// resync within 30s; until then deleting a Session does not cascade to
	// what it owns.
	InstallCRDs bool
	// NodeBaseline, when set, gives every node a baseline usage, like a real
	// node's system daemons: the DaemonSet kube-system/node-baseline puts a
	// pod using NodeBaseline (as kwok simulates it) on each node, present and
	// future. metrics-server leaves out a node whose CPU or memory usage is
	// zero, so a node without pods has no metrics (`kubectl top nodes`:
	// "metrics not available yet"). Needs the controllers (the DaemonSet
	// controller). Zero = none: a node's usage is its pods'.
	NodeBaseline Usage
	// WithoutMetrics skips metrics-server (~70 MB): no metrics.k8s.io API.
	WithoutMetrics bool
	// WithoutControllers skips kube-controller-manager and kube-scheduler
	// (~190 MB). Without them there is no garbage collection (owner
	// references do not cascade), no scheduling (pods need spec.nodeName),
	// no namespace deletion and no node lifecycle.
	WithoutControllers bool
	// ExtraArgs adds flags to a component, by name (Etcd, APIServer, ...).
	ExtraArgs map[string][]string
	// StartTimeout bounds Start. Default 90s.
	StartTimeout time.Duration
	// StopTimeout is each process's grace period between SIGTERM and
	// SIGKILL. Default 10s.
	StopTimeout time.Duration
	Logger      *slog.Logger
}

// Cluster is a running local control plane started by Start.
type Cluster struct {
	opts       Options
	logger     *slog.Logger
	runDir     string
	tempRunDir bool
	lock       *localproc.Lock
	pki        *pki
	prober     *prober
	procs      []*proc // in start order
	server     string
	kubeconfig string
	rest       *rest.Config

	exited     chan struct{}
	exitOnce   sync.Once
	exitReason string
	stopping   chan struct{}
	stopOnce   sync.Once
	stopErr    error
}

// Start runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
// kwok and metrics-server on free 127.0.0.1 ports, each in its own process
// group that dies with this process (Pdeathsig), logging to
// <RunDir>/logs/<name>.log. It returns once each is healthy, the kubeconfig
// is written, metrics.k8s.io is Available and opts.Nodes simulated nodes are
// schedulable. On failure everything started is stopped and the error quotes
// the failing component's log.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 90 * time.Second
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	bins := []string{opts.Binaries.Etcd, opts.Binaries.APIServer, opts.Binaries.Kwok}
	if !opts.WithoutControllers {
		bins = append(bins, opts.Binaries.ControllerManager, opts.Binaries.Scheduler)
	}
	if !opts.WithoutMetrics {
		bins = append(bins, opts.Binaries.MetricsServer)
	}
	if opts.NodeBaseline != (Usage{}) {
		if opts.WithoutControllers {
			return nil, fmt.Errorf("kubestack: NodeBaseline needs the controllers (WithoutControllers is set)")
		}
		if err := opts.NodeBaseline.validate(); err != nil {
			return nil, err
		}
	}
	for _, b := range bins {
		if !localproc.IsExecutable(b) {
			return nil, fmt.Errorf("kubestack: no executable %q (build the binaries with EnsureBinaries)", b)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	began := time.Now()

	c := &Cluster{opts: opts, logger: opts.Logger, runDir: opts.RunDir,
		exited: make(chan struct{}), stopping: make(chan struct{})}
	if err := c.prepareRunDir(); err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			_ = c.Stop()
		}
	}()
	if err := c.pki.ensure(); err != nil {
		return nil, err
	}
	var err error
	if c.prober, err = newProber(c.pki); err != nil {
		return nil, err
	}

	etcdPorts, err := c.startComponent(ctx, Etcd, opts.Binaries.Etcd, 2, func(ports []int) []string {
		return etcdArgs(filepath.Join(c.runDir, "etcd"), ports[0], ports[1])
	}, func(ports []int) string { return "http://" + hostPort(ports[0]) + "/health" }, `"health":"true"`)
	if err != nil {
		return nil, err
	}
	apiPorts, err := c.startComponent(ctx, APIServer, opts.Binaries.APIServer, 1, func(ports []int) []string {
		return apiserverArgs(c.pki, etcdPorts[0], ports[0])
	}, func(ports []int) string { return "https://" + hostPort(ports[0]) + "/readyz" }, "ok")
	if err != nil {
		return nil, err
	}
	c.server = "https://" + hostPort(apiPorts[0])
	c.kubeconfig = filepath.Join(c.runDir, "kubeconfig")
	if c.rest, err = writeKubeconfig(c.kubeconfig, c.server, c.pki); err != nil {
		return nil, err
	}

	if opts.InstallCRDs {
		if err := c.InstallCRDs(ctx); err != nil {
			return nil, err
		}
	}
	if !opts.WithoutControllers {
		if err := c.startControllers(ctx); err != nil {
			return nil, err
		}
		if err := c.createStorageClass(ctx); err != nil {
			return nil, err
		}
	}
	kwokConfig := filepath.Join(c.runDir, "kwok.yaml")
	if err := os.WriteFile(kwokConfig, deploy.KwokConfig(), 0o600); err != nil {
		return nil, err
	}
	kwokPorts, err := c.startComponent(ctx, Kwok, opts.Binaries.Kwok, 1, func(ports []int) []string {
		return kwokArgs(c.pki, c.kubeconfig, kwokConfig, ports[0])
	}, func(ports []int) string { return "https://" + hostPort(ports[0]) + "/healthz" }, "ok")
	if err != nil {
		return nil, err
	}
	if err := c.pointNodesAtKwok(ctx, kwokPorts[0]); err != nil {
		return nil, err
	}
	if !opts.WithoutMetrics {
		ports, err := c.startComponent(ctx, MetricsServer, opts.Binaries.MetricsServer, 1, func(ports []int) []string {
			return metricsServerArgs(c.pki, c.kubeconfig, ports[0])
		}, func(ports []int) string { return "https://" + hostPort(ports[0]) + "/livez" }, "ok")
		if err != nil {
			return nil, err
		}
		if err := c.registerMetricsAPI(ctx, ports[0]); err != nil {
			return nil, err
		}
	}
	c.watchExits()

	if opts.NodeBaseline != (Usage{}) {
		if err := c.applyNodeBaseline(ctx, opts.NodeBaseline); err != nil {
			return nil, err
		}
	}
	if opts.Nodes > 0 {
		if _, err := c.CreateNodes(ctx, opts.Nodes, opts.Node); err != nil {
			return nil, err
		}
	}
	started = true
	c.logger.Info("local Kubernetes is up", "server", c.server, "kubeconfig", c.kubeconfig,
		"nodes", opts.Nodes, "took", time.Since(began).Round(time.Millisecond))
	return c, nil
}

// Exited is closed when a component exits on its own (not through Stop).
func (c *Cluster) Exited() <-chan struct{} { return c.exited }

// ExitReason says which component exited and why, once Exited is closed.
func (c *Cluster) ExitReason() string {
	select {
	case <-c.exited:
		return c.exitReason
	default:
		return ""
	}
}

// Kubeconfig is the path of the kubeconfig (token auth, the cluster's CA).
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// Server is the apiserver's URL, https://127.0.0.1:PORT.
func (c *Cluster) Server() string { return c.server }

// RunDir is the directory with the PKI, etcd data, logs and kubeconfig.
func (c *Cluster) RunDir() string { return c.runDir }

// RESTConfig returns a new client configuration for the admin user.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.rest) }

// Client returns a typed clientset for the admin user.
func (c *Cluster) Client() (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(c.RESTConfig())
}

// PIDs maps each running component's name to its process id.
func (c *Cluster) PIDs() map[string]int {
	out := make(map[string]int, len(c.procs))
	for _, p := range c.procs {
		out[p.name] = p.Pid()
	}
	return out
}
