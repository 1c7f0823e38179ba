package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/streamspace/enterprise/internal/devstack"
	"github.com/streamspace/enterprise/internal/kubestack"
	"github.com/streamspace/enterprise/schemas"
)

// cmdDev runs the whole local stack in one process tree: PostgreSQL, the
// Temporal dev server and a local Kubernetes control plane with simulated
// nodes (unless DATABASE_URL / TEMPORAL_ADDRESS / KUBECONFIG point
// elsewhere), migrations, the worker with its relay, and the API server.
// Ctrl-C stops everything; state under DEV_DATA_DIR (.data) is kept for the
// next run.
func cmdDev(ctx context.Context, lookup func(string) (string, bool), stdout, stderr io.Writer) error {
	cfg, err := readDevConfig(lookup)
	if err != nil {
		return configError(err)
	}
	logger := newLogger(cfg.Log, stderr)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("DEV_DATA_DIR: %w", err)
	}
	if cfg.CacheDir, err = cacheDirOr(cfg.CacheDir); err != nil {
		return err
	}

	// Build what is missing before starting anything, so that nothing idles
	// through a first build (about 15 minutes on two cores, once: Kubernetes
	// ~10, the Temporal CLI ~5), saying what it is on as it goes.
	needKube, needTemporal := cfg.Kubeconfig == "", cfg.Temporal.Address == ""
	builds := firstRunBuilds(cfg.CacheDir, needKube, needTemporal && cfg.TemporalCLI == "", logger)
	var kubeBins kubestack.Binaries
	if needKube {
		if kubeBins, err = kubeBinaries(ctx, cfg.CacheDir, builds); err != nil {
			return err
		}
	}
	var cli string
	if needTemporal {
		if cli, err = temporalCLI(ctx, cfg.TemporalCLI, cfg.CacheDir, builds); err != nil {
			return err
		}
	}
	if needKube || (needTemporal && cfg.TemporalCLI == "") {
		builds.Finish()
	}

	if cfg.DatabaseURL == "" {
		pg, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{
			DataDir: filepath.Join(cfg.DataDir, "postgres"), Logger: logger})
		if err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		defer stopLogged(logger, "PostgreSQL", func() error { return pg.Stop(context.WithoutCancel(ctx)) })
		cfg.DatabaseURL = pg.URL()
	}

	uiURL := "(your Temporal cluster's Web UI)"
	if cfg.Temporal.Address == "" {
		tmp, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
			CLIPath:          cli,
			DBFile:           filepath.Join(cfg.DataDir, "temporal.db"),
			UIPort:           cfg.UIPort,
			Namespace:        cfg.Temporal.Namespace,
			SearchAttributes: searchAttributeFlags(),
			LogFile:          filepath.Join(cfg.DataDir, "temporal.log"),
			Logger:           logger,
		})
		if err != nil {
			return fmt.Errorf("start Temporal: %w", err)
		}
		defer stopLogged(logger, "Temporal", tmp.Stop)
		cfg.Temporal.Address = tmp.Address()
		uiURL = tmp.UIURL()
	}

	var kube devKube
	if cfg.Kubeconfig == "" {
		cluster, err := startDevKube(ctx, cfg, kubeBins, logger)
		if err != nil {
			return err
		}
		defer stopLogged(logger, "Kubernetes", cluster.Stop)
		// The worker and the server (through cfg.Common) talk to it.
		cfg.Kubeconfig = cluster.Kubeconfig()
		if kube, err = describeLocalKube(ctx, cluster, kubeBins.Kubectl); err != nil {
			return err
		}
	} else {
		kube = describeExternalKube(cfg.Kubeconfig)
		logger.Info("using the Kubernetes cluster of KUBECONFIG; dev starts none", "kubeconfig", cfg.Kubeconfig, "server", kube.server)
	}

	if cfg.Security.EncryptionKey == nil {
		if cfg.Security.EncryptionKey, err = ensureDevEncryptionKey(filepath.Join(cfg.DataDir, "encryption-key")); err != nil {
			return err
		}
	}
	if cfg.Auth.SigningKeyFile == "" && cfg.Auth.Secret == nil {
		if cfg.Auth.SigningKeyFile, err = ensureDevSigningKey(filepath.Join(cfg.DataDir, "jwt-signing-key.pem")); err != nil {
			return err
		}
	}
	rt, err := openRuntime(ctx, cfg.Common, stderr)
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := migrateUp(ctx, rt.Pool, io.Discard); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := bootstrapAdmin(ctx, &schemas.Store{Pool: rt.Pool}, cfg.Auth, stdout); err != nil {
		return err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	if kube.cluster != nil {
		// A control-plane process that dies on its own ends the stack.
		go func() {
			select {
			case <-kube.cluster.Exited():
				cancel(fmt.Errorf("local Kubernetes: %s", kube.cluster.ExitReason()))
			case <-ctx.Done():
			}
		}()
	}
	wg.Go(func() {
		if err := runWorker(ctx, cfg.worker(), rt); err != nil {
			cancel(fmt.Errorf("worker: %w", err))
		}
	})
	wg.Go(func() {
		if err := runServer(ctx, cfg.server(), rt); err != nil {
			cancel(fmt.Errorf("server: %w", err))
		}
	})
	printDevBanner(stdout, cfg, uiURL, kube)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Fprintln(stdout, "streamspace dev: stopped")
	return nil
}

// startDevKube starts the local control plane on DEV_DATA_DIR/kube (kept
// between runs: the same objects, CA and token; a run killed with SIGKILL is
// taken over, see kubestack), with the CRDs installed and cfg.Nodes.Count
// simulated nodes: missing ones are created, existing ones kept as they are
// (with the shape they were created with).
func startDevKube(ctx context.Context, cfg DevConfig, bins kubestack.Binaries, logger *slog.Logger) (*kubestack.Cluster, error) {
	cluster, err := kubestack.Start(ctx, kubestack.Options{
		Binaries:    bins,
		RunDir:      filepath.Join(cfg.DataDir, "kube"),
		InstallCRDs: true,
		Nodes:       cfg.Nodes.Count,
		Node: kubestack.NodeSpec{
			CPU:    cfg.Nodes.CPU,
			Memory: cfg.Nodes.Memory,
			Pods:   strconv.Itoa(cfg.Nodes.Pods),
			Labels: cfg.Nodes.Labels,
		},
		// Every node shows some usage (a pod of the DaemonSet
		// kube-system/node-baseline), so `kubectl top nodes` lists empty
		// nodes too.
		NodeBaseline: devNodeBaseline,
		Logger:       logger,
	})
	if err != nil {
		return nil, fmt.Errorf("start the local Kubernetes: %w", err)
	}
	return cluster, nil
}

// devNodeBaseline is the simulated usage of each dev node without sessions,
// a small node's system daemons.
var devNodeBaseline = kubestack.Usage{CPU: "100m", Memory: "256Mi"}

// devKube is what the banner says about the Kubernetes cluster dev uses.
type devKube struct {
	cluster    *kubestack.Cluster // nil: KUBECONFIG's cluster
	kubeconfig string
	server     string
	kubectl    string
	nodes      int // simulated nodes, local cluster only
}

func describeLocalKube(ctx context.Context, cluster *kubestack.Cluster, kubectl string) (devKube, error) {
	client, err := cluster.Client()
	if err != nil {
		return devKube{}, err
	}
	// Nodes kept from earlier runs with a larger DEV_NODES count too.
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: kubestack.NodeTypeLabel + "=kwok"})
	if err != nil {
		return devKube{}, fmt.Errorf("list the local Kubernetes nodes: %w", err)
	}
	return devKube{cluster: cluster, kubeconfig: cluster.Kubeconfig(), server: cluster.Server(),
		kubectl: kubectl, nodes: len(nodes.Items)}, nil
}

// describeExternalKube names KUBECONFIG's current cluster (its API server),
// or says why it cannot.
func describeExternalKube(kubeconfig string) devKube {
	k := devKube{kubeconfig: kubeconfig, kubectl: "kubectl"}
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(kubeconfig)}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		k.server = fmt.Sprintf("(unreadable: %v)", err)
	} else {
		k.server = cfg.Host
	}
	return k
}

func printDevBanner(w io.Writer, cfg DevConfig, uiURL string, kube devKube) {
	api := "http://" + cfg.HTTP.ListenAddr
	kubeLines := fmt.Sprintf(`  Kubernetes       %s        (KUBECONFIG=%s; dev started none)
  kubectl          kubectl get sessions -A`, kube.server, kube.kubeconfig)
	if kube.cluster != nil {
		kubeLines = fmt.Sprintf(`  Kubernetes       %s        (local control plane, %d simulated nodes; state in %s)
  Kubeconfig       %s
  kubectl          export KUBECONFIG=%s; %s get sessions -A`,
			kube.server, kube.nodes, kube.cluster.RunDir(), kube.kubeconfig, kube.kubeconfig, kube.kubectl)
	}
	fmt.Fprintf(w, `
StreamSpace Enterprise dev stack is up (Ctrl-C stops it; state kept in %s)

  API              %s        (readiness: %s/readyz)
  API docs         %s/api/docs
  Metrics          %s/metrics
  Temporal Web UI  %s        (namespace %q; DispatchEvents runs are tagged StreamSpaceEventTypes)
  Temporal gRPC    %s
  PostgreSQL       DATABASE_URL=%s
%s

Publish an event and watch its DispatchEvents run in the Web UI:
  DATABASE_URL='...as above...' bin/streamspace publish node.unhealthy '{"node_name":"worker-1","reason":"NotReady"}'

Sign in (the first run printed the admin's one-time password above):
  curl -s -X POST %s/api/auth/login -d '{"username":"%s","password":"..."}'

`, cfg.DataDir, api, api, api, api, uiURL, cfg.Temporal.Namespace, cfg.Temporal.Address, cfg.DatabaseURL, kubeLines, api, cfg.Auth.BootstrapUsername)
}

// stopLogged stops a dependency at shutdown and logs a failure to do so.
func stopLogged(logger interface{ Error(string, ...any) }, what string, stop func() error) {
	if err := stop(); err != nil {
		logger.Error("stop "+what, "err", err)
	}
}
