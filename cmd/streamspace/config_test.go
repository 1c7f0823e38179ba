package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/server"
)

func lookupFrom(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

const goodDB = "postgres://streamspace:secret@127.0.0.1:5432/streamspace?sslmode=disable"

// goodJWT is an HS256 secret long enough to pass validation.
const goodJWT = "0123456789abcdef0123456789abcdef"

func TestServerConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := readServerConfig(lookupFrom(map[string]string{"DATABASE_URL": goodDB, "JWT_SECRET": goodJWT}))
	require.NoError(t, err)
	require.Equal(t, 15*time.Minute, cfg.Auth.AccessTTL)
	require.Equal(t, 30*24*time.Hour, cfg.HTTP.RefreshTTL)
	require.Equal(t, "admin", cfg.Auth.BootstrapUsername)
	require.Empty(t, cfg.Auth.TrustedProxies)
	require.Equal(t, server.RateLimitConfig{Window: time.Minute, UserLimit: 100, AdminLimit: 1000,
		LoginPerAccountIP: 5, LoginPerAccount: 50, LoginPerIP: 30, LoginWindow: 15 * time.Minute}, cfg.HTTP.RateLimits)
	require.Equal(t, "127.0.0.1:8080", cfg.HTTP.ListenAddr)
	require.Equal(t, 15*time.Second, cfg.HTTP.ReadTimeout)
	require.Equal(t, 60*time.Second, cfg.HTTP.WriteTimeout)
	require.Equal(t, 120*time.Second, cfg.HTTP.IdleTimeout)
	require.EqualValues(t, 1<<20, cfg.HTTP.MaxBodyBytes)
	require.True(t, cfg.HTTP.EnterpriseEnabled)
	require.Equal(t, "127.0.0.1:7233", cfg.Temporal.Address)
	require.Equal(t, "default", cfg.Temporal.Namespace)
	require.Equal(t, "streamspace", cfg.Temporal.TaskQueue)
	require.Equal(t, "gzip", cfg.Temporal.Compression)
	require.Empty(t, cfg.Temporal.IDPrefix, "unset: derived from the deployment id at start")
	require.Equal(t, slog.LevelInfo, cfg.Log.Level)
	require.Equal(t, "StreamSpace", cfg.Security.MFAIssuer)
	require.Equal(t, 587, cfg.SMTP.Port)
	require.Equal(t, "starttls", cfg.SMTP.TLS)
	require.Nil(t, cfg.Security.EncryptionKey)
}

func TestServerConfigValues(t *testing.T) {
	t.Parallel()
	kube := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kube, []byte("apiVersion: v1\nkind: Config\n"), 0o600))
	cfg, err := readServerConfig(lookupFrom(map[string]string{
		"DATABASE_URL":                goodDB,
		"JWT_SECRET":                  goodJWT,
		"TRUSTED_PROXIES":             "10.0.0.0/8, 192.0.2.1",
		"LISTEN_ADDR":                 "0.0.0.0:9000",
		"LOG_LEVEL":                   "DEBUG",
		"LOG_FORMAT":                  "json",
		"TEMPORAL_ADDRESS":            "temporal.internal:7233",
		"TEMPORAL_NAMESPACE":          "streamspace-prod",
		"TEMPORAL_WORKFLOW_ID_PREFIX": "eu-prod",
		"KUBECONFIG":                  kube,
		"ENCRYPTION_KEY":              strings.Repeat("ab", 32),
		"ENABLE_ENTERPRISE_FEATURES":  "false",
		"SMTP_HOST":                   "smtp.example.com",
		"SMTP_PORT":                   "465",
		"SMTP_TLS":                    "tls",
		"HTTP_MAX_BODY_BYTES":         "2048",
		"SESSION_HOME_STORAGE_CLASS":  "fast-ssd",
		"SESSION_HOME_SIZE":           "50Gi",
	}))
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:9000", cfg.HTTP.ListenAddr)
	require.Equal(t, slog.LevelDebug, cfg.Log.Level)
	require.Equal(t, "json", cfg.Log.Format)
	require.Equal(t, "temporal.internal:7233", cfg.Temporal.Address)
	require.Equal(t, "streamspace-prod", cfg.Temporal.Namespace)
	require.Equal(t, "eu-prod", cfg.Temporal.IDPrefix)
	require.Equal(t, kube, cfg.Kubeconfig)
	require.Len(t, cfg.Security.EncryptionKey, 32)
	require.False(t, cfg.HTTP.EnterpriseEnabled)
	require.Equal(t, 465, cfg.SMTP.Port)
	require.EqualValues(t, 2048, cfg.HTTP.MaxBodyBytes)
	require.Equal(t, []string{"10.0.0.0/8", "192.0.2.1"}, cfg.Auth.TrustedProxies)
	require.Equal(t, "fast-ssd", cfg.Sessions.Home.StorageClass)
	require.Equal(t, "50Gi", cfg.Sessions.Home.Size.String())
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, key, value, want string
	}{
		{"LogLevel", "LOG_LEVEL", "loud", `invalid LOG_LEVEL "loud": must be one of debug, info, warn, error`},
		{"LogFormat", "LOG_FORMAT", "xml", `invalid LOG_FORMAT "xml": must be one of text, json`},
		{"ListenAddr", "LISTEN_ADDR", "8080", `invalid LISTEN_ADDR "8080": must be host:port`},
		{"ListenPort", "LISTEN_ADDR", "127.0.0.1:99999", `invalid LISTEN_ADDR "127.0.0.1:99999": must be host:port`},
		{"TemporalAddress", "TEMPORAL_ADDRESS", "temporal", `invalid TEMPORAL_ADDRESS "temporal": must be host:port`},
		{"WorkflowIDPrefix", "TEMPORAL_WORKFLOW_ID_PREFIX", "eu/prod", `invalid TEMPORAL_WORKFLOW_ID_PREFIX "eu/prod": "/" is not allowed`},
		{"WorkflowIDPrefixLong", "TEMPORAL_WORKFLOW_ID_PREFIX", strings.Repeat("x", 33), `invalid TEMPORAL_WORKFLOW_ID_PREFIX "` + strings.Repeat("x", 33) + `": 33 characters; at most 32`},
		{"DatabaseURL", "DATABASE_URL", "mysql://nope:hunter2@x", `invalid DATABASE_URL: not a PostgreSQL connection URL`},
		{"EncryptionKey", "ENCRYPTION_KEY", "short", `invalid ENCRYPTION_KEY: must be 32 bytes`},
		{"Kubeconfig", "KUBECONFIG", "/no/such/kubeconfig", `invalid KUBECONFIG "/no/such/kubeconfig": /no/such/kubeconfig is not a readable file`},
		{"Enterprise", "ENABLE_ENTERPRISE_FEATURES", "maybe", `invalid ENABLE_ENTERPRISE_FEATURES "maybe": must be true or false`},
		{"SMTPPort", "SMTP_PORT", "smtp", `invalid SMTP_PORT "smtp": must be a whole number from 1 to 65535`},
		{"SMTPTLS", "SMTP_TLS", "ssl3", `invalid SMTP_TLS "ssl3": must be one of starttls, tls, none`},
		{"SMTPFrom", "SMTP_FROM", "not an address", `invalid SMTP_FROM "not an address": must be an email address`},
		{"MFAIssuer", "MFA_ISSUER", "Acme:Prod", `invalid MFA_ISSUER "Acme:Prod": must not contain a colon`},
		{"MFAIssuerLong", "MFA_ISSUER", strings.Repeat("x", 65), `invalid MFA_ISSUER "` + strings.Repeat("x", 65) + `": must be 1 to 64 bytes`},
		{"ReadTimeout", "HTTP_READ_TIMEOUT", "soon", `invalid HTTP_READ_TIMEOUT "soon": must be a positive duration`},
		{"NegativeTimeout", "HTTP_WRITE_TIMEOUT", "-5s", `invalid HTTP_WRITE_TIMEOUT "-5s": must be a positive duration`},
		{"BodyLimit", "HTTP_MAX_BODY_BYTES", "1", `invalid HTTP_MAX_BODY_BYTES "1": must be a whole number from 1024 to 67108864`},
		{"RateLimitUser", "RATE_LIMIT_USER", "0", `invalid RATE_LIMIT_USER "0": must be a whole number from 1 to 1000000000`},
		{"LoginWindow", "LOGIN_LIMIT_WINDOW", "1x", `invalid LOGIN_LIMIT_WINDOW "1x"`},
		{"TrustedProxies", "TRUSTED_PROXIES", "10.0.0.0/40", `invalid TRUSTED_PROXIES: trusted proxy "10.0.0.0/40"`},
		{"JWTSecret", "JWT_SECRET", "short", `invalid JWT_SECRET: must be at least 32 characters`},
		{"JWTKeyFile", "JWT_SIGNING_KEY_FILE", "/no/key.pem", `invalid JWT_SIGNING_KEY_FILE "/no/key.pem"`},
		{"AccessTTL", "JWT_ACCESS_TTL", "forever", `invalid JWT_ACCESS_TTL "forever"`},
		{"HomeStorageClass", "SESSION_HOME_STORAGE_CLASS", "Fast SSD", `invalid SESSION_HOME_STORAGE_CLASS "Fast SSD": must be a StorageClass name`},
		{"HomeSize", "SESSION_HOME_SIZE", "0", `invalid SESSION_HOME_SIZE "0": must be a positive Kubernetes quantity`},
		{"BootstrapPassword", "BOOTSTRAP_ADMIN_PASSWORD", "short", `invalid BOOTSTRAP_ADMIN_PASSWORD: must be at least 12 characters`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"DATABASE_URL": goodDB, "JWT_SECRET": goodJWT, tc.key: tc.value}
			if tc.key == "JWT_SIGNING_KEY_FILE" {
				delete(env, "JWT_SECRET")
			}
			_, err := readServerConfig(lookupFrom(env))
			require.ErrorContains(t, err, tc.want)
		})
	}

	t.Run("SecretsNotEchoed", func(t *testing.T) {
		_, err := readServerConfig(lookupFrom(map[string]string{
			"DATABASE_URL": "mysql://nope:hunter2@x", "ENCRYPTION_KEY": "hunter3"}))
		for _, secret := range []string{"hunter2", "hunter3"} {
			require.NotContains(t, err.Error(), secret)
		}
	})
	t.Run("DatabaseRequired", func(t *testing.T) {
		_, err := readServerConfig(lookupFrom(nil))
		require.ErrorContains(t, err, "DATABASE_URL is required")
		require.ErrorContains(t, err, "JWT_SIGNING_KEY_FILE or JWT_SECRET is required")
		_, err = readWorkerConfig(lookupFrom(nil))
		require.ErrorContains(t, err, "DATABASE_URL is required")
		_, err = readMigrateConfig(lookupFrom(nil))
		require.ErrorContains(t, err, "DATABASE_URL is required")
	})
	t.Run("AllListedAtOnce", func(t *testing.T) {
		_, err := readWorkerConfig(lookupFrom(map[string]string{"LOG_LEVEL": "loud", "RELAY_BATCH_SIZE": "0"}))
		require.ErrorContains(t, err, "LOG_LEVEL")
		require.ErrorContains(t, err, "RELAY_BATCH_SIZE")
		require.ErrorContains(t, err, "DATABASE_URL is required")
	})
	t.Run("DevNeedsNoDatabase", func(t *testing.T) {
		cfg, err := readDevConfig(lookupFrom(nil))
		require.NoError(t, err)
		require.Empty(t, cfg.DatabaseURL)
		require.Empty(t, cfg.Temporal.Address, "dev starts its own Temporal when TEMPORAL_ADDRESS is unset")
		require.True(t, filepath.IsAbs(cfg.DataDir))
		require.Equal(t, 8233, cfg.UIPort)
	})
}

// DEV_NODE* shape the dev stack's simulated Kubernetes nodes; bad values are
// named, all at once.
func TestDevNodesConfig(t *testing.T) {
	t.Parallel()
	cfg, err := readDevConfig(lookupFrom(nil))
	require.NoError(t, err)
	require.Equal(t, DevNodesConfig{Count: 3, CPU: "8", Memory: "32Gi", Pods: 110}, cfg.Nodes)

	cfg, err = readDevConfig(lookupFrom(map[string]string{"DEV_NODES": "5", "DEV_NODE_CPU": "500m",
		"DEV_NODE_MEMORY": "4Gi", "DEV_NODE_PODS": "20", "DEV_NODE_LABELS": " zone=a , example.com/gpu=true,empty= "}))
	require.NoError(t, err)
	require.Equal(t, DevNodesConfig{Count: 5, CPU: "500m", Memory: "4Gi", Pods: 20,
		Labels: map[string]string{"zone": "a", "example.com/gpu": "true", "empty": ""}}, cfg.Nodes)

	cfg, err = readDevConfig(lookupFrom(map[string]string{"DEV_NODES": "0"}))
	require.NoError(t, err)
	require.Zero(t, cfg.Nodes.Count)

	for _, tc := range []struct{ key, value, want string }{
		{"DEV_NODES", "three", `invalid DEV_NODES "three": must be a whole number from 0 to 100`},
		{"DEV_NODES", "101", `invalid DEV_NODES "101"`},
		{"DEV_NODE_CPU", "lots", `invalid DEV_NODE_CPU "lots": must be a positive Kubernetes quantity`},
		{"DEV_NODE_CPU", "0", `invalid DEV_NODE_CPU "0"`},
		{"DEV_NODE_MEMORY", "-1Gi", `invalid DEV_NODE_MEMORY "-1Gi"`},
		{"DEV_NODE_PODS", "0", `invalid DEV_NODE_PODS "0": must be a whole number from 1 to 10000`},
		{"DEV_NODE_LABELS", "zone", `invalid DEV_NODE_LABELS "zone": want key=value`},
		{"DEV_NODE_LABELS", "bad key=x", `invalid DEV_NODE_LABELS "bad key=x": name part must consist of`},
		{"DEV_NODE_LABELS", "k=not ok", `invalid DEV_NODE_LABELS "k=not ok": a valid label must be`},
		{"DEV_NODE_LABELS", "type=gpu", `invalid DEV_NODE_LABELS "type=gpu": label type is set by the dev stack`},
		{"DEV_NODE_LABELS", "a=1,a=2", `invalid DEV_NODE_LABELS "a=2": label a given twice`},
	} {
		_, err := readDevConfig(lookupFrom(map[string]string{tc.key: tc.value}))
		require.ErrorContains(t, err, tc.want, "%s=%s", tc.key, tc.value)
	}
	_, err = readDevConfig(lookupFrom(map[string]string{"DEV_NODES": "x", "DEV_NODE_MEMORY": "y", "DEV_NODE_LABELS": "z"}))
	for _, name := range []string{"DEV_NODES", "DEV_NODE_MEMORY", "DEV_NODE_LABELS"} {
		require.ErrorContains(t, err, name)
	}
}

// A bad value stops the process before it does anything, exit status 2, with
// a message naming the variable.
func TestBadValueStopsProcess(t *testing.T) {
	t.Parallel()
	for _, cmd := range [][]string{{"server"}, {"worker"}, {"migrate", "up"}, {"dev"}} {
		t.Run(cmd[0], func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), cmd, lookupFrom(map[string]string{
				"DATABASE_URL": goodDB, "LOG_LEVEL": "verbose"}), &stdout, &stderr)
			require.Equal(t, 2, code)
			require.Contains(t, stderr.String(), `invalid LOG_LEVEL "verbose"`)
		})
	}
	t.Run("UnknownCommand", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 2, run(context.Background(), []string{"serve"}, lookupFrom(nil), &stdout, &stderr))
		require.Contains(t, stderr.String(), `unknown command "serve"`)
	})
}

func TestPublishRejectsBadInput(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		args []string
		want string
	}{
		"UnknownType":  {[]string{"node.exploded", `{}`}, `"node.exploded" is not a catalogued event type`},
		"UnknownField": {[]string{"node.unhealthy", `{"node":"x"}`}, `unknown field "node"`},
		"WrongType":    {[]string{"node.unhealthy", `{"node_name":5}`}, "node.unhealthy data"},
		"MissingArgs":  {[]string{"node.unhealthy"}, "usage: streamspace publish"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"publish"}, tc.args...),
				lookupFrom(map[string]string{"DATABASE_URL": goodDB}), &stdout, &stderr)
			require.Equal(t, 2, code)
			require.Contains(t, stderr.String(), tc.want)
		})
	}
}

func TestOIDCConfig(t *testing.T) {
	t.Parallel()
	base := map[string]string{"DATABASE_URL": goodDB, "JWT_SECRET": goodJWT}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cfg, err := readServerConfig(lookupFrom(with("OIDC_ISSUER", "https://idp.example.com", "OIDC_AUDIENCE", "streamspace",
		"OIDC_ADMIN_VALUES", "ops-admins, platform")))
	require.NoError(t, err)
	require.Equal(t, "roles", cfg.HTTP.OIDC.RoleClaim)
	require.Equal(t, []string{"ops-admins", "platform"}, cfg.HTTP.OIDC.AdminValues)
	require.Equal(t, "preferred_username", cfg.HTTP.OIDC.UsernameClaim)

	cfg, err = readServerConfig(lookupFrom(with("OIDC_ISSUER", "https://idp.example.com", "OIDC_AUDIENCE", "x", "OIDC_ROLE_CLAIM", "")))
	require.NoError(t, err)
	require.Empty(t, cfg.HTTP.OIDC.RoleClaim, "set but empty: roles managed in StreamSpace")

	_, err = readServerConfig(lookupFrom(with("OIDC_ISSUER", "https://idp.example.com")))
	require.ErrorContains(t, err, "OIDC_AUDIENCE is required")
	_, err = readServerConfig(lookupFrom(with("OIDC_ISSUER", "streamspace", "OIDC_AUDIENCE", "x")))
	require.ErrorContains(t, err, "must differ from JWT_ISSUER")
}
