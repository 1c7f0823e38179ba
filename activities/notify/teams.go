package notify

import (
	"context"
	"encoding/json"
	"fmt"
)

// Microsoft Teams: Office 365 connectors are retired; a Teams Workflows
// webhook ("When a Teams webhook request is received") takes a message whose
// attachment is an Adaptive Card, and answers 202.

// teamsMessage is the body a Workflows webhook takes.
type teamsMessage struct {
	Type        string            `json:"type"` // "message"
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"` // application/vnd.microsoft.card.adaptive
	ContentURL  *string      `json:"contentUrl"`  // always null
	Content     adaptiveCard `json:"content"`
}

// adaptiveCard is an Adaptive Card 1.4 (what Teams renders).
type adaptiveCard struct {
	Schema  string         `json:"$schema"`
	Type    string         `json:"type"` // "AdaptiveCard"
	Version string         `json:"version"`
	Body    []any          `json:"body"`
	MSTeams map[string]any `json:"msteams,omitempty"`
}

type cardTextBlock struct {
	Type     string `json:"type"` // "TextBlock"
	Text     string `json:"text"`
	Wrap     bool   `json:"wrap"`
	Weight   string `json:"weight,omitempty"`
	Size     string `json:"size,omitempty"`
	Color    string `json:"color,omitempty"`
	Style    string `json:"style,omitempty"`
	IsSubtle bool   `json:"isSubtle,omitempty"`
	Spacing  string `json:"spacing,omitempty"`
}

type cardFactSet struct {
	Type  string     `json:"type"` // "FactSet"
	Facts []cardFact `json:"facts"`
}

type cardFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

const adaptiveCardContentType = "application/vnd.microsoft.card.adaptive"

func (d Deps) sendTeams(ctx context.Context, config json.RawMessage, ev Event) (Result, error) {
	c, err := decodeConfig[TeamsConfig](config)
	if err == nil {
		err = checkWebhookURL("webhook_url", c.WebhookURL, nil)
	}
	if err != nil {
		return Result{Permanent: true}, fmt.Errorf("teams: %w", err)
	}
	red := newRedactor(urlSecrets(c.WebhookURL)...)
	return d.postJSON(ctx, "teams", c.WebhookURL, teamsCard(Render(ev)), red)
}

// teamsCard lays a Message out as an Adaptive Card: the title in the
// severity's colour, the text, the fields as a FactSet, and a footer.
func teamsCard(m Message) teamsMessage {
	body := []any{cardTextBlock{Type: "TextBlock", Text: m.Title, Wrap: true, Weight: "Bolder", Size: "Medium",
		Style: "heading", Color: teamsColor(m)}}
	if m.Text != "" {
		body = append(body, cardTextBlock{Type: "TextBlock", Text: m.Text, Wrap: true})
	}
	if len(m.Fields) > 0 {
		facts := make([]cardFact, len(m.Fields))
		for i, f := range m.Fields {
			facts[i] = cardFact{Title: f.Name, Value: truncate(f.Value, 1024)}
		}
		body = append(body, cardFactSet{Type: "FactSet", Facts: facts})
	}
	body = append(body, cardTextBlock{Type: "TextBlock", Text: footer(m), Wrap: true, Size: "Small", IsSubtle: true,
		Spacing: "Medium"})
	return teamsMessage{Type: "message", Attachments: []teamsAttachment{{
		ContentType: adaptiveCardContentType,
		Content: adaptiveCard{Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard",
			Version: "1.4", Body: body, MSTeams: map[string]any{"width": "Full"}},
	}}}
}

// teamsColor is the Adaptive Card colour of a message's title.
func teamsColor(m Message) string {
	switch {
	case m.Color == colorGood:
		return "Good"
	case m.Severity == SeverityCritical, m.Severity == SeverityError:
		return "Attention"
	case m.Severity == SeverityWarning:
		return "Warning"
	}
	return "Accent"
}
