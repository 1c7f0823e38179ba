package notify

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/schemas"
)

// TestTeamsAdaptiveCard posts to a Teams Workflows-style receiver (202
// Accepted) and checks the message: one Adaptive Card 1.4 attachment with
// the title, text, facts and footer.
func TestTeamsAdaptiveCard(t *testing.T) {
	t.Parallel()
	hook := newReceiver(t, reply{status: 202})
	const path = "/workflows/0a1b/triggers/manual/paths/invoke?api-version=2016-06-01&sig=TeAmSsIgSeCrEt"
	cfg := mustJSON(t, TeamsConfig{WebhookURL: hook.URL + path})
	ev := testEvent(t, "backup.failed", samples[schemas.EventBackupFailed])

	res, err := Senders(testDeps())["teams"].Send(context.Background(), cfg, ev)
	require.NoError(t, err)
	require.Equal(t, 202, res.Status)
	require.Equal(t, hook.URL, res.RequestURL)
	requireNoSecret(t, res, err, "TeAmSsIgSeCrEt", "0a1b")

	got := hook.last(t)
	require.Equal(t, path, got.Path)
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	var msg struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string  `json:"contentType"`
			ContentURL  *string `json:"contentUrl"`
			Content     struct {
				Schema  string            `json:"$schema"`
				Type    string            `json:"type"`
				Version string            `json:"version"`
				Body    []json.RawMessage `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
	}
	require.NoError(t, json.Unmarshal(got.Body, &msg), "%s", got.Body)
	require.Equal(t, "message", msg.Type)
	require.Len(t, msg.Attachments, 1)
	a := msg.Attachments[0]
	require.Equal(t, "application/vnd.microsoft.card.adaptive", a.ContentType)
	require.Nil(t, a.ContentURL)
	require.Equal(t, "AdaptiveCard", a.Content.Type)
	require.Equal(t, "1.4", a.Content.Version)
	require.Equal(t, "http://adaptivecards.io/schemas/adaptive-card.json", a.Content.Schema)

	type element struct {
		Type  string `json:"type"`
		Text  string `json:"text"`
		Color string `json:"color"`
		Wrap  bool   `json:"wrap"`
		Facts []struct {
			Title string `json:"title"`
			Value string `json:"value"`
		} `json:"facts"`
	}
	els := make([]element, len(a.Content.Body))
	for i, raw := range a.Content.Body {
		require.NoError(t, json.Unmarshal(raw, &els[i]))
	}
	require.Len(t, els, 4)
	require.Equal(t, element{Type: "TextBlock", Text: "Backup failed: postgres", Color: "Attention", Wrap: true}, els[0])
	require.Equal(t, "The backup of postgres failed: disk full", els[1].Text)
	require.Equal(t, "FactSet", els[2].Type)
	require.Equal(t, "Target", els[2].Facts[0].Title)
	require.Equal(t, "postgres", els[2].Facts[0].Value)
	require.Equal(t, "StreamSpace · backup.failed · 2025-11-15 10:30:00 UTC", els[3].Text)
}

func TestTeamsErrors(t *testing.T) {
	t.Parallel()
	hook := newReceiver(t, reply{status: 400, body: `{"error":{"code":"InvalidRequestContent"}}`},
		reply{status: 502, body: "bad gateway"},
		reply{status: 429, header: map[string]string{"Retry-After": "12"}})
	cfg := mustJSON(t, TeamsConfig{WebhookURL: hook.URL + "/workflows/abc?sig=TeAmSsIgSeCrEt"})
	send := Senders(testDeps())["teams"]

	res, err := send.Send(context.Background(), cfg, Event{Type: EventTest})
	require.EqualError(t, err, "teams answered 400 Bad Request: {\"error\":{\"code\":\"InvalidRequestContent\"}}")
	require.True(t, res.Permanent)
	requireNoSecret(t, res, err, "TeAmSsIgSeCrEt")

	res, err = send.Send(context.Background(), cfg, Event{Type: EventTest})
	require.Error(t, err)
	require.False(t, res.Permanent)
	require.Equal(t, "bad gateway", res.ResponseBody)

	res, err = send.Send(context.Background(), cfg, Event{Type: EventTest})
	require.Error(t, err)
	require.False(t, res.Permanent)
	require.Equal(t, 12*time.Second, res.RetryAfter)
}

// TestDiscordEmbeds posts to a Discord-style webhook receiver (204) and
// checks the embed: title, description, colour, fields, timestamp, and that
// mentions are disabled.
func TestDiscordEmbeds(t *testing.T) {
	t.Parallel()
	hook := newReceiver(t, reply{status: 204})
	const path = "/api/webhooks/123456/DiScOrDtOkEn"
	cfg := mustJSON(t, DiscordConfig{WebhookURL: hook.URL + path})
	ev := testEvent(t, "compliance.violation", samples[schemas.EventComplianceViolation])

	res, err := Senders(testDeps())["discord"].Send(context.Background(), cfg, ev)
	require.NoError(t, err)
	require.Equal(t, 204, res.Status)
	requireNoSecret(t, res, err, "DiScOrDtOkEn", "123456")

	got := hook.last(t)
	require.Equal(t, path, got.Path)
	var body struct {
		Username        string `json:"username"`
		AllowedMentions struct {
			Parse []string `json:"parse"`
		} `json:"allowed_mentions"`
		Embeds []struct {
			Title       string `json:"title"`
			Description string `json:"description"`
			Color       int    `json:"color"`
			Timestamp   string `json:"timestamp"`
			Fields      []struct {
				Name   string `json:"name"`
				Value  string `json:"value"`
				Inline bool   `json:"inline"`
			} `json:"fields"`
		} `json:"embeds"`
	}
	require.NoError(t, json.Unmarshal(got.Body, &body), "%s", got.Body)
	require.Equal(t, "StreamSpace", body.Username)
	require.NotNil(t, body.AllowedMentions.Parse)
	require.Empty(t, body.AllowedMentions.Parse)
	require.Len(t, body.Embeds, 1)
	e := body.Embeds[0]
	require.Equal(t, "Compliance violation: no-public-sessions", e.Title)
	require.Equal(t, "A session is reachable from the internet", e.Description)
	require.Equal(t, colorCritical, e.Color)
	require.Equal(t, "2025-11-15T10:30:00Z", e.Timestamp)
	require.Equal(t, "Severity", e.Fields[0].Name)
	require.Equal(t, "critical", e.Fields[0].Value)
	require.Contains(t, string(got.Body), `"allowed_mentions":{"parse":[]}`)
}

// TestDiscordRateLimit: Discord's 429 says when to come back in the
// Retry-After header or, without it, in the JSON body's retry_after.
func TestDiscordRateLimit(t *testing.T) {
	t.Parallel()
	hook := newReceiver(t,
		reply{status: 429, header: map[string]string{"Content-Type": "application/json"},
			body: `{"message":"You are being rate limited.","retry_after":1.5,"global":false}`},
		reply{status: 429, header: map[string]string{"Retry-After": "3"}, body: `{"retry_after":2.9}`},
		reply{status: 404, body: `{"message":"Unknown Webhook","code":10015}`})
	cfg := mustJSON(t, DiscordConfig{WebhookURL: hook.URL + "/api/webhooks/1/DiScOrDtOkEn", Username: "Ops"})
	send := Senders(testDeps())["discord"]

	res, err := send.Send(context.Background(), cfg, Event{Type: EventTest})
	require.Error(t, err)
	require.Equal(t, 429, res.Status)
	require.False(t, res.Permanent)
	require.Equal(t, 1500*time.Millisecond, res.RetryAfter)

	res, err = send.Send(context.Background(), cfg, Event{Type: EventTest})
	require.Error(t, err)
	require.Equal(t, 3*time.Second, res.RetryAfter)

	res, err = send.Send(context.Background(), cfg, Event{Type: EventTest})
	require.Error(t, err)
	require.True(t, res.Permanent)
	require.Contains(t, err.Error(), "Unknown Webhook")
	requireNoSecret(t, res, err, "DiScOrDtOkEn")

	var body struct {
		Username string `json:"username"`
	}
	require.NoError(t, json.Unmarshal(hook.last(t).Body, &body))
	require.Equal(t, "Ops", body.Username)
}

// TestSendersRefusePrivateAddresses: with the default outbound rules the
// senders cannot reach loopback (or any private address), and say so
// without the URL's secret part.
func TestSendersRefusePrivateAddresses(t *testing.T) {
	t.Parallel()
	hook := newReceiver(t, reply{status: 200, body: "ok"})
	d := Deps{HTTP: safehttp.NewClient(safehttp.Options{AllowHTTP: true})}
	for typ, cfg := range map[string]any{
		"slack":   SlackConfig{WebhookURL: hook.URL + "/services/T/B/SeCrEt"},
		"teams":   TeamsConfig{WebhookURL: hook.URL + "/workflows/SeCrEt"},
		"discord": DiscordConfig{WebhookURL: hook.URL + "/api/webhooks/1/SeCrEt"},
	} {
		res, err := Senders(d)[typ].Send(context.Background(), mustJSON(t, cfg), Event{Type: EventTest})
		require.Error(t, err, typ)
		require.True(t, errors.Is(err, safehttp.ErrBlockedAddress), "%s: %v", typ, err)
		requireNoSecret(t, res, err, "SeCrEt")
	}
	require.Empty(t, hook.requests())
}

func TestSendersRefuseBadConfig(t *testing.T) {
	t.Parallel()
	for typ, cfg := range map[string]string{
		"slack": `{}`, "teams": `{"webhook_url":""}`, "discord": `{"nope":1}`,
		"pagerduty": `{"routing_key":""}`, "email": `{"to":[]}`,
	} {
		res, err := Senders(testDeps())[typ].Send(context.Background(), json.RawMessage(cfg), Event{Type: EventTest})
		require.Error(t, err, typ)
		require.True(t, res.Permanent, typ)
		require.True(t, errors.Is(err, ErrInvalidConfig), "%s: %v", typ, err)
	}
}
