package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/slack-go/slack"
)

// Slack limits (Block Kit): header text 150 characters, section text 3000,
// 10 fields per section, 2000 per field; 50 blocks per message.
const (
	slackHeaderMax  = 150
	slackTextMax    = 3000
	slackFieldsMax  = 10
	slackFieldMax   = 2000
	slackDefaultURL = "https://slack.com/api/"
)

// slackRetryable are Slack Web API errors (HTTP 200, "ok":false) after which
// a later attempt can succeed; every other error is permanent (a revoked
// token, a channel the bot is not in, an archived channel, ...).
var slackRetryable = map[string]bool{
	"ratelimited": true, "rate_limited": true, "internal_error": true, "fatal_error": true,
	"service_unavailable": true, "request_timeout": true,
}

// sendSlack posts to an incoming webhook, or with a bot token through
// chat.postMessage, a Block Kit message with a plain-text fallback.
func (d Deps) sendSlack(ctx context.Context, config json.RawMessage, ev Event) (Result, error) {
	c, err := decodeConfig[SlackConfig](config)
	if err == nil {
		err = c.validate(nil)
	}
	if err != nil {
		return Result{Permanent: true}, fmt.Errorf("slack: %w", err)
	}
	m := Render(ev)
	blocks := slackBlocks(m)
	fallback := slackEscape(truncate(m.Summary, slackTextMax))
	var res Result

	if c.WebhookURL != "" {
		red := newRedactor(urlSecrets(c.WebhookURL)...)
		client := d.httpClient(&res, red, nil)
		err = slack.PostWebhookCustomHTTPContext(ctx, c.WebhookURL, client, &slack.WebhookMessage{
			Text: fallback, Blocks: &slack.Blocks{BlockSet: blocks}})
		return slackOutcome(res, err, red)
	}

	red := newRedactor(c.BotToken, tokenHint(c.BotToken), url.QueryEscape(c.BotToken), tokenHint(c.BotToken))
	client := d.httpClient(&res, red, slackTokenToHeader)
	api := slack.New(c.BotToken, slack.OptionHTTPClient(client), slack.OptionAPIURL(d.slackAPIURL()))
	_, _, err = api.PostMessageContext(ctx, c.Channel,
		slack.MsgOptionText(fallback, false),
		slack.MsgOptionBlocks(blocks...),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl())
	return slackOutcome(res, err, red)
}

func (d Deps) slackAPIURL() string {
	u := d.SlackAPIURL
	if u == "" {
		return slackDefaultURL
	}
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u
}

// slackTokenToHeader moves the token slack-go puts in chat.postMessage's
// form body into an Authorization header, as Slack recommends: the body (and
// so the delivery log) never holds it.
func slackTokenToHeader(req *http.Request) {
	if !strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") || req.GetBody == nil {
		return
	}
	rc, err := req.GetBody()
	if err != nil {
		return
	}
	data, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil {
		return
	}
	form, err := url.ParseQuery(string(data))
	if err != nil || form.Get("token") == "" {
		return
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+form.Get("token"))
	}
	form.Del("token")
	setBody(req, []byte(form.Encode()))
}

// slackOutcome classifies a Slack answer.
func slackOutcome(res Result, err error, red redactor) (Result, error) {
	if err == nil {
		return res, nil
	}
	var rate *slack.RateLimitedError
	var apiErr slack.SlackErrorResponse
	var status slack.StatusCodeError
	switch {
	case errors.As(err, &rate):
		if rate.RetryAfter > 0 {
			res.RetryAfter = rate.RetryAfter
		}
		return res, statusError(red, "slack", &res, "rate limited")
	case errors.As(err, &apiErr):
		res.Permanent = !slackRetryable[apiErr.Err]
		return res, &sendError{msg: red.apply("slack: " + apiErr.Err), cause: err}
	case errors.As(err, &status):
		res.Permanent = permanentStatus(status.Code)
		return res, statusError(red, "slack", &res, res.ResponseBody)
	}
	return res, scrubbed(red, "slack: ", err)
}

// slackBlocks lays a Message out in Block Kit: a header, the text, the
// fields (two columns, ten per section) and a context line.
func slackBlocks(m Message) []slack.Block {
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType,
			truncate(slackEmoji(m)+" "+m.Title, slackHeaderMax), true, false)),
	}
	if m.Text != "" {
		blocks = append(blocks, slack.NewSectionBlock(
			slack.NewTextBlockObject(slack.MarkdownType, slackEscape(truncate(m.Text, slackTextMax)), false, true), nil, nil))
	}
	for i := 0; i < len(m.Fields); i += slackFieldsMax {
		end := min(i+slackFieldsMax, len(m.Fields))
		var fields []*slack.TextBlockObject
		for _, f := range m.Fields[i:end] {
			fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType,
				truncate("*"+slackEscape(f.Name)+"*\n"+slackEscape(f.Value), slackFieldMax), false, true))
		}
		blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	}
	blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType,
		slackEscape(footer(m)), false, true)))
	return blocks
}

func slackEmoji(m Message) string {
	switch {
	case m.Color == colorGood:
		return ":white_check_mark:"
	case m.Severity == SeverityCritical:
		return ":rotating_light:"
	case m.Severity == SeverityError:
		return ":red_circle:"
	case m.Severity == SeverityWarning:
		return ":warning:"
	}
	return ":information_source:"
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning
// (so event data cannot @-mention a channel or forge a link).
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// footer is the context line every channel shows under a message.
func footer(m Message) string {
	return fmt.Sprintf("StreamSpace · %s · %s", m.Type, m.Time.Format("2006-01-02 15:04:05 UTC"))
}
