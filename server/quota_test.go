package server

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/schemas"
)

func TestQuotaEndpoints(t *testing.T) {
	t.Parallel()
	b := newAPI(t, func(c *Config) {
		c.Sessions.DefaultQuota = schemas.Quota{MaxSessions: 3, CPUMillis: 4000, MemoryBytes: 8 << 30}
	})
	cores, gib8 := 4.0, int64(8<<30)
	defaults := quotaLimitsJSON{MaxSessions: 3, CPU: &cores, Memory: &gib8}

	var mine myQuotaJSON
	b.callJSON("GET", "/api/me/quota", b.user.Token, nil, 200, &mine)
	require.Equal(t, myQuotaJSON{Limits: defaults}, mine)

	// Live sessions count; ended ones do not.
	insertSession(t, b, b.user, "firefox", false)
	insertSession(t, b, b.user, "firefox", true)
	b.callJSON("GET", "/api/me/quota", b.user.Token, nil, 200, &mine)
	require.Equal(t, quotaUsageJSON{Sessions: 1, CPU: 0.5, Memory: 1 << 30}, mine.Usage)

	// An admin sets alice's own limits; she sees them.
	path := "/api/admin/users/" + b.user.ID.String() + "/quota"
	var uq userQuotaJSON
	b.callJSON("GET", path, b.admin.Token, nil, 200, &uq)
	require.Nil(t, uq.MaxSessions)
	require.Nil(t, uq.CPU)
	require.Equal(t, defaults, uq.Effective)
	require.Equal(t, mine.Usage, uq.Usage)

	b.callJSON("PUT", path, b.admin.Token, map[string]any{"max_sessions": 1, "cpu": "1500m", "memory": "0"}, 200, &uq)
	require.Equal(t, b.user.ID, uq.UserID)
	require.Equal(t, 1, *uq.MaxSessions)
	require.Equal(t, "1500m", *uq.CPU)
	require.Equal(t, "0", *uq.Memory)
	oneAndHalf := 1.5
	require.Equal(t, quotaLimitsJSON{MaxSessions: 1, CPU: &oneAndHalf}, uq.Effective, `memory "0" is no limit`)
	b.callJSON("GET", "/api/me/quota", b.user.Token, nil, 200, &mine)
	require.Equal(t, uq.Effective, mine.Limits)
	b.callJSON("GET", "/api/me/quota", b.other.Token, nil, 200, &mine)
	require.Equal(t, defaults, mine.Limits, "bob keeps the default")

	// memory only: the rest goes back to the default.
	b.callJSON("PUT", path, b.admin.Token, map[string]any{"memory": "2Gi", "cpu": nil}, 200, &uq)
	require.Nil(t, uq.MaxSessions)
	require.Nil(t, uq.CPU)
	require.Equal(t, "2Gi", *uq.Memory)
	require.Equal(t, 3, uq.Effective.MaxSessions)

	for _, c := range []struct {
		body  any
		field string
	}{
		{map[string]any{"max_sessions": -1}, "max_sessions"},
		{map[string]any{"cpu": "lots"}, "cpu"},
		{map[string]any{"memory": "-1Gi"}, "memory"},
		{map[string]any{"max_sessions": "five"}, "max_sessions"},
		{map[string]any{"gpus": 1}, "gpus"},
	} {
		resp, data := b.call("PUT", path, b.admin.Token, c.body)
		require.Equal(t, 400, resp.StatusCode, "%v: %s", c.body, data)
		require.Equal(t, c.field, decodeEnvelope(t, data).Error.Details["field"], "%s", data)
	}
	b.callJSON("GET", "/api/admin/users/00000000-0000-0000-0000-000000000000/quota", b.admin.Token, nil, 404, nil)
	b.callJSON("PUT", "/api/admin/users/00000000-0000-0000-0000-000000000000/quota", b.admin.Token, map[string]any{}, 404, nil)
	b.callJSON("GET", "/api/admin/users/not-a-uuid/quota", b.admin.Token, nil, 404, nil)
}
