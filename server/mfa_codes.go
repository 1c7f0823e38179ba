package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/streamspace/enterprise/activities/notify"
	"github.com/streamspace/enterprise/internal/mfa"
	"github.com/streamspace/enterprise/schemas"
)

// Out-of-band codes: 6 digits by SMS or email, valid 10 minutes, 5 tries,
// single use. Sends are throttled per method (one per 30 s, five per 10
// minutes, after Twilio Verify's limits), so neither a user's phone nor the
// SMS bill can be flooded through the API.
//
// Codes are sent from the request, not from a workflow: the user is waiting
// for it, a code is worthless a few minutes later, and a failed send is
// reported at once so they can ask again; a durable retry would deliver a
// stale code.

var codeThrottle = schemas.CodeThrottle{
	MinInterval: mfa.OOBResendInterval,
	MaxSends:    mfa.OOBMaxSends,
	Window:      mfa.OOBSendWindow,
}

// sendCode issues a new code for an SMS or email method and sends it. A
// throttled send answers 429 with Retry-After.
func (s *Server) sendCode(ctx context.Context, w http.ResponseWriter, m schemas.MFAMethod, u schemas.User) (schemas.MFACode, error) {
	if err := s.codeChannelReady(m.Type, u); err != nil {
		return schemas.MFACode{}, err
	}
	code, salt, hash, err := mfa.NewOOBCode()
	if err != nil {
		return schemas.MFACode{}, err
	}
	issued, err := s.deps.Store.IssueMFACode(ctx, m.ID, salt, hash, mfa.OOBCodeTTL, codeThrottle)
	var throttled *schemas.ThrottledError
	if errors.As(err, &throttled) {
		secs := int(math.Ceil(throttled.RetryAfter.Seconds()))
		w.Header().Set(headerRetryAfter, strconv.Itoa(secs))
		return schemas.MFACode{}, &Error{Code: CodeRateLimited,
			Message: fmt.Sprintf("a code was sent recently; ask again in %d s", secs),
			Details: map[string]any{"retry_after_seconds": secs}}
	}
	if err != nil {
		return schemas.MFACode{}, err
	}
	minutes := int(mfa.OOBCodeTTL / time.Minute)
	issuer := s.mfaIssuer()
	switch m.Type {
	case schemas.MFASMS:
		body := fmt.Sprintf("%s is your %s verification code. It expires in %d minutes.", code, issuer, minutes)
		err = s.deps.SMS.SendSMS(ctx, m.Phone, body)
	case schemas.MFAEmail:
		text := fmt.Sprintf("Your %s verification code is %s\n\nIt expires in %d minutes. "+
			"If you did not ask for it, someone may know your password: change it and tell your administrator.\n",
			issuer, code, minutes)
		err = s.deps.Mail(ctx, u.Email, issuer+" verification code", text)
	}
	if err != nil {
		s.deps.Logger.WarnContext(ctx, "mfa code not sent", "method_id", m.ID, "type", m.Type,
			"request_id", requestID(ctx), "err", err)
		if !notify.IsTemporary(err) {
			// Refused for good (a number the provider rejects, bad
			// credentials): retrying will not help; say what it said.
			return schemas.MFACode{}, Errorf(CodeUnavailable, "the %s code could not be sent: %v", m.Type, err)
		}
		return schemas.MFACode{}, Errorf(CodeUnavailable, "the %s code could not be sent; try again shortly", m.Type)
	}
	return issued, nil
}

// codeChannelReady answers 503 when the server cannot send codes of that
// type, and 400 when the account has nowhere to send them.
func (s *Server) codeChannelReady(typ string, u schemas.User) error {
	switch typ {
	case schemas.MFASMS:
		if s.deps.SMS == nil {
			return Errorf(CodeUnavailable, "SMS is not configured on this server (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM)")
		}
	case schemas.MFAEmail:
		if s.deps.Mail == nil {
			return Errorf(CodeUnavailable, "email is not configured on this server (SMTP_HOST, SMTP_FROM)")
		}
		if u.Email == "" {
			return fieldError("type", "the account has no email address; add one with PATCH /api/me first")
		}
	default:
		return fieldError("method", "codes are sent only for sms and email methods")
	}
	return nil
}

func (s *Server) mfaIssuer() string {
	if s.cfg.MFAIssuer == "" {
		return "StreamSpace"
	}
	return s.cfg.MFAIssuer
}
