package server

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// TestSessionLifecycle drives one session through the API against the real
// stack: the lifecycle workflow on a worker, the session controller, the
// local cluster whose kwok nodes run the pod.
func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{lifecycle: true})
	e.createTemplate("firefox")

	resp, data := e.call("POST", "/api/sessions", e.user.Token,
		map[string]any{"template": "firefox", "idle_timeout": "30m", "tags": []string{"work"}})
	require.Equal(t, 202, resp.StatusCode, "%s", data)
	var s sessionJSON
	require.NoError(t, json.Unmarshal(data, &s))
	require.Regexp(t, `^alice-firefox-[a-z2-7]{8}$`, s.ID)
	require.Equal(t, "/api/sessions/"+s.ID, resp.Header.Get("Location"))
	require.Equal(t, "pending", s.Phase)
	require.Equal(t, "running", s.State)
	require.Equal(t, "alice", s.User)
	require.Equal(t, e.user.ID, s.UserID)
	require.Equal(t, sessionResourcesJSON{CPU: "500m", Memory: "1Gi"}, s.Resources, "the template's defaults")
	require.Equal(t, "30m", s.IdleTimeout)
	require.Equal(t, "0", s.MaxSessionDuration)
	require.True(t, s.PersistentHome)
	require.Equal(t, []string{"work"}, s.Tags)
	require.Nil(t, s.RunningAt)

	// It runs on a kwok node, and the read model says so too.
	running := e.waitSession(s.ID, e.user.Token, "running", func(s sessionJSON) bool {
		return s.Phase == "running" && s.URL != "" && s.RunningAt != nil
	})
	require.Regexp(t, `^kwok-node-\d+$`, running.Node)
	require.Equal(t, s.ID, running.PodName)
	require.Regexp(t, `^http://`, running.URL)

	// Nobody else sees it; an admin does.
	for _, c := range []struct{ method, path string }{{"GET", ""}, {"PATCH", ""}, {"DELETE", ""}, {"POST", "/heartbeat"}} {
		resp, data := e.call(c.method, "/api/sessions/"+s.ID+c.path, e.other.Token, map[string]string{"state": "terminated"})
		require.Equal(t, 404, resp.StatusCode, "%s %s as bob: %s", c.method, c.path, data)
	}
	var asAdmin sessionJSON
	e.callJSON("GET", "/api/sessions/"+s.ID, e.admin.Token, nil, 200, &asAdmin)
	require.Equal(t, "running", asAdmin.Phase)

	// Listings: one's own; an admin's choice.
	ids := func(token, query string) []string {
		var out sessionListResponse
		e.callJSON("GET", "/api/sessions"+query, token, nil, 200, &out)
		var ids []string
		for _, s := range out.Sessions {
			ids = append(ids, s.ID)
		}
		return ids
	}
	require.Equal(t, []string{s.ID}, ids(e.user.Token, ""))
	require.Equal(t, []string{s.ID}, ids(e.user.Token, "?phase=running&live=true"))
	require.Empty(t, ids(e.user.Token, "?phase=hibernated"))
	require.Empty(t, ids(e.other.Token, ""))
	require.Equal(t, []string{s.ID}, ids(e.admin.Token, "?user_id="+e.user.ID.String()))
	require.Equal(t, []string{s.ID}, ids(e.admin.Token, ""))
	resp, _ = e.call("GET", "/api/sessions?user_id="+e.user.ID.String(), e.other.Token, nil)
	require.Equal(t, 403, resp.StatusCode)

	e.callJSON("POST", "/api/sessions/"+s.ID+"/heartbeat", e.user.Token, nil, 204, nil)

	// Hibernate: the pod goes, the session stays; a second hibernate is a conflict.
	var hib sessionJSON
	e.callJSON("PATCH", "/api/sessions/"+s.ID, e.user.Token, map[string]string{"state": "hibernated"}, 200, &hib)
	require.Equal(t, "hibernated", hib.Phase)
	require.Equal(t, "hibernated", hib.State)
	require.Empty(t, hib.PodName)
	_, err := e.kube.Clientset.CoreV1().Pods(e.kube.Namespace).Get(t.Context(), s.ID, metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "the pod is gone: %v", err)
	resp, data = e.call("PATCH", "/api/sessions/"+s.ID, e.user.Token, map[string]string{"state": "hibernated"})
	require.Equal(t, 409, resp.StatusCode, "%s", data)
	require.Equal(t, "CONFLICT", errorCode(t, data))
	var quota myQuotaJSON
	e.callJSON("GET", "/api/me/quota", e.user.Token, nil, 200, &quota)
	require.Equal(t, quotaUsageJSON{Sessions: 1}, quota.Usage, "a hibernated session holds no CPU or memory")

	// Wake: running again, on a node.
	var woke sessionJSON
	e.callJSON("PATCH", "/api/sessions/"+s.ID, e.admin.Token, map[string]string{"state": "running"}, 200, &woke)
	require.Equal(t, "running", woke.Phase)
	require.NotEmpty(t, woke.Node)

	// Delete: the Session resource is gone, the row says terminated.
	e.callJSON("DELETE", "/api/sessions/"+s.ID, e.user.Token, nil, 204, nil)
	_, err = e.kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(e.kube.Namespace).Get(t.Context(), s.ID, metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "the Session is gone: %v", err)
	var ended sessionJSON
	e.callJSON("GET", "/api/sessions/"+s.ID, e.user.Token, nil, 200, &ended)
	require.Equal(t, "terminated", ended.Phase)
	require.Equal(t, "terminated", ended.State)
	require.Equal(t, "deleted by alice", ended.Message)
	require.NotNil(t, ended.EndedAt)
	e.callJSON("DELETE", "/api/sessions/"+s.ID, e.user.Token, nil, 204, nil) // idempotent
	resp, data = e.call("PATCH", "/api/sessions/"+s.ID, e.user.Token, map[string]string{"state": "running"})
	require.Equal(t, 409, resp.StatusCode, "%s", data)
	resp, data = e.call("POST", "/api/sessions/"+s.ID+"/heartbeat", e.user.Token, nil)
	require.Equal(t, 409, resp.StatusCode, "%s", data)

	// Every step went through the outbox.
	for _, typ := range []schemas.EventType{schemas.EventSessionCreated, schemas.EventSessionHibernated,
		schemas.EventSessionAwakened, schemas.EventSessionDeleted} {
		events := outboxEvents(t, e.store, typ)
		require.Len(t, events, 1, "%s", typ)
		require.Equal(t, s.ID, events[0]["session_id"], "%s", typ)
		require.Equal(t, "alice", events[0]["user"], "%s", typ)
	}
}

func TestSessionCreateValidation(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{sessions: SessionConfig{DefaultIdleTimeout: 45 * time.Minute}})
	e.createTemplate("firefox")
	cases := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"no template", map[string]any{}, "template"},
		{"unknown template", map[string]any{"template": "nope"}, "template"},
		{"template not a name", map[string]any{"template": "Fire Fox"}, "template"},
		{"idle timeout", map[string]any{"template": "firefox", "idle_timeout": "soon"}, "idle_timeout"},
		{"negative duration", map[string]any{"template": "firefox", "max_session_duration": "-5m"}, "max_session_duration"},
		{"cpu", map[string]any{"template": "firefox", "resources": map[string]any{"cpu": "lots"}}, "resources.cpu"},
		{"zero memory", map[string]any{"template": "firefox", "resources": map[string]any{"memory": "0"}}, "resources.memory"},
		{"empty tag", map[string]any{"template": "firefox", "tags": []string{""}}, "tags[0]"},
		{"unknown field", map[string]any{"template": "firefox", "node": "kwok-node-0"}, "node"},
	}
	for _, c := range cases {
		resp, data := e.call("POST", "/api/sessions", e.user.Token, c.body)
		require.Equal(t, 400, resp.StatusCode, "%s: %s", c.name, data)
		require.Equal(t, c.field, decodeEnvelope(t, data).Error.Details["field"], "%s: %s", c.name, data)
	}
	resp, data := e.call("POST", "/api/sessions", e.user.Token, map[string]any{"template": "nope"})
	require.Equal(t, 400, resp.StatusCode)
	require.Contains(t, decodeEnvelope(t, data).Error.Details["issue"], `"nope"`)

	// Explicit resources and timings are kept; absent ones take the defaults.
	var s sessionJSON
	e.callJSON("POST", "/api/sessions", e.user.Token, map[string]any{"template": "firefox",
		"resources": map[string]any{"cpu": "2", "memory": "4Gi"}, "idle_timeout": "0",
		"max_session_duration": "8h", "persistent_home": false}, 202, &s)
	require.Equal(t, sessionResourcesJSON{CPU: "2", Memory: "4Gi"}, s.Resources)
	require.Equal(t, "0", s.IdleTimeout)
	require.Equal(t, "8h", s.MaxSessionDuration)
	require.False(t, s.PersistentHome)
	row, err := e.store.GetSession(context.Background(), s.ID)
	require.NoError(t, err)
	require.Equal(t, &kubeapi.Resources{CPU: "2", Memory: "4Gi"}, row.Spec.Resources)
	require.EqualValues(t, 2000, row.CPUMillis)
	require.EqualValues(t, 4<<30, row.MemoryBytes)
	require.Equal(t, "alice", row.Spec.User)

	e.callJSON("POST", "/api/sessions", e.user.Token, map[string]any{"template": "firefox"}, 202, &s)
	require.Equal(t, "45m0s", s.IdleTimeout, "the configured default")
}

func TestSessionQuotaExceeded(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{lifecycle: true})
	e.createTemplate("firefox")
	e.callJSON("PUT", "/api/admin/users/"+e.user.ID.String()+"/quota", e.admin.Token, map[string]any{"max_sessions": 1}, 200, nil)

	var first sessionJSON
	e.callJSON("POST", "/api/sessions", e.user.Token, map[string]any{"template": "firefox"}, 202, &first)
	resp, data := e.call("POST", "/api/sessions", e.user.Token, map[string]any{"template": "firefox"})
	require.Equal(t, 409, resp.StatusCode, "%s", data)
	env := decodeEnvelope(t, data)
	require.Equal(t, "QUOTA_EXCEEDED", env.Error.Code)
	require.Equal(t, map[string]any{"resource": "sessions", "limit": 1.0, "used": 2.0}, env.Error.Details)
	require.Equal(t, []map[string]any{{"user": "alice", "resource": "sessions", "limit": 1.0, "used": 2.0}},
		outboxEvents(t, e.store, schemas.EventQuotaExceeded))

	// CPU: bob may hold one core.
	e.callJSON("PUT", "/api/admin/users/"+e.other.ID.String()+"/quota", e.admin.Token, map[string]any{"cpu": "1"}, 200, nil)
	resp, data = e.call("POST", "/api/sessions", e.other.Token, map[string]any{"template": "firefox", "resources": map[string]any{"cpu": "1500m"}})
	require.Equal(t, 409, resp.StatusCode, "%s", data)
	require.Equal(t, map[string]any{"resource": "cpu", "limit": 1.0, "used": 1.5}, decodeEnvelope(t, data).Error.Details)

	// Once the first session ended, alice may start another.
	e.waitSession(first.ID, e.user.Token, "running", func(s sessionJSON) bool { return s.Phase == "running" && s.RunningAt != nil })
	e.callJSON("DELETE", "/api/sessions/"+first.ID, e.user.Token, nil, 204, nil)
	var second sessionJSON
	e.callJSON("POST", "/api/sessions", e.user.Token, map[string]any{"template": "firefox"}, 202, &second)
	e.waitSession(second.ID, e.user.Token, "running", func(s sessionJSON) bool { return s.Phase == "running" && s.RunningAt != nil })
	var ended sessionJSON
	e.callJSON("PATCH", "/api/sessions/"+second.ID, e.user.Token, map[string]string{"state": "terminated"}, 200, &ended)
	require.Equal(t, "terminated", ended.Phase)
	require.Equal(t, "terminated by alice", ended.Message)
	require.Empty(t, ended.PodName)
}

// TestSessionStartFailure: when the workflow cannot be started the session
// is recorded as failed (holding no quota) and the answer is 503.
func TestSessionStartFailure(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{temporalNamespace: "no-such-namespace-" + uuid.NewString()})
	e.createTemplate("firefox")
	resp, data := e.call("POST", "/api/sessions", e.user.Token, map[string]any{"template": "firefox"})
	require.Equal(t, 503, resp.StatusCode, "%s", data)
	env := decodeEnvelope(t, data)
	require.Equal(t, "UNAVAILABLE", env.Error.Code)
	id, _ := env.Error.Details["session_id"].(string)
	require.NotEmpty(t, id)

	var s sessionJSON
	e.callJSON("GET", "/api/sessions/"+id, e.user.Token, nil, 200, &s)
	require.Equal(t, "failed", s.Phase)
	require.Contains(t, s.Message, "could not be started")
	require.NotNil(t, s.EndedAt)
	var quota myQuotaJSON
	e.callJSON("GET", "/api/me/quota", e.user.Token, nil, 200, &quota)
	require.Zero(t, quota.Usage.Sessions)
	deleted := outboxEvents(t, e.store, schemas.EventSessionDeleted)
	require.Len(t, deleted, 1)
	require.Equal(t, id, deleted[0]["session_id"])
	e.callJSON("DELETE", "/api/sessions/"+id, e.user.Token, nil, 204, nil)
}

func TestSessionListPages(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	var want []string
	for range 3 {
		want = append([]string{insertSession(t, b, b.user, "firefox", false).ID}, want...) // newest first
	}
	insertSession(t, b, b.other, "firefox", false)
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		var out sessionListResponse
		b.callJSON("GET", "/api/sessions?limit=2"+cursor, b.user.Token, nil, 200, &out)
		for _, s := range out.Sessions {
			got = append(got, s.ID)
		}
		if out.NextCursor == nil {
			break
		}
		require.Less(t, page, 2)
		cursor = "&cursor=" + *out.NextCursor
	}
	require.Equal(t, want, got)
	for _, q := range []string{"cursor=bogus", "phase=sleeping", "live=maybe", "user_id=alice", "limit=0", "colour=red"} {
		resp, data := b.call("GET", "/api/sessions?"+q, b.user.Token, nil)
		require.Equal(t, 400, resp.StatusCode, "%s: %s", q, data)
	}
}

func TestNewSessionID(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ user, template, prefix string }{
		{"alice", "firefox", "alice-firefox-"},
		{"Bob.Smith@example.com", "vscode", "bob-smith-example-com-vscode-"},
		{"__", "x", "user-x-"},
		{"a_very_long_user_name_that_goes_on_and_on", "a-template-with-a-long-name", ""},
	} {
		id := newSessionID(c.user, c.template)
		require.LessOrEqual(t, len(id), 63, id)
		require.Regexp(t, `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, id)
		if c.prefix != "" {
			require.Regexp(t, fmt.Sprintf(`^%s[a-z2-7]{8}$`, c.prefix), id)
		}
	}
}

// TestSessionWakeOverQuota: waking re-checks the quota; the workflow's
// refusal is 409 QUOTA_EXCEEDED with the details, and the session stays
// hibernated.
func TestSessionWakeOverQuota(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{lifecycle: true})
	e.createTemplate("firefox")
	e.callJSON("PUT", "/api/admin/users/"+e.user.ID.String()+"/quota", e.admin.Token, map[string]any{"cpu": "1"}, 200, nil)
	// running_at is set when the workflow has recorded Running; the live
	// phase (the Session resource's) may run ahead of it for a moment.
	running := func(s sessionJSON) bool { return s.Phase == "running" && s.RunningAt != nil }

	var first, second sessionJSON
	e.callJSON("POST", "/api/sessions", e.user.Token, map[string]any{"template": "firefox"}, 202, &first) // 500m
	e.waitSession(first.ID, e.user.Token, "running", running)
	e.callJSON("PATCH", "/api/sessions/"+first.ID, e.user.Token, map[string]string{"state": "hibernated"}, 200, nil)
	e.callJSON("POST", "/api/sessions", e.user.Token, map[string]any{"template": "firefox",
		"resources": map[string]any{"cpu": "1"}}, 202, &second)
	e.waitSession(second.ID, e.user.Token, "running", running)

	resp, data := e.call("PATCH", "/api/sessions/"+first.ID, e.user.Token, map[string]string{"state": "running"})
	require.Equal(t, 409, resp.StatusCode, "%s", data)
	env := decodeEnvelope(t, data)
	require.Equal(t, "QUOTA_EXCEEDED", env.Error.Code)
	require.Equal(t, map[string]any{"resource": "cpu", "limit": 1.0, "used": 1.5}, env.Error.Details)
	var s sessionJSON
	e.callJSON("GET", "/api/sessions/"+first.ID, e.user.Token, nil, 200, &s)
	require.Equal(t, "hibernated", s.Phase)

	// With the other session gone it wakes.
	e.callJSON("DELETE", "/api/sessions/"+second.ID, e.user.Token, nil, 204, nil)
	e.callJSON("PATCH", "/api/sessions/"+first.ID, e.user.Token, map[string]string{"state": "running"}, 200, &s)
	require.Equal(t, "running", s.Phase)
	e.callJSON("DELETE", "/api/sessions/"+first.ID, e.user.Token, nil, 204, nil)
}
