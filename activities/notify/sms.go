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
	"time"
)

// SMSSender sends one text message. SMS is the weakest second factor (NIST
// SP 800-63B rates the phone network RESTRICTED: SIM swaps, number porting,
// interception), offered only to users without an authenticator app.
type SMSSender interface {
	SendSMS(ctx context.Context, to, body string) error
}

// TwilioAPI is the Twilio REST API's base URL.
const TwilioAPI = "https://api.twilio.com"

// Twilio sends SMS through Twilio's Programmable Messaging REST API (POST
// /2010-04-01/Accounts/{AccountSID}/Messages.json).
type Twilio struct {
	AccountSID string
	AuthToken  string
	// From is the sending number (E.164); MessagingServiceSID (MG…) is used
	// instead when set, letting Twilio pick the sender from its pool.
	From                string
	MessagingServiceSID string
	BaseURL             string       // "" = TwilioAPI; a local fake in tests
	HTTP                *http.Client // nil = a client with a 15 s timeout
}

var _ SMSSender = (*Twilio)(nil)

// twilioTimeout bounds one API call when Twilio.HTTP is nil.
const twilioTimeout = 15 * time.Second

var defaultTwilioHTTP = &http.Client{Timeout: twilioTimeout}

// ValidPhoneNumber reports whether s is an E.164 number: "+", then 8 to 15
// digits, the first not 0 (no country code starts with 0).
func ValidPhoneNumber(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// twilioError is the JSON body of a Twilio API error.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// SendSMS sends body to the E.164 number to. A failure is a *DeliveryError
// with Twilio's error code and message (never the auth token); it is
// Temporary for 429 (rate limited), 5xx and network failures, when trying
// again later may work.
func (tw *Twilio) SendSMS(ctx context.Context, to, body string) error {
	red := newRedactor(tw.AuthToken, redacted)
	fail := func(status int, temp bool, err error) error {
		return &DeliveryError{Provider: "twilio", Status: status, Message: red.apply(err.Error()), Temp: temp, cause: err}
	}
	switch {
	case tw.AccountSID == "" || tw.AuthToken == "":
		return fail(0, false, errors.New("Twilio is not configured (account SID and auth token are required)"))
	case tw.From == "" && tw.MessagingServiceSID == "":
		return fail(0, false, errors.New("Twilio is not configured (a From number or a messaging service SID is required)"))
	case !ValidPhoneNumber(to):
		return fail(0, false, errors.New("the phone number is not in E.164 form (+ and 8 to 15 digits)"))
	case body == "":
		return fail(0, false, errors.New("empty message"))
	}

	form := url.Values{"To": {to}, "Body": {body}}
	if tw.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", tw.MessagingServiceSID)
	} else {
		form.Set("From", tw.From)
	}
	base := strings.TrimRight(tw.BaseURL, "/")
	if base == "" {
		base = TwilioAPI
	}
	endpoint := base + "/2010-04-01/Accounts/" + url.PathEscape(tw.AccountSID) + "/Messages.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fail(0, false, err)
	}
	req.SetBasicAuth(tw.AccountSID, tw.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "StreamSpace")

	client := tw.HTTP
	if client == nil {
		client = defaultTwilioHTTP
	}
	resp, err := client.Do(req)
	if err != nil {
		return fail(0, true, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fail(resp.StatusCode, true, fmt.Errorf("reading the answer: %w", err))
	}
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		var msg struct {
			SID    string `json:"sid"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(raw, &msg); err != nil || msg.SID == "" {
			return fail(resp.StatusCode, false, fmt.Errorf("answered %d without a message sid", resp.StatusCode))
		}
		if msg.Status == "failed" || msg.Status == "undelivered" {
			return fail(resp.StatusCode, false, fmt.Errorf("message %s is %s", msg.SID, msg.Status))
		}
		return nil
	}

	temp := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	var te twilioError
	if json.Unmarshal(raw, &te) != nil || (te.Code == 0 && te.Message == "") {
		detail := truncate(oneLine(string(raw)), 200)
		return fail(resp.StatusCode, temp, fmt.Errorf("answered %d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), detail))
	}
	return &DeliveryError{Provider: "twilio", Status: resp.StatusCode, Code: te.Code, Message: red.apply(te.Message),
		MoreInfo: te.MoreInfo, Temp: temp}
}

// DeliveryError is why SendSMS or SendMail could not hand a message over.
// Nothing in it holds a credential.
type DeliveryError struct {
	Provider string // "twilio" or "smtp"
	Status   int    // HTTP status or SMTP reply code; 0 when nothing answered
	Code     int    // the provider's error code (Twilio's 21211, 20429 …); 0 if none
	Message  string // the provider's explanation or the transport error
	MoreInfo string // Twilio's page about Code
	// Temp: trying again later may work (rate limited, the provider or
	// the network failing), as opposed to a refusal or a misconfiguration.
	Temp  bool
	cause error
}

func (e *DeliveryError) Error() string {
	if e.Code == 0 {
		return e.Provider + ": " + e.Message
	}
	return fmt.Sprintf("%s: answered %d %s: error %d: %s", e.Provider, e.Status, http.StatusText(e.Status), e.Code, e.Message)
}

// Temporary reports whether trying again later may work.
func (e *DeliveryError) Temporary() bool { return e.Temp }

// Is answers for the context errors only: the cause is not exposed, as
// library errors may quote what the message was redacted of.
func (e *DeliveryError) Is(target error) bool {
	switch target {
	case context.Canceled, context.DeadlineExceeded:
		return errors.Is(e.cause, target)
	}
	return false
}

// IsTemporary reports whether err says trying again later may work.
func IsTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}
