package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

type testBundle struct {
	srv *httptest.Server
	mux *chi.Mux
}

// setup serves the real router, with checks as the readiness checks.
func setup(t *testing.T, checks ...Check) *testBundle {
	t.Helper()
	s := New(Config{MaxBodyBytes: 1024}, Deps{
		Logger:   slog.New(slog.DiscardHandler),
		Registry: prometheus.NewRegistry(),
		Checks:   checks,
	})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &testBundle{srv: srv, mux: s.Handler().(*chi.Mux)}
}

func (b *testBundle) do(t *testing.T, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, data
}

type errorBody struct {
	Error struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

func decodeEnvelope(t *testing.T, data []byte) errorBody {
	t.Helper()
	var e errorBody
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&e), "body is not the error envelope: %s", data)
	require.NotEmpty(t, e.Error.Code)
	require.NotEmpty(t, e.Error.Message)
	require.NotNil(t, e.Error.Details, "details must always be an object")
	return e
}

func TestErrorEnvelope(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.Get("/test/panic", func(http.ResponseWriter, *http.Request) { panic("secret internal state") })
	b.mux.Get("/test/internal", handle(slog.New(slog.DiscardHandler), func(http.ResponseWriter, *http.Request) error {
		return errors.New("pq: password authentication failed for user admin")
	}))

	t.Run("NotFound", func(t *testing.T) {
		resp, data := b.do(t, http.MethodGet, "/no/such/route", "")
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.Equal(t, "NOT_FOUND", decodeEnvelope(t, data).Error.Code)
		require.Contains(t, resp.Header.Get("Content-Type"), "application/json")
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		resp, data := b.do(t, http.MethodDelete, "/healthz", "")
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		require.Equal(t, "METHOD_NOT_ALLOWED", decodeEnvelope(t, data).Error.Code)
	})
	for _, path := range []string{"/test/panic", "/test/internal"} {
		t.Run("Internal"+path, func(t *testing.T) {
			resp, data := b.do(t, http.MethodGet, path, "")
			require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
			e := decodeEnvelope(t, data)
			require.Equal(t, "INTERNAL", e.Error.Code)
			require.Equal(t, resp.Header.Get("X-Request-ID"), e.Error.Details["request_id"])
			require.NotContains(t, string(data), "secret")
			require.NotContains(t, string(data), "password")
		})
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/healthz", nil)
	req.Header.Set("X-Request-ID", "from-proxy-42")
	resp, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "from-proxy-42", resp.Header.Get("X-Request-ID"))

	req.Header.Set("X-Request-ID", "bad id with spaces\tand tabs")
	resp, err = b.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Regexp(t, `^[0-9a-f-]{36}$`, resp.Header.Get("X-Request-ID"))
}

type sampleBody struct {
	Name    string   `json:"name"`
	Count   int      `json:"count"`
	Enabled bool     `json:"enabled"`
	Events  []string `json:"events"`
	Retry   struct {
		MaxAttempts int `json:"max_attempts"`
	} `json:"retry_policy"`
}

func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mux.Post("/test/decode", handle(slog.New(slog.DiscardHandler), func(w http.ResponseWriter, r *http.Request) error {
		var body sampleBody
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, body)
		return nil
	}))
	cases := []struct {
		name, body, code, field, issue string
		status                         int
	}{
		{"UnknownField", `{"name":"a","colour":"red"}`, "VALIDATION_ERROR", "colour", "unknown field", 400},
		{"WrongType", `{"name":"a","count":"three"}`, "VALIDATION_ERROR", "count", "must be an integer", 400},
		{"WrongTypeNested", `{"retry_policy":{"max_attempts":true}}`, "VALIDATION_ERROR", "retry_policy.max_attempts", "must be an integer", 400},
		{"WrongTypeArray", `{"events":"session.created"}`, "VALIDATION_ERROR", "events", "must be an array", 400},
		{"TrailingData", `{"name":"a"} {"name":"b"}`, "VALIDATION_ERROR", "body", "single JSON value", 400},
		{"TrailingGarbage", `{"name":"a"}x`, "VALIDATION_ERROR", "body", "single JSON value", 400},
		{"Malformed", `{"name":`, "VALIDATION_ERROR", "body", "malformed JSON", 400},
		{"Syntax", `{"name" "a"}`, "VALIDATION_ERROR", "body", "malformed JSON at byte", 400},
		{"Empty", ``, "VALIDATION_ERROR", "body", "must not be empty", 400},
		{"NotAnObject", `[1,2]`, "VALIDATION_ERROR", "body", "must be an object", 400},
		{"TooLarge", `{"name":"` + strings.Repeat("x", 2000) + `"}`, "PAYLOAD_TOO_LARGE", "", "", 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := b.do(t, http.MethodPost, "/test/decode", tc.body)
			require.Equal(t, tc.status, resp.StatusCode, "body: %s", data)
			e := decodeEnvelope(t, data)
			require.Equal(t, tc.code, e.Error.Code)
			if tc.field != "" {
				require.Equal(t, tc.field, e.Error.Details["field"])
				require.Contains(t, e.Error.Details["issue"], tc.issue)
			}
		})
	}
	t.Run("Valid", func(t *testing.T) {
		resp, data := b.do(t, http.MethodPost, "/test/decode", `{"name":"a","count":3,"events":["x"]}`)
		require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", data)
	})
}

func TestProbes(t *testing.T) {
	t.Parallel()
	healthy := Check{Name: "postgres", Check: func(context.Context) error { return nil }}
	down := Check{Name: "temporal", Check: func(context.Context) error {
		return errors.New("dial tcp 10.1.2.3:7233: connection refused")
	}}

	t.Run("Healthz", func(t *testing.T) {
		resp, _ := setup(t, down).do(t, http.MethodGet, "/healthz", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})
	t.Run("Ready", func(t *testing.T) {
		resp, data := setup(t, healthy).do(t, http.MethodGet, "/readyz", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.JSONEq(t, `{"status":"ready","checks":{"postgres":{"status":"ok"}}}`, string(data))
	})
	t.Run("NotReady", func(t *testing.T) {
		resp, data := setup(t, healthy, down).do(t, http.MethodGet, "/readyz", "")
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		e := decodeEnvelope(t, data)
		require.Equal(t, "UNAVAILABLE", e.Error.Code)
		checks := e.Error.Details["checks"].(map[string]any)
		require.Equal(t, "ok", checks["postgres"].(map[string]any)["status"])
		require.Equal(t, "failing", checks["temporal"].(map[string]any)["status"])
		require.NotContains(t, string(data), "10.1.2.3", "internal addresses must not leak")
	})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do(t, http.MethodGet, "/healthz", "")
	b.do(t, http.MethodGet, "/no/such/thing/123", "")
	_, data := b.do(t, http.MethodGet, "/metrics", "")
	text := string(data)
	require.Contains(t, text, `streamspace_http_requests_total{method="GET",route="/healthz",status="200"} 1`)
	require.Contains(t, text, `streamspace_http_requests_total{method="GET",route="unmatched",status="404"} 1`)
	require.Contains(t, text, `streamspace_http_request_duration_seconds_bucket{method="GET",route="/healthz"`)
	require.NotContains(t, text, "/no/such/thing", "raw paths must not become labels")
}

func TestDocs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, data := b.do(t, http.MethodGet, "/api/docs/openapi.yaml", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(data), "openapi: 3.1.0")

	resp, data = b.do(t, http.MethodGet, "/api/docs/", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(data), "swagger-ui-bundle.js")
	require.NotContains(t, string(data), "https://", "Swagger UI must load nothing from a CDN")
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")

	resp, data = b.do(t, http.MethodGet, "/api/docs/swagger-initializer.js", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(data), `"/api/docs/openapi.yaml"`)

	resp, _ = b.do(t, http.MethodGet, "/api/docs/swagger-ui-bundle.js", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
