package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/streamspace/enterprise/activities/notify"
	"github.com/streamspace/enterprise/internal/clientip"
	"github.com/streamspace/enterprise/server"
	"github.com/streamspace/enterprise/worker"
	"github.com/streamspace/enterprise/workflows"
)

// The configuration of each process, read once from the environment here and
// passed down; no library reads the environment itself. The README's table
// lists every variable.

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  slog.Level
	Format string // json | text
}

// TemporalConfig locates the Temporal frontend.
type TemporalConfig struct {
	Address   string
	Namespace string
	TaskQueue string
	// Compression of gRPC requests: "gzip" (the SDK's default) saves
	// bandwidth to a remote cluster; "none" saves CPU on both ends, which on
	// loopback is what limits throughput (the relay benchmark: ~170 vs ~260
	// workflow starts/s into the dev server).
	Compression string
	// IDPrefix scopes this deployment's workflow IDs
	// (TEMPORAL_WORKFLOW_ID_PREFIX); "" = derived from the deployment id
	// in PostgreSQL at start (workflowIDPrefix).
	IDPrefix string
}

// SecurityConfig holds key material the enterprise features use.
type SecurityConfig struct {
	EncryptionKey          []byte   // 32 bytes; seals secrets at rest
	PreviousEncryptionKeys [][]byte // still open what they sealed (key rotation); see secrets.go
	MFAIssuer              string
}

// SMTPConfig is the outgoing mail server for email notifications and codes
// (SMTP_*), the type the email sender takes.
type SMTPConfig = notify.SMTPConfig

// Common is the configuration every long-running process shares.
type Common struct {
	Log         LogConfig
	DatabaseURL string
	Temporal    TemporalConfig
	Kubeconfig  string
	Sessions    SessionsConfig
	Security    SecurityConfig
	SMTP        SMTPConfig
	SMS         SMSConfig // config_security.go
	Hub         HubConfig // config_hub.go
	// Retired are warnings about variables that are set but no longer
	// read (config_retired.go); openRuntime logs them.
	Retired []string
}

// AuthConfig is how the server signs in users and checks their tokens.
type AuthConfig struct {
	SigningKeyFile    string   // PEM Ed25519 or RSA private key
	Secret            []byte   // HS256 secret, when no key file is given
	KeyID             string   // kid of the signing key ("" = derived from the key)
	PreviousKeyFiles  []string // keys (PEM, private or public) still accepted for verification
	Issuer            string
	Audience          string
	AccessTTL         time.Duration
	BootstrapUsername string
	BootstrapPassword string
	TrustedProxies    []string
}

// ServerConfig configures `streamspace server`.
type ServerConfig struct {
	Common
	HTTP server.Config
	Auth AuthConfig
}

// WorkerConfig configures `streamspace worker`.
type WorkerConfig struct {
	Common
	MetricsAddr string // "" = no metrics listener
	Relay       worker.RelayConfig
	// Pollers are the workflow-task and activity-task pollers of the two
	// task queues' workers.
	Pollers Pollers
}

// MigrateConfig configures `streamspace migrate`.
type MigrateConfig struct {
	Log         LogConfig
	DatabaseURL string
}

// DevConfig configures `streamspace dev`: the server and the worker in one
// process, with PostgreSQL and Temporal started locally when DATABASE_URL and
// TEMPORAL_ADDRESS are unset.
type DevConfig struct {
	Common
	HTTP        server.Config
	Auth        AuthConfig
	Relay       worker.RelayConfig
	Pollers     Pollers
	DataDir     string
	CacheDir    string // "" = the default cache (~/.cache/streamspace)
	TemporalCLI string // "" = the pinned CLI, built into the cache
	UIPort      int
	Nodes       DevNodesConfig // the local Kubernetes' simulated nodes (KUBECONFIG unset)
}

// DevNodesConfig shapes the simulated (kwok) nodes of the local Kubernetes
// that dev starts when KUBECONFIG is unset.
type DevNodesConfig struct {
	Count  int               // DEV_NODES
	CPU    string            // DEV_NODE_CPU, a Kubernetes quantity
	Memory string            // DEV_NODE_MEMORY, a Kubernetes quantity
	Pods   int               // DEV_NODE_PODS
	Labels map[string]string // DEV_NODE_LABELS, k=v,k=v
}

func readLog(e *envReader) LogConfig {
	var level slog.Level
	name := e.oneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error")
	_ = level.UnmarshalText([]byte(name))
	return LogConfig{Level: level, Format: e.oneOf("LOG_FORMAT", "text", "text", "json")}
}

func readTemporal(e *envReader, defAddr string) TemporalConfig {
	return TemporalConfig{
		Address:     e.hostPort("TEMPORAL_ADDRESS", defAddr),
		Namespace:   e.str("TEMPORAL_NAMESPACE", "default"),
		TaskQueue:   e.str("TEMPORAL_TASK_QUEUE", workflows.DefaultTaskQueue),
		Compression: e.oneOf("TEMPORAL_GRPC_COMPRESSION", "gzip", "gzip", "none"),
		IDPrefix:    e.workflowIDPrefix("TEMPORAL_WORKFLOW_ID_PREFIX"),
	}
}

func readSecurity(e *envReader) SecurityConfig {
	return SecurityConfig{
		EncryptionKey:          e.key("ENCRYPTION_KEY"),
		PreviousEncryptionKeys: readKeyList(e, "ENCRYPTION_KEY_PREVIOUS"),
		MFAIssuer:              e.mfaIssuer("MFA_ISSUER", "StreamSpace"),
	}
}

func readSMTP(e *envReader) SMTPConfig {
	return SMTPConfig{
		Host:     e.str("SMTP_HOST", ""),
		Port:     e.integer("SMTP_PORT", 587, 1, 65535),
		Username: e.str("SMTP_USERNAME", ""),
		Password: e.secret("SMTP_PASSWORD", 0),
		From:     e.email("SMTP_FROM", "StreamSpace <noreply@streamspace.local>"),
		TLS:      e.oneOf("SMTP_TLS", "starttls", "starttls", "tls", "none"),
	}
}

func readHTTP(e *envReader) server.Config {
	return server.Config{
		ListenAddr:        e.hostPort("LISTEN_ADDR", "127.0.0.1:8080"),
		ReadTimeout:       e.duration("HTTP_READ_TIMEOUT", 15*time.Second),
		WriteTimeout:      e.duration("HTTP_WRITE_TIMEOUT", 60*time.Second),
		IdleTimeout:       e.duration("HTTP_IDLE_TIMEOUT", 120*time.Second),
		ShutdownTimeout:   e.duration("HTTP_SHUTDOWN_TIMEOUT", 20*time.Second),
		MaxBodyBytes:      int64(e.integer("HTTP_MAX_BODY_BYTES", 1<<20, 1024, 64<<20)),
		EnterpriseEnabled: e.boolean("ENABLE_ENTERPRISE_FEATURES", true),
		RefreshTTL:        e.duration("JWT_REFRESH_TTL", 30*24*time.Hour),
		OIDC:              readOIDC(e),
		RateLimits: server.RateLimitConfig{
			Window:            e.duration("RATE_LIMIT_WINDOW", time.Minute),
			UserLimit:         e.integer("RATE_LIMIT_USER", 100, 1, 1_000_000_000),
			AdminLimit:        e.integer("RATE_LIMIT_ADMIN", 1000, 1, 1_000_000_000),
			LoginPerAccountIP: e.integer("LOGIN_LIMIT_PER_ACCOUNT_IP", 5, 1, 1_000_000),
			LoginPerAccount:   e.integer("LOGIN_LIMIT_PER_ACCOUNT", 50, 1, 1_000_000),
			LoginPerIP:        e.integer("LOGIN_LIMIT_PER_IP", 30, 1, 1_000_000),
			LoginWindow:       e.duration("LOGIN_LIMIT_WINDOW", 15*time.Minute),
		},
	}
}

// readOIDC reads the external identity provider settings. OIDC_ROLE_CLAIM set
// but empty means roles are managed in StreamSpace, not by the IdP.
func readOIDC(e *envReader) server.OIDCConfig {
	roleClaim := "roles"
	if v, ok := e.lookup("OIDC_ROLE_CLAIM"); ok {
		roleClaim = strings.TrimSpace(v)
	}
	adminValues := []string{"admin"}
	if _, ok := e.lookup("OIDC_ADMIN_VALUES"); ok {
		adminValues = e.list("OIDC_ADMIN_VALUES")
	}
	cfg := server.OIDCConfig{
		Issuer:        e.str("OIDC_ISSUER", ""),
		Audience:      e.str("OIDC_AUDIENCE", ""),
		RoleClaim:     roleClaim,
		AdminValues:   adminValues,
		UsernameClaim: e.str("OIDC_USERNAME_CLAIM", "preferred_username"),
	}
	if cfg.Issuer != "" && cfg.Audience == "" {
		e.errs = append(e.errs, errors.New("OIDC_AUDIENCE is required when OIDC_ISSUER is set"))
	}
	if cfg.Issuer != "" && cfg.Issuer == e.str("JWT_ISSUER", "streamspace") {
		e.errs = append(e.errs, errors.New("invalid OIDC_ISSUER: must differ from JWT_ISSUER"))
	}
	return cfg
}

func readAuth(e *envReader) AuthConfig {
	var secret []byte
	if v := e.secret("JWT_SECRET", 32); v != "" {
		secret = []byte(v)
	}
	var previous []string
	if v := e.str("JWT_PREVIOUS_KEY_FILES", ""); v != "" {
		previous = strings.Split(v, ",")
		for _, p := range previous {
			e.paths("JWT_PREVIOUS_KEY_FILES", p)
		}
	}
	cfg := AuthConfig{
		SigningKeyFile:    e.paths("JWT_SIGNING_KEY_FILE", e.str("JWT_SIGNING_KEY_FILE", "")),
		Secret:            secret,
		KeyID:             e.str("JWT_KEY_ID", ""),
		PreviousKeyFiles:  previous,
		Issuer:            e.str("JWT_ISSUER", "streamspace"),
		Audience:          e.str("JWT_AUDIENCE", "streamspace-api"),
		AccessTTL:         e.duration("JWT_ACCESS_TTL", 15*time.Minute),
		BootstrapUsername: e.str("BOOTSTRAP_ADMIN_USERNAME", "admin"),
		BootstrapPassword: e.secret("BOOTSTRAP_ADMIN_PASSWORD", 12),
		TrustedProxies:    e.list("TRUSTED_PROXIES"),
	}
	if _, err := clientip.New(cfg.TrustedProxies); err != nil {
		e.errs = append(e.errs, fmt.Errorf("invalid TRUSTED_PROXIES: %w", err))
	}
	if cfg.SigningKeyFile != "" && cfg.Secret != nil {
		e.errs = append(e.errs, errors.New("set JWT_SIGNING_KEY_FILE or JWT_SECRET, not both"))
	}
	return cfg
}

// readPollers reads TEMPORAL_WORKER_POLLERS and TEMPORAL_EVENTS_POLLERS
// (worker.DefaultPollers, worker.DefaultEventsPollers).
func readPollers(e *envReader) Pollers {
	return Pollers{Main: e.integer("TEMPORAL_WORKER_POLLERS", worker.DefaultPollers, 1, 256),
		Events: e.integer("TEMPORAL_EVENTS_POLLERS", worker.DefaultEventsPollers, 1, 256)}
}

// Pollers are the worker's pollers per kind: the most on the main queue
// (scaled by the SDK), and the fixed number on the events queue.
type Pollers struct{ Main, Events int }

func readRelay(e *envReader) worker.RelayConfig {
	return worker.RelayConfig{
		BatchSize:     e.integer("RELAY_BATCH_SIZE", 100, 1, 10000),
		BatchWindow:   e.duration("RELAY_BATCH_WINDOW", 25*time.Millisecond),
		MaxInFlight:   e.integer("RELAY_MAX_IN_FLIGHT", 20000, 1, 10_000_000),
		SweepInterval: e.duration("RELAY_SWEEP_INTERVAL", 5*time.Second),
		RetryMax:      e.duration("RELAY_RETRY_MAX", time.Minute),
	}
}

func required(e *envReader, name, value, hint string) {
	if value == "" {
		e.errs = append(e.errs, fmt.Errorf("%s is required: %s", name, hint))
	}
}

const databaseHint = "set it to postgres://user:password@host:5432/db (or use `streamspace dev`, which starts one)"

func readCommon(e *envReader) Common {
	return Common{
		Log:         readLog(e),
		DatabaseURL: e.postgresURL("DATABASE_URL"),
		Temporal:    readTemporal(e, "127.0.0.1:7233"),
		Kubeconfig:  e.paths("KUBECONFIG", e.str("KUBECONFIG", "")),
		Sessions:    readSessions(e),
		Security:    readSecurity(e),
		SMTP:        readSMTP(e),
		SMS:         readSMS(e),
		Hub:         readHub(e),
		Retired:     e.retired(),
	}
}

// readServerConfig reads the server's configuration.
func readServerConfig(lookup func(string) (string, bool)) (ServerConfig, error) {
	e := newEnvReader(lookup)
	cfg := ServerConfig{Common: readCommon(e), HTTP: readHTTP(e), Auth: readAuth(e)}
	required(e, "DATABASE_URL", cfg.DatabaseURL, databaseHint)
	if cfg.Auth.SigningKeyFile == "" && cfg.Auth.Secret == nil {
		e.errs = append(e.errs, errors.New("JWT_SIGNING_KEY_FILE or JWT_SECRET is required: the key that signs access tokens "+
			"(generate one with: openssl genpkey -algorithm ed25519 -out jwt.pem)"))
	}
	return cfg, e.err()
}

// readWorkerConfig reads the worker's configuration.
func readWorkerConfig(lookup func(string) (string, bool)) (WorkerConfig, error) {
	e := newEnvReader(lookup)
	cfg := WorkerConfig{
		Common:      readCommon(e),
		MetricsAddr: e.hostPort("WORKER_METRICS_ADDR", ""),
		Relay:       readRelay(e),
		Pollers:     readPollers(e),
	}
	required(e, "DATABASE_URL", cfg.DatabaseURL, databaseHint)
	return cfg, e.err()
}

// readMigrateConfig reads the migrate command's configuration.
func readMigrateConfig(lookup func(string) (string, bool)) (MigrateConfig, error) {
	e := newEnvReader(lookup)
	cfg := MigrateConfig{Log: readLog(e), DatabaseURL: e.postgresURL("DATABASE_URL")}
	required(e, "DATABASE_URL", cfg.DatabaseURL, databaseHint)
	return cfg, e.err()
}

// readDevConfig reads the dev stack's configuration. DATABASE_URL and
// TEMPORAL_ADDRESS are optional: when unset, dev starts its own.
func readDevConfig(lookup func(string) (string, bool)) (DevConfig, error) {
	e := newEnvReader(lookup)
	cfg := DevConfig{
		Common:      readCommon(e),
		HTTP:        readHTTP(e),
		Auth:        readAuth(e),
		Relay:       readRelay(e),
		Pollers:     readPollers(e),
		CacheDir:    e.str("STREAMSPACE_CACHE_DIR", ""),
		TemporalCLI: e.str("TEMPORAL_CLI", ""),
		UIPort:      e.integer("TEMPORAL_UI_PORT", 8233, 1, 65535),
		Nodes:       readDevNodes(e),
	}
	devHubDefaults(e, &cfg.Hub) // local webhook receivers (config_hub.go)
	if _, ok := e.raw("TEMPORAL_ADDRESS"); !ok {
		cfg.Temporal.Address = "" // dev starts its own, on loopback
		if _, set := e.raw("TEMPORAL_GRPC_COMPRESSION"); !set {
			cfg.Temporal.Compression = "none"
		}
	}
	dataDir, err := filepath.Abs(e.str("DEV_DATA_DIR", ".data"))
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("invalid DEV_DATA_DIR: %w", err))
	}
	cfg.DataDir = dataDir
	return cfg, e.err()
}

// readDevNodes reads the shape of the dev stack's simulated nodes.
func readDevNodes(e *envReader) DevNodesConfig {
	return DevNodesConfig{
		Count:  e.integer("DEV_NODES", 3, 0, 100),
		CPU:    readQuantity(e, "DEV_NODE_CPU", "8"),
		Memory: readQuantity(e, "DEV_NODE_MEMORY", "32Gi"),
		Pods:   e.integer("DEV_NODE_PODS", 110, 1, 10000),
		Labels: readNodeLabels(e, "DEV_NODE_LABELS"),
	}
}

// readQuantity reads a positive Kubernetes resource quantity (8, 500m, 32Gi).
func readQuantity(e *envReader, name, def string) string {
	v := e.str(name, def)
	if q, err := resource.ParseQuantity(v); err != nil || q.Sign() <= 0 {
		e.bad(name, v, "must be a positive Kubernetes quantity such as 4, 500m or 16Gi")
		return def
	}
	return v
}

// readNodeLabels reads node labels written k=v,k=v. The labels the dev stack
// sets itself (kubernetes.io/hostname, type) cannot be overridden.
func readNodeLabels(e *envReader, name string) map[string]string {
	items := e.list(name)
	if len(items) == 0 {
		return nil
	}
	labels := make(map[string]string, len(items))
	for _, item := range items {
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		var why []string
		switch {
		case !ok:
			why = []string{"want key=value"}
		case k == "kubernetes.io/hostname" || k == "type":
			why = []string{"label " + k + " is set by the dev stack"}
		default:
			why = append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...)
			if _, dup := labels[k]; dup {
				why = append(why, "label "+k+" given twice")
			}
		}
		if len(why) > 0 {
			e.bad(name, item, strings.Join(why, "; ")+" (write labels as key=value,key=value)")
			continue
		}
		labels[k] = v
	}
	return labels
}

// server and worker views of the dev configuration.
func (c DevConfig) server() ServerConfig {
	return ServerConfig{Common: c.Common, HTTP: c.HTTP, Auth: c.Auth}
}
func (c DevConfig) worker() WorkerConfig {
	return WorkerConfig{Common: c.Common, Relay: c.Relay, Pollers: c.Pollers}
}
