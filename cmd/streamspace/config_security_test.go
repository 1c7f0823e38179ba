package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSMSConfig(t *testing.T) {
	t.Parallel()
	base := func(extra map[string]string) map[string]string {
		env := map[string]string{"DATABASE_URL": goodDB, "JWT_SECRET": goodJWT}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	cfg, err := readServerConfig(lookupFrom(base(nil)))
	require.NoError(t, err)
	sms, mail := mfaSenders(cfg.Common)
	require.Nil(t, sms, "no TWILIO_ACCOUNT_SID: SMS off")
	require.Nil(t, mail, "no SMTP_HOST: email codes off")

	_, err = readServerConfig(lookupFrom(base(map[string]string{"TWILIO_ACCOUNT_SID": "AC123"})))
	require.ErrorContains(t, err, "TWILIO_AUTH_TOKEN is required")
	require.ErrorContains(t, err, "TWILIO_FROM")
	_, err = readServerConfig(lookupFrom(base(map[string]string{"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "tok",
		"TWILIO_FROM": "+15550001111", "TWILIO_MESSAGING_SERVICE_SID": "MG1"})))
	require.ErrorContains(t, err, "exactly one of")
	require.NotContains(t, err.Error(), "tok")

	// A complete setting sends through the configured Twilio API.
	var got string
	twilio := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got = r.URL.Path + " " + r.PostForm.Get("To") + " " + r.PostForm.Get("Body")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"sid":"SM1","status":"queued"}`))
	}))
	defer twilio.Close()
	cfg, err = readServerConfig(lookupFrom(base(map[string]string{"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "tok",
		"TWILIO_FROM": "+15550001111", "TWILIO_API_URL": twilio.URL, "SMTP_HOST": "mail.example.com"})))
	require.NoError(t, err)
	sms, mail = mfaSenders(cfg.Common)
	require.NotNil(t, mail)
	require.NoError(t, sms.SendSMS(context.Background(), "+15552223333", "123456 is your code"))
	require.Equal(t, "/2010-04-01/Accounts/AC123/Messages.json +15552223333 123456 is your code", got)
}
