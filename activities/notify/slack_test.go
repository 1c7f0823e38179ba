package notify

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/schemas"
)

const slackToken = "xoxb-1111-2222-SeCrEtToKeN"

// slackBlock is the part of a Block Kit block the tests look at.
type slackBlock struct {
	Type string `json:"type"`
	Text *struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"text"`
	Fields []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"fields"`
	Elements []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"elements"`
}

// TestSlackBotPostMessage runs slack-go against a local Slack Web API that
// checks what chat.postMessage gets: the bearer token in the Authorization
// header (not in the body), the channel, the fallback text and the blocks.
func TestSlackBotPostMessage(t *testing.T) {
	t.Parallel()
	api := newReceiver(t, reply{status: 200, header: map[string]string{"Content-Type": "application/json"},
		body: `{"ok":true,"channel":"C0123ABCD","ts":"1700000000.000100","message":{"text":"x"}}`})
	d := testDeps()
	d.SlackAPIURL = api.URL + "/api/"
	cfg := mustJSON(t, SlackConfig{BotToken: slackToken, Channel: "C0123ABCD"})
	ev := testEvent(t, "node.unhealthy", samples[schemas.EventNodeUnhealthy])

	res, err := Senders(d)["slack"].Send(context.Background(), cfg, ev)
	require.NoError(t, err)
	require.Equal(t, 200, res.Status)
	require.Equal(t, api.URL, res.RequestURL)
	require.Equal(t, redacted, res.RequestHeaders["Authorization"])
	requireNoSecret(t, res, err, slackToken, "SeCrEtToKeN")

	got := api.last(t)
	require.Equal(t, "POST", got.Method)
	require.Equal(t, "/api/chat.postMessage", got.Path)
	require.Equal(t, "Bearer "+slackToken, got.Header.Get("Authorization"))
	require.Equal(t, "application/x-www-form-urlencoded", got.Header.Get("Content-Type"))
	form, err := url.ParseQuery(string(got.Body))
	require.NoError(t, err)
	require.Empty(t, form.Get("token"), "the token travels in the header only")
	require.Equal(t, "C0123ABCD", form.Get("channel"))
	require.Equal(t, "Node unhealthy: worker-1 — The node worker-1 is unhealthy: NotReady.", form.Get("text"))
	require.Equal(t, "false", form.Get("unfurl_links"))

	var blocks []slackBlock
	require.NoError(t, json.Unmarshal([]byte(form.Get("blocks")), &blocks), form.Get("blocks"))
	require.GreaterOrEqual(t, len(blocks), 4)
	require.Equal(t, "header", blocks[0].Type)
	require.Equal(t, "plain_text", blocks[0].Text.Type)
	require.Equal(t, ":red_circle: Node unhealthy: worker-1", blocks[0].Text.Text)
	require.Equal(t, "section", blocks[1].Type)
	require.Equal(t, "mrkdwn", blocks[1].Text.Type)
	require.Equal(t, "The node worker-1 is unhealthy: NotReady.", blocks[1].Text.Text)
	require.Equal(t, "section", blocks[2].Type)
	require.Equal(t, "*Node*\nworker-1", blocks[2].Fields[0].Text)
	require.Equal(t, "context", blocks[len(blocks)-1].Type)
	require.Equal(t, "StreamSpace · node.unhealthy · 2025-11-15 10:30:00 UTC", blocks[len(blocks)-1].Elements[0].Text)
}

// TestSlackEscapesMentions: event data cannot @-mention a channel or forge
// a link in Slack's mrkdwn.
func TestSlackEscapesMentions(t *testing.T) {
	t.Parallel()
	blocks := slackBlocks(Render(testEvent(t, "security.alert", schemas.SecurityAlertData{AlertID: "a", Kind: "x",
		Severity: "low", Message: "<!channel> see <https://evil.example|here> & more"})))
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(blocks))
	b := buf.String()
	require.NotContains(t, b, "<!channel>")
	require.Contains(t, b, "&lt;!channel&gt; see &lt;https://evil.example|here&gt; &amp; more")
}

func TestSlackAPIErrors(t *testing.T) {
	t.Parallel()
	cfg := mustJSON(t, SlackConfig{BotToken: slackToken, Channel: "C0123ABCD"})
	ev := testEvent(t, "user.created", samples[schemas.EventUserCreated])
	cases := []struct {
		name      string
		reply     reply
		permanent bool
		retry     time.Duration
		errText   string
	}{
		{"channel not found", reply{status: 200, header: map[string]string{"Content-Type": "application/json"},
			body: `{"ok":false,"error":"channel_not_found"}`}, true, 0, "slack: channel_not_found"},
		{"internal error", reply{status: 200, header: map[string]string{"Content-Type": "application/json"},
			body: `{"ok":false,"error":"internal_error"}`}, false, 0, "slack: internal_error"},
		{"rate limited", reply{status: 429, header: map[string]string{"Retry-After": "7"}}, false, 7 * time.Second, "slack answered 429"},
		{"server error", reply{status: 503, body: "<html>down</html>"}, false, 0, "slack answered 503"},
		{"gone", reply{status: 410}, true, 0, "slack answered 410"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			api := newReceiver(t, c.reply)
			d := testDeps()
			d.SlackAPIURL = api.URL + "/api"
			res, err := Senders(d)["slack"].Send(context.Background(), cfg, ev)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.errText)
			require.Equal(t, c.reply.status, res.Status)
			require.Equal(t, c.permanent, res.Permanent)
			require.Equal(t, c.retry, res.RetryAfter)
			requireNoSecret(t, res, err, slackToken)
		})
	}
}

// TestSlackIncomingWebhook posts to an incoming-webhook receiver: JSON with
// the fallback text and the blocks; the webhook URL's path (its token) never
// shows in the result or in errors.
func TestSlackIncomingWebhook(t *testing.T) {
	t.Parallel()
	hook := newReceiver(t, reply{status: 200, body: "ok"}, reply{status: 404, body: "no_service"},
		reply{status: 429, header: map[string]string{"Retry-After": "30"}, body: "rate_limited"})
	const path = "/services/T0000/B0000/WeBhOoKsEcReT"
	cfg := mustJSON(t, SlackConfig{WebhookURL: hook.URL + path})
	ev := testEvent(t, "quota.exceeded", samples[schemas.EventQuotaExceeded])
	send := Senders(testDeps())["slack"]

	res, err := send.Send(context.Background(), cfg, ev)
	require.NoError(t, err)
	require.Equal(t, 200, res.Status)
	require.Equal(t, "ok", res.ResponseBody)
	require.Equal(t, hook.URL, res.RequestURL)
	requireNoSecret(t, res, err, "WeBhOoKsEcReT")
	got := hook.last(t)
	require.Equal(t, path, got.Path)
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	var body struct {
		Text   string       `json:"text"`
		Blocks []slackBlock `json:"blocks"`
	}
	require.NoError(t, json.Unmarshal(got.Body, &body), "%s", got.Body)
	require.Equal(t, "Quota exceeded: alice (sessions) — alice reached the sessions limit: 3 used of 3.", body.Text)
	require.Equal(t, ":warning: Quota exceeded: alice (sessions)", body.Blocks[0].Text.Text)

	res, err = send.Send(context.Background(), cfg, ev)
	require.Error(t, err)
	require.True(t, res.Permanent)
	require.Equal(t, 404, res.Status)
	requireNoSecret(t, res, err, "WeBhOoKsEcReT")

	res, err = send.Send(context.Background(), cfg, ev)
	require.Error(t, err)
	require.False(t, res.Permanent)
	require.Equal(t, 30*time.Second, res.RetryAfter)
}

// TestSlackUnreachableHidesURL: a network error names the host, never the
// webhook's path.
func TestSlackUnreachableHidesURL(t *testing.T) {
	t.Parallel()
	hook := newReceiver(t, reply{status: 200, body: "ok"})
	hook.Close()
	cfg := mustJSON(t, SlackConfig{WebhookURL: hook.URL + "/services/T/B/WeBhOoKsEcReT"})
	res, err := Senders(testDeps())["slack"].Send(context.Background(), cfg, Event{Type: EventTest})
	require.Error(t, err)
	require.False(t, res.Permanent)
	require.Contains(t, err.Error(), hook.URL)
	requireNoSecret(t, res, err, "WeBhOoKsEcReT", "/services")
}
