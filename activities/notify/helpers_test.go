package notify

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/safehttp"
)

// loopback lets the SSRF-safe client reach the test's receivers on
// 127.0.0.1 over http.
var loopback = safehttp.Options{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Timeout: 5 * time.Second}

func testDeps() Deps { return Deps{HTTP: safehttp.NewClient(loopback)} }

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

var testTime = time.Date(2025, 11, 15, 10, 30, 0, 0, time.UTC)

func testEvent(t testing.TB, typ string, data any) Event {
	return Event{DeliveryID: "0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee", ID: "0199ffff-0000-7000-8000-000000000001",
		Type: typ, OccurredAt: testTime, Data: mustJSON(t, data)}
}

// captured is one request a test receiver got.
type captured struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// receiver is an httptest server that records requests and answers with
// the next scripted reply (the last one repeats).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []captured
	replies []reply
}

type reply struct {
	status int
	header map[string]string
	body   string
}

func newReceiver(t testing.TB, replies ...reply) *receiver {
	rc := &receiver{replies: replies}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, captured{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body})
		rp := rc.replies[min(len(rc.got), len(rc.replies))-1]
		rc.mu.Unlock()
		for k, v := range rp.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(rp.status)
		_, _ = io.WriteString(w, rp.body)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []captured {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]captured(nil), rc.got...)
}

func (rc *receiver) last(t testing.TB) captured {
	t.Helper()
	got := rc.requests()
	require.NotEmpty(t, got, "the receiver got no request")
	return got[len(got)-1]
}

// requireNoSecret fails when a Result or an error shows any of the secrets.
func requireNoSecret(t testing.TB, res Result, err error, secrets ...string) {
	t.Helper()
	text := fmt.Sprintf("%s %v %s %v %s", res.RequestURL, res.RequestHeaders, res.RequestBody, res.ResponseHeaders, res.ResponseBody)
	if err != nil {
		text += " " + err.Error()
	}
	for _, s := range secrets {
		require.NotContains(t, text, s, "a secret leaked into the result or error")
	}
	require.False(t, strings.Count(res.RequestURL, "/") > 2, "RequestURL %q must be the scheme and host only", res.RequestURL)
}
