package notify

import (
	"context"
	"encoding/json"

	"github.com/streamspace/enterprise/schemas"
)

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, config json.RawMessage, ev Event) (Result, error)

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, config json.RawMessage, ev Event) (Result, error) {
	return f(ctx, config, ev)
}

// Senders are the senders of every integration type, keyed by
// schemas.Integration*. Each makes exactly one request per call (the
// delivery engine retries), returns a Result whenever it got an answer, and
// keeps tokens, routing keys and webhook URLs out of the Result (RequestURL
// is the scheme and host) and out of its errors.
func Senders(d Deps) map[string]Sender {
	return map[string]Sender{
		schemas.IntegrationSlack:     SenderFunc(d.sendSlack),
		schemas.IntegrationTeams:     SenderFunc(d.sendTeams),
		schemas.IntegrationDiscord:   SenderFunc(d.sendDiscord),
		schemas.IntegrationPagerDuty: SenderFunc(d.sendPagerDuty),
		schemas.IntegrationEmail:     SenderFunc(d.sendEmail),
	}
}
