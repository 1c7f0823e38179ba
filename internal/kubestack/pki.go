package kubestack

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// pki is the cluster's one-time key material, under <RunDir>/pki. It is made
// once and reused by later starts on the same RunDir, so a kubeconfig stays
// valid across restarts (only the port in it changes).
type pki struct {
	dir string
	// CA signs the serving certificates; clients trust it.
	caCert, caKey string
	// Serving certificate of kube-apiserver, and of kube-controller-manager
	// and kube-scheduler (their health endpoints), for 127.0.0.1/localhost.
	apiserverCert, apiserverKey string
	componentCert, componentKey string
	// Front-proxy CA and the client certificate the apiserver presents to
	// aggregated APIs (metrics-server), which trust it for X-Remote-User.
	frontProxyCA, frontProxyCAKey   string
	frontProxyClient, frontProxyKey string
	// Service-account token signing key pair.
	saKey, saPub string
	// Static token file with the admin token (group system:masters).
	tokenFile string
	token     string
	caPEM     []byte
}

const adminUser = "streamspace-admin"

func newPKI(dir string) *pki {
	j := func(n string) string { return filepath.Join(dir, n) }
	return &pki{dir: dir,
		caCert: j("ca.crt"), caKey: j("ca.key"),
		apiserverCert: j("apiserver.crt"), apiserverKey: j("apiserver.key"),
		componentCert: j("components.crt"), componentKey: j("components.key"),
		frontProxyCA: j("front-proxy-ca.crt"), frontProxyCAKey: j("front-proxy-ca.key"),
		frontProxyClient: j("front-proxy-client.crt"), frontProxyKey: j("front-proxy-client.key"),
		saKey: j("sa.key"), saPub: j("sa.pub"),
		tokenFile: j("tokens.csv"),
	}
}

// ensure loads the material from dir, generating it if any file is missing.
func (p *pki) ensure() error {
	if err := p.load(); err == nil {
		return nil
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	// Written into a temporary sibling renamed into place, so a killed start
	// never leaves half a PKI behind.
	tmp, err := os.MkdirTemp(filepath.Dir(p.dir), ".pki-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := generatePKI(newPKI(tmp)); err != nil {
		return fmt.Errorf("generate PKI: %w", err)
	}
	if err := os.RemoveAll(p.dir); err != nil {
		return err
	}
	if err := os.Rename(tmp, p.dir); err != nil {
		return err
	}
	return p.load()
}

func (p *pki) load() error {
	for _, f := range []string{p.caCert, p.caKey, p.apiserverCert, p.apiserverKey, p.componentCert, p.componentKey,
		p.frontProxyCA, p.frontProxyCAKey, p.frontProxyClient, p.frontProxyKey, p.saKey, p.saPub, p.tokenFile} {
		if _, err := os.Stat(f); err != nil {
			return err
		}
	}
	ca, err := os.ReadFile(p.caCert)
	if err != nil {
		return err
	}
	tokens, err := os.ReadFile(p.tokenFile)
	if err != nil {
		return err
	}
	token, _, ok := strings.Cut(string(tokens), ",")
	if !ok || token == "" {
		return errors.New("malformed token file")
	}
	p.caPEM, p.token = ca, token
	return nil
}

func generatePKI(p *pki) error {
	ca, err := newCA(p.caCert, p.caKey, "streamspace-local-ca")
	if err != nil {
		return err
	}
	loopback := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if err := ca.issue(p.apiserverCert, p.apiserverKey, "kube-apiserver", x509.ExtKeyUsageServerAuth,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		append(loopback, net.IPv4(10, 0, 0, 1))); err != nil { // 10.0.0.1: the kubernetes Service in serviceCIDR
		return err
	}
	// kube-controller-manager, kube-scheduler, kwok (as every node's
	// kubelet endpoint) and metrics-server (reached by the aggregator as
	// its Service's name) serve with this one.
	if err := ca.issue(p.componentCert, p.componentKey, "streamspace-local-components", x509.ExtKeyUsageServerAuth,
		[]string{"localhost", metricsServerName + "." + metricsServerNamespace + ".svc"}, loopback); err != nil {
		return err
	}
	frontProxy, err := newCA(p.frontProxyCA, p.frontProxyCAKey, "streamspace-local-front-proxy-ca")
	if err != nil {
		return err
	}
	if err := frontProxy.issue(p.frontProxyClient, p.frontProxyKey, frontProxyClientName, x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
		return err
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writeKey(p.saKey, saKey); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return err
	}

	var tok [32]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return err
	}
	line := hex.EncodeToString(tok[:]) + "," + adminUser + "," + adminUser + ",system:masters\n"
	return os.WriteFile(p.tokenFile, []byte(line), 0o600)
}

// certAuthority is a CA key pair that issues leaf certificates.
type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newCA makes a self-signed CA, written to certPath and keyPath.
func newCA(certPath, keyPath, cn string) (*certAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := createCert(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writeCert(certPath, der); err != nil {
		return nil, err
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, err
	}
	return &certAuthority{cert: cert, key: key}, nil
}

// issue writes a leaf certificate for cn (server or client use) and its key.
func (ca *certAuthority) issue(certPath, keyPath, cn string, usage x509.ExtKeyUsage, dnsNames []string, ips []net.IP) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	der, err := createCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(10, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames:    dnsNames,
		IPAddresses: ips,
	}, ca.cert, key.Public(), ca.key)
	if err != nil {
		return err
	}
	if err := writeCert(certPath, der); err != nil {
		return err
	}
	return writeKey(keyPath, key)
}

func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
}

func writeCert(path string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}
