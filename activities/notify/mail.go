package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"
)

// SMTP TLS modes (SMTP_TLS).
const (
	SMTPStartTLS = "starttls" // STARTTLS required (default; port 587)
	SMTPTLS      = "tls"      // implicit TLS (port 465)
	SMTPNoTLS    = "none"     // plain SMTP (port 25); credentials only to localhost
)

const smtpTimeout = 15 * time.Second // like an HTTP attempt

// ValidSMTPTLS reports whether s is an SMTP_TLS mode ("" = starttls).
func ValidSMTPTLS(s string) bool {
	switch s {
	case "", SMTPStartTLS, SMTPTLS, SMTPNoTLS:
		return true
	}
	return false
}

// errSMTPNotConfigured: mail cannot be sent without a server and a sender.
var errSMTPNotConfigured = errors.New("SMTP is not configured (SMTP_HOST and SMTP_FROM are required)")

// smtpClient builds the go-mail client for s, with the rules every mail
// StreamSpace sends follows (event emails and MFA codes alike): TLS as
// SMTP_TLS says, with the port defaulting to that mode's (587, 465, 25);
// STARTTLS is mandatory, not opportunistic, so a stripped STARTTLS fails
// instead of sending in clear; a password goes out over plain SMTP only by
// a challenge mechanism, or by PLAIN/LOGIN to localhost. It also returns
// the server as scheme://host:port, for delivery logs. Errors are
// configuration errors: retrying cannot help. Pass them through a redactor
// of s.Password before showing them.
func smtpClient(s SMTPConfig) (*mail.Client, string, error) {
	if s.Host == "" || s.From == "" {
		return nil, "", errSMTPNotConfigured
	}
	if !ValidSMTPTLS(s.TLS) {
		return nil, "", fmt.Errorf("SMTP_TLS %q is not starttls, tls or none", s.TLS)
	}
	port := s.Port
	scheme := "smtp"
	opts := []mail.Option{mail.WithTimeout(smtpTimeout)}
	switch s.TLS {
	case SMTPTLS:
		scheme = "smtps"
		opts = append(opts, mail.WithSSL())
		if port == 0 {
			port = 465
		}
	case SMTPNoTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
		if port == 0 {
			port = 25
		}
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
		if port == 0 {
			port = 587
		}
	}
	opts = append(opts, mail.WithPort(port))
	if s.Username != "" {
		opts = append(opts, mail.WithUsername(s.Username), mail.WithPassword(s.Password))
		if s.TLS == SMTPNoTLS {
			// Without TLS the password may only go where it cannot be read:
			// PLAIN and LOGIN are refused except to localhost.
			opts = append(opts, mail.WithOpportunisticSMTPAuth(mail.SMTPAuthSCRAMSHA256, mail.SMTPAuthSCRAMSHA1,
				mail.SMTPAuthCramMD5, mail.SMTPAuthPlain, mail.SMTPAuthLogin))
		} else {
			opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover))
		}
	}
	addr := scheme + "://" + net.JoinHostPort(s.Host, strconv.Itoa(port))
	client, err := mail.NewClient(s.Host, opts...)
	if err != nil {
		return nil, addr, err
	}
	return client, addr, nil
}

// smtpReplyCode is the SMTP reply code in err (550 …), 0 when the server
// did not answer one (connection refused, timeout, TLS failure).
func smtpReplyCode(err error) int {
	var se *mail.SendError
	if errors.As(err, &se) {
		if c := se.ErrorCode(); c != 0 {
			return c
		}
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// SendMail sends one plain-text message to a single address through the
// SMTP server of s (MFA codes, account notices), with the same TLS and
// authentication rules as the event emails. A failure is a *DeliveryError
// without the SMTP password in it; it is Temporary unless the server
// refused for good (a 5xx reply) or SMTP is misconfigured.
func SendMail(ctx context.Context, s SMTPConfig, to, subject, text string) error {
	red := newRedactor(s.Password, redacted)
	fail := func(status int, temp bool, err error) error {
		return &DeliveryError{Provider: "smtp", Status: status, Message: red.apply(err.Error()), Temp: temp, cause: err}
	}
	client, _, err := smtpClient(s)
	if err != nil {
		return fail(0, false, err)
	}
	msg := mail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return fail(0, false, fmt.Errorf("SMTP_FROM: %w", err))
	}
	if err := msg.To(to); err != nil {
		return fail(0, false, fmt.Errorf("recipient: %w", err))
	}
	msg.Subject(oneLine(subject))
	msg.SetDate()
	msg.SetMessageID()
	// RFC 3834: machine-sent, so auto-responders do not answer it
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(mail.TypeTextPlain, text)
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		code := smtpReplyCode(err)
		return fail(code, code < 500 || code >= 600, err)
	}
	return nil
}
