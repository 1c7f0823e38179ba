package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	testTwilioSID   = "AC0123456789abcdef0123456789abcdef"
	testTwilioToken = "tWiLiOaUtHtOkEn0123456789abcdef"
)

// fakeTwilio speaks the part of Twilio's REST API SendSMS uses: it checks
// the path, HTTP basic auth and form fields as Twilio does, answers 201
// with the created message, and Twilio's error JSON otherwise.
type fakeTwilio struct {
	*httptest.Server
	mu     sync.Mutex
	got    []url.Values // forms of the accepted messages
	calls  int
	status int // when not 0, every request answers this status (429, 503)
}

// twilioInvalidTo is Twilio's magic test number for an invalid "To".
const twilioInvalidTo = "+15005550001"

func newFakeTwilio(t *testing.T) *fakeTwilio {
	f := &fakeTwilio{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func twilioErr(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status})
}

func (f *fakeTwilio) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls++
	status := f.status
	f.mu.Unlock()
	switch status {
	case http.StatusTooManyRequests:
		twilioErr(w, status, 20429, "Too Many Requests")
		return
	case 0:
	default:
		http.Error(w, "upstream unavailable", status) // not JSON, as a proxy in front would answer
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+testTwilioSID+"/Messages.json" {
		twilioErr(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != testTwilioSID || pass != testTwilioToken {
		twilioErr(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		twilioErr(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	}
	if err := r.ParseForm(); err != nil {
		twilioErr(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	}
	f2 := r.PostForm
	switch {
	case f2.Get("To") == "":
		twilioErr(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
		return
	case f2.Get("To") == twilioInvalidTo:
		twilioErr(w, http.StatusBadRequest, 21211, "Invalid 'To' Phone Number: "+f2.Get("To"))
		return
	case f2.Get("From") == "" && f2.Get("MessagingServiceSid") == "":
		twilioErr(w, http.StatusBadRequest, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message")
		return
	case f2.Get("Body") == "":
		twilioErr(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	}
	f.mu.Lock()
	f.got = append(f.got, f2)
	n := len(f.got)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"sid": fmt.Sprintf("SM%032x", n), "account_sid": testTwilioSID, "to": f2.Get("To"), "from": f2.Get("From"),
		"messaging_service_sid": f2.Get("MessagingServiceSid"), "body": f2.Get("Body"), "status": "queued",
		"num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
	})
}

func (f *fakeTwilio) forms() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.got...)
}

func (f *fakeTwilio) twilio() *Twilio {
	return &Twilio{AccountSID: testTwilioSID, AuthToken: testTwilioToken, From: "+15005550006", BaseURL: f.URL, HTTP: f.Client()}
}

func requireDeliveryError(t *testing.T, err error) *DeliveryError {
	t.Helper()
	require.Error(t, err)
	require.NotContains(t, err.Error(), testTwilioToken)
	var de *DeliveryError
	require.True(t, errors.As(err, &de), "%T is not a *DeliveryError", err)
	require.NotContains(t, fmt.Sprintf("%+v", *de), testTwilioToken)
	return de
}

func TestTwilioSendSMS(t *testing.T) {
	t.Parallel()
	f := newFakeTwilio(t)
	tw := f.twilio()

	require.NoError(t, tw.SendSMS(context.Background(), "+14155550123", "Your StreamSpace code is 123456"))
	forms := f.forms()
	require.Len(t, forms, 1)
	require.Equal(t, url.Values{"To": {"+14155550123"}, "From": {"+15005550006"}, "Body": {"Your StreamSpace code is 123456"}}, forms[0])

	// with a messaging service, From is not sent
	tw.MessagingServiceSID = "MG0123456789abcdef0123456789abcdef"
	tw.BaseURL = f.URL + "/" // a trailing slash is fine
	require.NoError(t, tw.SendSMS(context.Background(), "+447700900123", "code 654321"))
	forms = f.forms()
	require.Len(t, forms, 2)
	require.Equal(t, url.Values{"To": {"+447700900123"}, "MessagingServiceSid": {tw.MessagingServiceSID},
		"Body": {"code 654321"}}, forms[1])
}

func TestTwilioErrors(t *testing.T) {
	t.Parallel()
	f := newFakeTwilio(t)

	// Twilio refuses the number: its code and message come back, permanent
	err := f.twilio().SendSMS(context.Background(), twilioInvalidTo, "code 123456")
	de := requireDeliveryError(t, err)
	require.Equal(t, "twilio", de.Provider)
	require.Equal(t, 400, de.Status)
	require.Equal(t, 21211, de.Code)
	require.Equal(t, "Invalid 'To' Phone Number: "+twilioInvalidTo, de.Message)
	require.Equal(t, "https://www.twilio.com/docs/errors/21211", de.MoreInfo)
	require.False(t, de.Temporary())
	require.False(t, IsTemporary(err))
	require.Equal(t, "twilio: answered 400 Bad Request: error 21211: Invalid 'To' Phone Number: "+twilioInvalidTo, err.Error())

	// a wrong auth token: 401 Authenticate, the token not in the error
	bad := f.twilio()
	bad.AuthToken = "WrOnGtOkEn"
	err = bad.SendSMS(context.Background(), "+14155550123", "code")
	require.NotContains(t, err.Error(), "WrOnGtOkEn")
	de = requireDeliveryError(t, err)
	require.Equal(t, 401, de.Status)
	require.Equal(t, 20003, de.Code)
	require.False(t, de.Temporary())

	// an unknown account SID: the path is wrong, 404
	other := f.twilio()
	other.AccountSID = "AC00000000000000000000000000000000"
	de = requireDeliveryError(t, other.SendSMS(context.Background(), "+14155550123", "code"))
	require.Equal(t, 404, de.Status)
	require.Equal(t, 20404, de.Code)
	require.Empty(t, f.forms(), "nothing was sent")

	// rate limited: 429, temporary
	f.mu.Lock()
	f.status = http.StatusTooManyRequests
	f.mu.Unlock()
	err = f.twilio().SendSMS(context.Background(), "+14155550123", "code")
	de = requireDeliveryError(t, err)
	require.Equal(t, 429, de.Status)
	require.Equal(t, 20429, de.Code)
	require.True(t, de.Temporary())
	require.True(t, IsTemporary(err))

	// a 503 that is not Twilio JSON: temporary, the body quoted
	f.mu.Lock()
	f.status = http.StatusServiceUnavailable
	f.mu.Unlock()
	err = f.twilio().SendSMS(context.Background(), "+14155550123", "code")
	de = requireDeliveryError(t, err)
	require.Equal(t, 503, de.Status)
	require.Zero(t, de.Code)
	require.True(t, IsTemporary(err))
	require.Equal(t, "twilio: answered 503 Service Unavailable: upstream unavailable", err.Error())
}

func TestTwilioRefusesBeforeSending(t *testing.T) {
	t.Parallel()
	f := newFakeTwilio(t)
	for name, c := range map[string]struct {
		tw   func() *Twilio
		to   string
		body string
		want string
	}{
		"not E.164":    {f.twilio, "4155550123", "code", "E.164"},
		"letters":      {f.twilio, "+1415555O123", "code", "E.164"},
		"empty body":   {f.twilio, "+14155550123", "", "empty message"},
		"no token":     {func() *Twilio { tw := f.twilio(); tw.AuthToken = ""; return tw }, "+14155550123", "code", "not configured"},
		"no sender":    {func() *Twilio { tw := f.twilio(); tw.From = ""; return tw }, "+14155550123", "code", "From number or a messaging service"},
		"no account":   {func() *Twilio { tw := f.twilio(); tw.AccountSID = ""; return tw }, "+14155550123", "code", "not configured"},
		"leading zero": {f.twilio, "+04155550123", "code", "E.164"},
	} {
		err := c.tw().SendSMS(context.Background(), c.to, c.body)
		require.ErrorContains(t, err, c.want, name)
		require.False(t, IsTemporary(err), name)
	}
	f.mu.Lock()
	require.Zero(t, f.calls, "no request reached Twilio")
	f.mu.Unlock()
}

func TestTwilioTransportErrors(t *testing.T) {
	t.Parallel()
	f := newFakeTwilio(t)
	tw := f.twilio()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := tw.SendSMS(ctx, "+14155550123", "code")
	requireDeliveryError(t, err)
	require.ErrorIs(t, err, context.Canceled)

	f.Close() // nobody listens any more
	err = tw.SendSMS(context.Background(), "+14155550123", "code")
	de := requireDeliveryError(t, err)
	require.Zero(t, de.Status)
	require.True(t, IsTemporary(err), "a network failure may pass: %v", err)
	require.True(t, strings.HasPrefix(err.Error(), "twilio: "))
}

func TestValidPhoneNumber(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"+14155550123", "+447700900123", "+4912345678", "+123456789012345", "+33612345678"} {
		require.True(t, ValidPhoneNumber(ok), ok)
	}
	for _, bad := range []string{"", "+", "14155550123", "+1234567", "+1234567890123456",
		"+1 415 555 0123", "+1-415-555-0123", "+0123456789", "++14155550123", "+1415555012a", "+１4155550123"} {
		require.False(t, ValidPhoneNumber(bad), bad)
	}
}
