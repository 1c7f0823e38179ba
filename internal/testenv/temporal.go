package testenv

import (
	"os"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// TemporalAddress is the dev server's frontend address.
func TemporalAddress(t testing.TB) string {
	t.Helper()
	return mustEnv(t, "TEMPORAL_ADDRESS")
}

// TemporalNamespace is the namespace tests use.
func TemporalNamespace() string {
	if ns := os.Getenv("TEMPORAL_NAMESPACE"); ns != "" {
		return ns
	}
	return "default"
}

// TemporalClient connects to address (the dev server, or a proxy in front of
// it), without gRPC compression, as on loopback it only costs CPU. It reconnects within a fraction of a second, so tests that take the
// server away see it come back quickly. The client is closed when t ends.
func TemporalClient(t testing.TB, address string) client.Client {
	t.Helper()
	c, err := client.NewLazyClient(client.Options{
		HostPort:  address,
		Namespace: TemporalNamespace(),
		Logger:    quietLogger{},
		ConnectionOptions: client.ConnectionOptions{GrpcCompression: &client.GrpcCompressionNone{}, DialOptions: []grpc.DialOption{
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, MaxDelay: 250 * time.Millisecond},
				MinConnectTimeout: time.Second,
			}),
		}},
	})
	if err != nil {
		t.Fatalf("temporal client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// quietLogger drops the SDK's logs, which are noise in test output.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
