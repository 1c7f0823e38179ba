package kubestack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/streamspace/enterprise/internal/localproc"
)

// Component names, as used in log file names, Options.ExtraArgs and PIDs.
const (
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	Kwok              = "kwok"
	MetricsServer     = "metrics-server"
)

// serviceCIDR is where Service ClusterIPs come from. Nothing ever routes
// them here (there is no kube-proxy): they are numbers in objects only.
const serviceCIDR = "10.0.0.0/24"

func hostPort(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func etcdArgs(dataDir string, clientPort, peerPort int) []string {
	client, peer := "http://"+hostPort(clientPort), "http://"+hostPort(peerPort)
	return []string{
		"--name=local", "--data-dir=" + dataDir,
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=local=" + peer,
		"--unsafe-no-fsync", "--quota-backend-bytes=1073741824", "--log-level=warn",
	}
}

func apiserverArgs(p *pki, etcdPort, port int) []string {
	return []string{
		"--etcd-servers=http://" + hostPort(etcdPort),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		// The default reconciler refuses a loopback advertise address.
		"--endpoint-reconciler-type=none",
		"--tls-cert-file=" + p.apiserverCert, "--tls-private-key-file=" + p.apiserverKey,
		"--client-ca-file=" + p.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.saPub,
		"--service-account-signing-key-file=" + p.saKey,
		"--token-auth-file=" + p.tokenFile,
		// The aggregation layer (metrics.k8s.io served by metrics-server).
		"--requestheader-client-ca-file=" + p.frontProxyCA,
		"--requestheader-allowed-names=" + frontProxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + p.frontProxyClient, "--proxy-client-key-file=" + p.frontProxyKey,
		"--authorization-mode=RBAC",
		// Reach a node's "kubelet" (kwok) at its loopback InternalIP, never by
		// resolving its name (node proxy, logs, exec).
		"--kubelet-preferred-address-types=InternalIP",
		"--service-cluster-ip-range=" + serviceCIDR,
		// Pods need no service-account token (kwok runs nothing), and without
		// this a pod created before kube-controller-manager makes the default
		// ServiceAccount would be refused.
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true", "--profiling=false", "--v=1",
	}
}

func controllerManagerArgs(p *pki, kubeconfig string, port int) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + p.componentCert, "--tls-private-key-file=" + p.componentKey,
		"--controllers=*",
		"--service-account-private-key-file=" + p.saKey, "--root-ca-file=" + p.caCert,
		"--cluster-signing-cert-file=" + p.caCert, "--cluster-signing-key-file=" + p.caKey,
		"--service-cluster-ip-range=" + serviceCIDR,
		// Provisions the claims of the default StorageClass (storage.go) as
		// hostPath volumes under /tmp/hostpath_pv; nothing mounts them.
		"--enable-hostpath-provisioner=true",
		"--profiling=false",
	}
}

func schedulerArgs(p *pki, kubeconfig string, port int) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + p.componentCert, "--tls-private-key-file=" + p.componentKey,
		"--profiling=false",
	}
}

func kwokArgs(p *pki, kubeconfig, config string, port int) []string {
	return []string{
		"--kubeconfig=" + kubeconfig, "--config=" + config,
		// Only nodes created as simulated ones (CreateNodes) are kwok's.
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=fake",
		"--node-lease-duration-seconds=40",
		// Loopback addresses only: anything that dials a node or pod stays here.
		"--node-ip=127.0.0.1", "--cidr=127.1.0.1/16",
		// kwok's server plays each node's kubelet endpoint (health, metrics),
		// advertised as the nodes' kubelet port, over TLS from our CA.
		"--server-address=" + hostPort(port), "--node-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + p.componentCert, "--tls-private-key-file=" + p.componentKey,
	}
}

func metricsServerArgs(p *pki, kubeconfig string, port int) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + p.componentCert, "--tls-private-key-file=" + p.componentKey,
		// Scrape kwok (the nodes' "kubelet") at the node's InternalIP
		// (127.0.0.1) and status port, verifying it with our CA.
		"--kubelet-preferred-address-types=InternalIP", "--kubelet-use-node-status-port",
		"--kubelet-certificate-authority=" + p.caCert,
		"--metric-resolution=10s", "--kubelet-request-timeout=5s", // 10s is the shortest resolution it takes
		"--profiling=false",
	}
}

// prober polls the health endpoints of the components.
type prober struct {
	client *http.Client
	token  string
}

func newProber(p *pki) (*prober, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.caPEM) {
		return nil, fmt.Errorf("no certificate in %s", p.caCert)
	}
	return &prober{token: p.token, client: &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true},
	}}, nil
}

// ok reports whether GET url answers 200 with a body containing want. The
// admin token goes to the apiserver only.
func (pr *prober) ok(ctx context.Context, url, want string, withToken bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if withToken {
		req.Header.Set("Authorization", "Bearer "+pr.token)
	}
	resp, err := pr.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// waitHealthy polls url until it is healthy, the process exits or ctx ends.
func (pr *prober) waitHealthy(ctx context.Context, p *proc, url, want string) error {
	delay := 25 * time.Millisecond
	for {
		if done, err := p.exitedErr(); done {
			return err
		}
		last := pr.ok(ctx, url, want, p.name == APIServer)
		if last == nil {
			return nil
		}
		if err := localproc.Sleep(ctx, delay); err != nil {
			return fmt.Errorf("%s not healthy: %w (last: %v)", p.name, err, last)
		}
		delay = localproc.Backoff(delay, 250*time.Millisecond)
	}
}

func logPath(runDir, name string) string { return filepath.Join(runDir, "logs", name+".log") }
