package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/streamspace/enterprise/activities/notify"
	"github.com/streamspace/enterprise/server"
)

// SMSConfig is the Twilio account SMS MFA codes are sent through
// (TWILIO_*). Without an account SID the SMS method answers 503.
type SMSConfig struct {
	AccountSID          string
	AuthToken           string
	From                string // a Twilio number in E.164, or
	MessagingServiceSID string // a messaging service (instead of From)
	APIURL              string // "" = https://api.twilio.com (tests point it at a local server)
}

// Enabled reports whether SMS codes can be sent.
func (c SMSConfig) Enabled() bool { return c.AccountSID != "" }

func readSMS(e *envReader) SMSConfig {
	c := SMSConfig{
		AccountSID:          e.str("TWILIO_ACCOUNT_SID", ""),
		AuthToken:           e.secret("TWILIO_AUTH_TOKEN", 0),
		From:                e.str("TWILIO_FROM", ""),
		MessagingServiceSID: e.str("TWILIO_MESSAGING_SERVICE_SID", ""),
		APIURL:              e.str("TWILIO_API_URL", ""),
	}
	if c.AccountSID != "" {
		if c.AuthToken == "" {
			e.errs = append(e.errs, errors.New("TWILIO_AUTH_TOKEN is required with TWILIO_ACCOUNT_SID"))
		}
		if (c.From == "") == (c.MessagingServiceSID == "") {
			e.errs = append(e.errs, errors.New("set exactly one of TWILIO_FROM (an E.164 number) and TWILIO_MESSAGING_SERVICE_SID"))
		}
	}
	return c
}

// mfaSenders are what MFA codes are sent through: Twilio when TWILIO_* is
// set, SMTP when SMTP_HOST is; nil when not, and those methods answer 503.
func mfaSenders(c Common) (notify.SMSSender, server.MailFunc) {
	var sms notify.SMSSender
	if c.SMS.Enabled() {
		sms = &notify.Twilio{AccountSID: c.SMS.AccountSID, AuthToken: c.SMS.AuthToken, From: c.SMS.From,
			MessagingServiceSID: c.SMS.MessagingServiceSID, BaseURL: c.SMS.APIURL,
			HTTP: &http.Client{Timeout: 15 * time.Second}}
	}
	var mail server.MailFunc
	if c.SMTP.Host != "" {
		smtp := c.SMTP
		mail = func(ctx context.Context, to, subject, text string) error {
			return notify.SendMail(ctx, smtp, to, subject, text)
		}
	}
	return sms, mail
}
