package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/safehttp"
)

func TestValidateConfig(t *testing.T) {
	t.Parallel()
	public := safehttp.Options{}
	cases := []struct {
		typ, config string
		field       string // "" = valid
	}{
		{"slack", `{"webhook_url":"https://hooks.slack.com/services/T0/B0/XYZ"}`, ""},
		{"slack", `{"bot_token":"xoxb-1-2-abc","channel":"C0123ABCD"}`, ""},
		{"slack", `{"bot_token":"xoxb-1","channel":"#alerts"}`, ""},
		{"slack", `{}`, "config.webhook_url"},
		{"slack", `{"bot_token":"xoxb-1"}`, "config.channel"},
		{"slack", `{"channel":"#alerts"}`, "config.bot_token"},
		{"slack", `{"bot_token":"secret","channel":"#a"}`, "config.bot_token"},
		{"slack", `{"webhook_url":"https://hooks.slack.com/x","bot_token":"xoxb-1","channel":"#a"}`, "config.webhook_url"},
		{"slack", `{"webhook_url":"http://hooks.slack.com/x"}`, "config.webhook_url"},  // https required
		{"slack", `{"webhook_url":"https://10.0.0.5/hook"}`, "config.webhook_url"},     // private address
		{"slack", `{"webhook_url":"https://169.254.169.254/x"}`, "config.webhook_url"}, // metadata
		{"slack", `{"webhook_url":"https://hooks.slack.com/x","extra":1}`, "config.extra"},
		{"slack", `{"webhook_url":42}`, "config.webhook_url"},
		{"slack", `null`, "config"},
		{"slack", `[1]`, "config"},
		{"teams", `{"webhook_url":"https://prod-01.westus.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=s3cret"}`, ""},
		{"teams", `{"webhook_url":""}`, "config.webhook_url"},
		{"teams", `{"webhook_url":"ftp://example.com/x"}`, "config.webhook_url"},
		{"discord", `{"webhook_url":"https://discord.com/api/webhooks/1/tok","username":"Ops bot"}`, ""},
		{"discord", `{"webhook_url":"https://discord.com/api/webhooks/1/tok","username":"two\nlines"}`, "config.username"},
		{"discord", `{"webhook_url":"https://127.0.0.1/api/webhooks/1/tok"}`, "config.webhook_url"},
		{"pagerduty", `{"routing_key":"R0123456789abcdef0123456789abcdef"}`, ""},
		{"pagerduty", `{"routing_key":"R01","severity_override":"critical"}`, ""},
		{"pagerduty", `{"routing_key":"R01","severity_override":"sev1"}`, "config.severity_override"},
		{"pagerduty", `{}`, "config.routing_key"},
		{"pagerduty", `{"routing_key":"has space"}`, "config.routing_key"},
		{"email", `{"to":["ops@example.com","Ops Team <team@example.com>"],"subject_prefix":"[prod]"}`, ""},
		{"email", `{"to":[]}`, "config.to"},
		{"email", `{"to":["not-an-address"]}`, "config.to[0]"},
		{"email", `{"to":["ok@example.com","bad@@x"]}`, "config.to[1]"},
		{"email", `{"to":"ops@example.com"}`, "config.to"},
		{"email", `{"to":["ops@example.com"],"subject_prefix":"a\r\nBcc: x@evil.com"}`, "config.subject_prefix"},
		{"fax", `{}`, "type"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %s", c.typ, c.config), func(t *testing.T) {
			err := ValidateConfig(c.typ, json.RawMessage(c.config), public)
			if c.field == "" {
				require.NoError(t, err)
				return
			}
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, c.field, ce.Field, "%v", err)
			require.True(t, errors.Is(err, ErrInvalidConfig))
			require.NotContains(t, ce.Issue, "XYZ")
		})
	}
	// the test allowlist admits loopback over http
	require.NoError(t, ValidateConfig("teams", json.RawMessage(`{"webhook_url":"http://127.0.0.1:9/hook"}`), loopback))
}

func TestRedactConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		typ, config string
		want        map[string]any
		secrets     []string
	}{
		{"slack", `{"webhook_url":"https://hooks.slack.com/services/T0/B0/XYZ"}`,
			map[string]any{"webhook_url": "https://hooks.slack.com/…"}, []string{"XYZ", "services"}},
		{"slack", `{"bot_token":"xoxb-1-2-SECRET","channel":"#alerts"}`,
			map[string]any{"bot_token": "xoxb-…", "channel": "#alerts"}, []string{"SECRET"}},
		{"teams", `{"webhook_url":"https://x.logic.azure.com/workflows/abc?sig=SECRET"}`,
			map[string]any{"webhook_url": "https://x.logic.azure.com/…"}, []string{"SECRET", "abc"}},
		{"discord", `{"webhook_url":"https://discord.com/api/webhooks/1/SECRET","username":"Ops"}`,
			map[string]any{"webhook_url": "https://discord.com/…", "username": "Ops"}, []string{"SECRET"}},
		{"pagerduty", `{"routing_key":"SECRETKEY","severity_override":"error"}`,
			map[string]any{"routing_key": "…", "severity_override": "error"}, []string{"SECRETKEY"}},
		{"email", `{"to":["ops@example.com"],"subject_prefix":"[prod]"}`,
			map[string]any{"to": []any{"ops@example.com"}, "subject_prefix": "[prod]"}, nil},
		{"slack", `not json`, map[string]any{}, nil},
	}
	for _, c := range cases {
		got := RedactConfig(c.typ, json.RawMessage(c.config))
		require.Equal(t, c.want, got, c.config)
		b, _ := json.Marshal(got)
		for _, s := range c.secrets {
			require.NotContains(t, string(b), s)
		}
	}
}
