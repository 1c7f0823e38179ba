package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"
)

// webhookWalkThrough is the webhooks steps of docs/webhooks.md: a local receiver that
// answers 503 twice per delivery, then 200, and verifies every request with
// the Standard Webhooks library.
type webhookWalkThrough struct {
	admin    *apiClient
	id       string
	verifier *standardwebhooks.Webhook

	mu       sync.Mutex
	attempts map[string][]receipt // by webhook-id
}

type receipt struct {
	event    string
	at       time.Time
	verified error
}

// startWebhookWalkThrough creates the receiver and a webhook for
// session.created with a 1 s exponential backoff.
func startWebhookWalkThrough(t *testing.T, api string) *webhookWalkThrough {
	t.Helper()
	w := &webhookWalkThrough{admin: &apiClient{api: api}, attempts: map[string][]receipt{}}
	w.admin.token = w.admin.login(t, "admin", "e2e admin password")
	receiver := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p struct{ Event string }
		_ = json.Unmarshal(body, &p)
		w.mu.Lock()
		id := r.Header.Get("webhook-id")
		w.attempts[id] = append(w.attempts[id], receipt{event: p.Event, at: time.Now(), verified: w.verifier.Verify(body, r.Header)})
		n := len(w.attempts[id])
		w.mu.Unlock()
		if n <= 2 {
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rw.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(receiver.Close)

	status, body := w.admin.do("POST", "/api/webhooks", `{"name":"Local receiver","url":"`+receiver.URL+`/hook",
		"events":["session.created"],"retry_policy":{"max_attempts":5,"backoff_seconds":1}}`)
	require.Equal(t, http.StatusCreated, status, body)
	var created struct{ ID, Secret string }
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	require.NotEmpty(t, created.Secret)
	w.id = created.ID
	var err error
	w.verifier, err = standardwebhooks.NewWebhook(created.Secret)
	require.NoError(t, err)

	status, body = w.admin.do("GET", "/api/webhooks/"+w.id, "")
	require.Equal(t, http.StatusOK, status, body)
	require.NotContains(t, body, created.Secret, "the secret is shown once")
	return w
}

// check waits for the session.created delivery: three attempts (503, 503,
// 200), each verified, the waits growing; the delivery log shows the same.
func (w *webhookWalkThrough) check(t *testing.T) {
	t.Helper()
	var id string
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for k, rs := range w.attempts {
			if len(rs) >= 3 && rs[0].event == "session.created" {
				id = k
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "the receiver did not get session.created three times")
	w.mu.Lock()
	rs := w.attempts[id]
	w.mu.Unlock()
	for i, r := range rs {
		require.NoError(t, r.verified, "attempt %d does not verify", i+1)
	}
	first, second := rs[1].at.Sub(rs[0].at), rs[2].at.Sub(rs[1].at)
	require.Greater(t, first, 800*time.Millisecond, "the first retry waits about 1 s")
	require.Greater(t, second, first, "the second retry waits longer")

	// The receiver answers the third attempt before the worker records it:
	// wait for the record.
	var d struct {
		State    string
		Attempts []struct {
			Attempt  int
			Outcome  string
			Response *struct{ Status int }
		}
	}
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		status, body := w.admin.do("GET", "/api/webhooks/"+w.id+"/deliveries/"+id, "")
		if status != http.StatusOK {
			return false, fmt.Errorf("GET delivery %s: %d %s", id, status, body)
		}
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			return false, err
		}
		return d.State == "succeeded", nil
	})
	require.NoError(t, err, "delivery %s: state %q after the receiver answered 200", id, d.State)
	require.Len(t, d.Attempts, 3)
	for i, a := range d.Attempts {
		require.Equal(t, i+1, a.Attempt)
		require.NotNil(t, a.Response)
	}
	require.Equal(t, 503, d.Attempts[0].Response.Status)
	require.Equal(t, 200, d.Attempts[2].Response.Status)
}
