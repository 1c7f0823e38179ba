package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Discord limits: embed title 256, description 4096, 25 fields, field name
// 256 and value 1024, footer 2048, and 6000 characters in all.
const (
	discordTitleMax  = 256
	discordDescMax   = 4096
	discordFieldsMax = 25
	discordNameMax   = 256
	discordValueMax  = 1024
	discordTotalMax  = 6000
)

type discordMessage struct {
	Username        string          `json:"username"`
	Embeds          []discordEmbed  `json:"embeds"`
	AllowedMentions discordMentions `json:"allowed_mentions"`
}

// discordMentions with an empty Parse list keeps @everyone, @here and role
// or user mentions in event data from pinging anyone.
type discordMentions struct {
	Parse []string `json:"parse"`
}

type discordEmbed struct {
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	Color       int            `json:"color"`
	Fields      []discordField `json:"fields,omitempty"`
	Timestamp   string         `json:"timestamp"`
	Footer      *discordFooter `json:"footer,omitempty"`
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

type discordFooter struct {
	Text string `json:"text"`
}

func (d Deps) sendDiscord(ctx context.Context, config json.RawMessage, ev Event) (Result, error) {
	c, err := decodeConfig[DiscordConfig](config)
	if err == nil {
		err = c.validate(nil)
	}
	if err != nil {
		return Result{Permanent: true}, fmt.Errorf("discord: %w", err)
	}
	red := newRedactor(urlSecrets(c.WebhookURL)...)
	res, err := d.postJSON(ctx, "discord", c.WebhookURL, discordBody(Render(ev), orElse(c.Username, "StreamSpace")), red)
	if res.Status == http.StatusTooManyRequests && res.RetryAfter == 0 {
		// Discord's body says how long, in (fractional) seconds.
		var body struct {
			RetryAfter float64 `json:"retry_after"`
		}
		if json.Unmarshal([]byte(res.ResponseBody), &body) == nil && body.RetryAfter > 0 {
			res.RetryAfter = time.Duration(body.RetryAfter * float64(time.Second))
		}
	}
	return res, err
}

// discordBody lays a Message out as one embed.
func discordBody(m Message, username string) discordMessage {
	e := discordEmbed{
		Title:       truncate(m.Title, discordTitleMax),
		Description: truncate(m.Text, discordDescMax),
		Color:       m.Color,
		Timestamp:   m.Time.Format(time.RFC3339),
		Footer:      &discordFooter{Text: "StreamSpace · " + m.Type},
	}
	for i, f := range m.Fields {
		if i == discordFieldsMax {
			break
		}
		e.Fields = append(e.Fields, discordField{Name: truncate(f.Name, discordNameMax),
			Value: truncate(f.Value, discordValueMax), Inline: len(f.Value) <= 40})
	}
	// Discord refuses an embed over 6000 characters in all: drop fields from
	// the end, then shorten the description.
	size := func() int {
		n := len([]rune(e.Title)) + len([]rune(e.Description)) + len([]rune(e.Footer.Text))
		for _, f := range e.Fields {
			n += len([]rune(f.Name)) + len([]rune(f.Value))
		}
		return n
	}
	for size() > discordTotalMax && len(e.Fields) > 0 {
		e.Fields = e.Fields[:len(e.Fields)-1]
	}
	if over := size() - discordTotalMax; over > 0 {
		e.Description = truncate(e.Description, len([]rune(e.Description))-over)
	}
	return discordMessage{Username: username, Embeds: []discordEmbed{e}, AllowedMentions: discordMentions{Parse: []string{}}}
}
