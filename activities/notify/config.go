package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"

	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/schemas"
)

// The config of each integration type: the JSON an admin posts as "config",
// stored sealed. Webhook URLs, bot tokens and routing keys are secrets: they
// never leave the server again (RedactConfig) nor appear in delivery logs
// or errors.

// SlackConfig: an incoming webhook (WebhookURL), or a bot token and a
// channel (chat.postMessage). Exactly one of the two.
type SlackConfig struct {
	WebhookURL string `json:"webhook_url,omitempty"`
	BotToken   string `json:"bot_token,omitempty"`
	Channel    string `json:"channel,omitempty"` // a channel ID (C0123…) or #name
}

// TeamsConfig: a Teams Workflows webhook ("When a Teams webhook request is
// received"), which takes Adaptive Cards.
type TeamsConfig struct {
	WebhookURL string `json:"webhook_url"`
}

// DiscordConfig: a channel webhook; Username overrides the webhook's name
// ("StreamSpace" when empty).
type DiscordConfig struct {
	WebhookURL string `json:"webhook_url"`
	Username   string `json:"username,omitempty"`
}

// PagerDutyConfig: an Events API v2 integration (routing) key;
// SeverityOverride, when set, replaces the severity mapped from the event.
type PagerDutyConfig struct {
	RoutingKey       string `json:"routing_key"`
	SeverityOverride string `json:"severity_override,omitempty"`
}

// EmailConfig: recipients of the mail sent through the server's SMTP_*
// settings; SubjectPrefix defaults to "[StreamSpace]".
type EmailConfig struct {
	To            []string `json:"to"`
	SubjectPrefix string   `json:"subject_prefix,omitempty"`
}

// Limits of the config fields.
const (
	MaxRecipients      = 50
	maxChannelLen      = 80
	maxUsernameLen     = 80
	maxRoutingKeyLen   = 128
	maxBotTokenLen     = 256
	maxSubjectPrefix   = 100
	defaultSubjectPref = "[StreamSpace]"
)

// ConfigError is a validation failure of one field, named as in the
// request body ("config.webhook_url", "type"), with an issue written for the
// admin. It never quotes a secret value.
type ConfigError struct {
	Field string
	Issue string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Issue }

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

func configErr(field, format string, args ...any) error {
	f := "config"
	if field != "" {
		f += "." + field
	}
	return &ConfigError{Field: f, Issue: fmt.Sprintf(format, args...)}
}

// Types lists the integration types, in the order the docs give them.
var Types = []string{schemas.IntegrationSlack, schemas.IntegrationTeams, schemas.IntegrationDiscord,
	schemas.IntegrationPagerDuty, schemas.IntegrationEmail}

// ValidType reports whether typ is an integration type.
func ValidType(typ string) bool {
	for _, t := range Types {
		if t == typ {
			return true
		}
	}
	return false
}

// decodeConfig reads a config object strictly: an unknown field, a value of
// the wrong type or anything but one JSON object is a *ConfigError.
func decodeConfig[T any](config json.RawMessage) (T, error) {
	var v T
	trimmed := bytes.TrimSpace(config)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return v, configErr("", "is required")
	}
	if trimmed[0] != '{' {
		return v, configErr("", "must be an object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return v, configErr(typeErr.Field, "must be %s", jsonKind(typeErr.Type.Kind().String()))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return v, configErr(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "unknown field")
		default:
			return v, configErr("", "is not valid JSON")
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return v, configErr("", "must be a single JSON object")
	}
	return v, nil
}

func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	default:
		return "a " + kind
	}
}

// ValidateConfig checks an integration's config before it is saved:
// required fields, URLs (safehttp.CheckURL against opts: https, no private
// or loopback addresses outside opts.AllowedCIDRs), tokens and email
// addresses. The error is a *ConfigError.
func ValidateConfig(typ string, config json.RawMessage, opts safehttp.Options) error {
	switch typ {
	case schemas.IntegrationSlack:
		c, err := decodeConfig[SlackConfig](config)
		if err != nil {
			return err
		}
		return c.validate(&opts)
	case schemas.IntegrationTeams:
		c, err := decodeConfig[TeamsConfig](config)
		if err != nil {
			return err
		}
		return checkWebhookURL("webhook_url", c.WebhookURL, &opts)
	case schemas.IntegrationDiscord:
		c, err := decodeConfig[DiscordConfig](config)
		if err != nil {
			return err
		}
		return c.validate(&opts)
	case schemas.IntegrationPagerDuty:
		c, err := decodeConfig[PagerDutyConfig](config)
		if err != nil {
			return err
		}
		return c.validate()
	case schemas.IntegrationEmail:
		c, err := decodeConfig[EmailConfig](config)
		if err != nil {
			return err
		}
		return c.validate()
	}
	return &ConfigError{Field: "type", Issue: "must be one of " + strings.Join(Types, ", ")}
}

// checkWebhookURL validates a URL; opts nil skips the address rules (at
// send time the client enforces them on every connect).
func checkWebhookURL(field, raw string, opts *safehttp.Options) error {
	if strings.TrimSpace(raw) == "" {
		return configErr(field, "is required")
	}
	if opts == nil {
		return nil
	}
	if _, err := safehttp.CheckURL(raw, *opts); err != nil {
		return configErr(field, "%s", strings.TrimPrefix(err.Error(), "url: "))
	}
	return nil
}

func (c SlackConfig) validate(opts *safehttp.Options) error {
	switch {
	case c.WebhookURL != "" && (c.BotToken != "" || c.Channel != ""):
		return configErr("webhook_url", "give either webhook_url, or bot_token and channel, not both")
	case c.WebhookURL != "":
		return checkWebhookURL("webhook_url", c.WebhookURL, opts)
	case c.BotToken == "" && c.Channel == "":
		return configErr("webhook_url", "is required (or bot_token and channel)")
	case c.BotToken == "":
		return configErr("bot_token", "is required with channel")
	case c.Channel == "":
		return configErr("channel", "is required with bot_token")
	}
	if !strings.HasPrefix(c.BotToken, "xox") || len(c.BotToken) > maxBotTokenLen || strings.ContainsFunc(c.BotToken, isSpaceOrControl) {
		return configErr("bot_token", "must be a Slack token (xoxb-…)")
	}
	if len(c.Channel) > maxChannelLen || strings.ContainsFunc(c.Channel, isSpaceOrControl) {
		return configErr("channel", "must be a channel ID (C0123ABCD) or #name")
	}
	return nil
}

func (c DiscordConfig) validate(opts *safehttp.Options) error {
	if err := checkWebhookURL("webhook_url", c.WebhookURL, opts); err != nil {
		return err
	}
	if len([]rune(c.Username)) > maxUsernameLen || strings.ContainsFunc(c.Username, isControl) {
		return configErr("username", "must be at most %d characters on one line", maxUsernameLen)
	}
	return nil
}

func (c PagerDutyConfig) validate() error {
	if c.RoutingKey == "" {
		return configErr("routing_key", "is required")
	}
	if len(c.RoutingKey) > maxRoutingKeyLen || strings.ContainsFunc(c.RoutingKey, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return configErr("routing_key", "must be an Events API v2 integration key (letters and digits)")
	}
	if c.SeverityOverride != "" && !ValidSeverity(c.SeverityOverride) {
		return configErr("severity_override", "must be critical, error, warning or info")
	}
	return nil
}

func (c EmailConfig) validate() error {
	if len(c.To) == 0 {
		return configErr("to", "must list at least one address")
	}
	if len(c.To) > MaxRecipients {
		return configErr("to", "must list at most %d addresses", MaxRecipients)
	}
	for i, a := range c.To {
		if err := validAddress(a); err != nil {
			return configErr(fmt.Sprintf("to[%d]", i), "must be a valid email address")
		}
	}
	if len([]rune(c.SubjectPrefix)) > maxSubjectPrefix || strings.ContainsFunc(c.SubjectPrefix, isControl) {
		return configErr("subject_prefix", "must be at most %d characters on one line", maxSubjectPrefix)
	}
	return nil
}

// validAddress accepts "user@example.com" and "Name <user@example.com>".
func validAddress(s string) error {
	if len(s) > 320 || strings.ContainsFunc(s, isControl) {
		return errors.New("invalid address")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || !strings.Contains(a.Address, "@") {
		return errors.New("invalid address")
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func isSpaceOrControl(r rune) bool { return r == ' ' || isControl(r) }

// RedactConfig is what the API may show of a config: channel, recipients,
// subject prefix, username and severity override as they are; webhook URLs
// as their scheme and host followed by "…", tokens as their type prefix
// ("xoxb-…"), routing keys as "…". A config it cannot read shows as {}.
func RedactConfig(typ string, config json.RawMessage) map[string]any {
	out := map[string]any{}
	var raw map[string]any
	if json.Unmarshal(config, &raw) != nil {
		return out
	}
	str := func(k string) string { s, _ := raw[k].(string); return s }
	redactURL := func(k string) {
		if v := str(k); v != "" {
			if h := hostOnly(v); h != "" {
				out[k] = h + "/…"
			} else {
				out[k] = "…"
			}
		}
	}
	keep := func(k string) {
		if v, ok := raw[k]; ok && v != nil && v != "" {
			out[k] = v
		}
	}
	switch typ {
	case schemas.IntegrationSlack:
		redactURL("webhook_url")
		if t := str("bot_token"); t != "" {
			out["bot_token"] = tokenHint(t)
		}
		keep("channel")
	case schemas.IntegrationTeams:
		redactURL("webhook_url")
	case schemas.IntegrationDiscord:
		redactURL("webhook_url")
		keep("username")
	case schemas.IntegrationPagerDuty:
		if str("routing_key") != "" {
			out["routing_key"] = "…"
		}
		keep("severity_override")
	case schemas.IntegrationEmail:
		keep("to")
		keep("subject_prefix")
	}
	return out
}

// tokenHint keeps a Slack token's type ("xoxb-") and hides the rest.
func tokenHint(t string) string {
	if i := strings.IndexByte(t, '-'); i > 0 && i <= 5 {
		return t[:i+1] + "…"
	}
	return "…"
}
