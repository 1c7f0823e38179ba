package notify

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSendMail sends a plain-text message through go-mail to the real SMTP
// server of email_test.go, with AUTH PLAIN, and reads what it received.
func TestSendMail(t *testing.T) {
	t.Parallel()
	const password = "MaIlPaSsWoRd"
	sink := newSMTPSink(t, "mailer", password)
	s := sink.deps("mailer", password).SMTP
	text := "Your StreamSpace verification code is 482913.\nIt expires in 10 minutes. Café ünïcode line."

	err := SendMail(context.Background(), s, "Alice <alice@example.com>", "StreamSpace verification code: 482913", text)
	require.NoError(t, err)

	require.Equal(t, 1, sink.authCount())
	mails := sink.received()
	require.Len(t, mails, 1)
	require.Equal(t, "alerts@streamspace.test", mails[0].From)
	require.Equal(t, []string{"alice@example.com"}, mails[0].To)

	msg, err := mail.ReadMessage(bytes.NewReader(mails[0].Data))
	require.NoError(t, err)
	to, err := msg.Header.AddressList("To")
	require.NoError(t, err)
	require.Len(t, to, 1)
	require.Equal(t, "alice@example.com", to[0].Address)
	from, err := mail.ParseAddress(msg.Header.Get("From"))
	require.NoError(t, err)
	require.Equal(t, "alerts@streamspace.test", from.Address)
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	require.NoError(t, err)
	require.Equal(t, "StreamSpace verification code: 482913", subject)
	require.Equal(t, "auto-generated", msg.Header.Get("Auto-Submitted"))
	require.NotEmpty(t, msg.Header.Get("Message-ID"))
	require.NotEmpty(t, msg.Header.Get("Date"))

	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "text/plain", mediaType)
	require.Equal(t, "UTF-8", strings.ToUpper(params["charset"]))
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	require.NoError(t, err)
	require.Contains(t, strings.ReplaceAll(string(b), "\r\n", "\n"), text)
}

func TestSendMailFailures(t *testing.T) {
	t.Parallel()
	sink := newSMTPSink(t, "mailer", "right")
	sink.rejectTo = "nobody@example.com"

	// a wrong password: refused (535), permanent, the password not shown
	s := sink.deps("mailer", "WrOnGpAsSwOrD").SMTP
	err := SendMail(context.Background(), s, "alice@example.com", "code", "123456")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "WrOnGpAsSwOrD")
	var de *DeliveryError
	require.ErrorAs(t, err, &de)
	require.Equal(t, "smtp", de.Provider)
	require.Equal(t, 535, de.Status)
	require.False(t, IsTemporary(err))
	require.True(t, strings.HasPrefix(err.Error(), "smtp: "))

	// a recipient the server refuses: 550, permanent
	s = sink.deps("mailer", "right").SMTP
	err = SendMail(context.Background(), s, "nobody@example.com", "code", "123456")
	require.ErrorAs(t, err, &de)
	require.Equal(t, 550, de.Status)
	require.False(t, IsTemporary(err))
	require.Empty(t, sink.received())

	// not an address
	err = SendMail(context.Background(), s, "not an address", "code", "123456")
	require.ErrorContains(t, err, "recipient")
	require.False(t, IsTemporary(err))

	// SMTP not configured, or a TLS mode that does not exist
	err = SendMail(context.Background(), SMTPConfig{}, "alice@example.com", "code", "123456")
	require.ErrorContains(t, err, "SMTP is not configured")
	require.False(t, IsTemporary(err))
	bad := s
	bad.TLS = "ssl"
	require.ErrorContains(t, SendMail(context.Background(), bad, "alice@example.com", "code", "123456"), `SMTP_TLS "ssl"`)

	// nobody listening: no reply code, temporary
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := s
	closed.Port = ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	err = SendMail(context.Background(), closed, "alice@example.com", "code", "123456")
	require.ErrorAs(t, err, &de)
	require.Zero(t, de.Status)
	require.True(t, IsTemporary(err), "%v", err)

	// STARTTLS is required by default: a server without it is refused
	// before the password is sent
	starttls := s
	starttls.TLS = SMTPStartTLS
	authsBefore := sink.authCount()
	err = SendMail(context.Background(), starttls, "alice@example.com", "code", "123456")
	require.ErrorContains(t, err, "STARTTLS")
	require.Equal(t, authsBefore, sink.authCount(), "no authentication without TLS")
	require.Empty(t, sink.received())
}

func (s *smtpSink) authCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.auths)
}
