package notify

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/schemas"
)

// smtpSink is a real SMTP server (emersion/go-smtp) on loopback that keeps
// every message it accepts.
type smtpSink struct {
	addr     *net.TCPAddr
	username string
	password string
	rejectTo string // RCPT TO this address answers 550
	authErr  error  // non-nil: AUTH answers it, whatever the credentials

	mu    sync.Mutex
	mails []sunkMail
	auths []string // usernames that authenticated
}

type sunkMail struct {
	From string
	To   []string
	Data []byte
}

func newSMTPSink(t *testing.T, username, password string) *smtpSink {
	t.Helper()
	sink := &smtpSink{username: username, password: password}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{sink: sink}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true // AUTH PLAIN over the plain loopback connection
	srv.ErrorLog = discardLog{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sink.addr = ln.Addr().(*net.TCPAddr)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sink
}

type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Println(...any)        {}

func (s *smtpSink) received() []sunkMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sunkMail(nil), s.mails...)
}

type sinkSession struct {
	sink   *smtpSink
	authed bool
	from   string
	to     []string
}

func (s *sinkSession) AuthMechanisms() []string {
	if s.sink.username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *sinkSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if s.sink.authErr != nil {
			return s.sink.authErr
		}
		if username != s.sink.username || password != s.sink.password {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		s.sink.mu.Lock()
		s.sink.auths = append(s.sink.auths, username)
		s.sink.mu.Unlock()
		return nil
	}), nil
}

func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.sink.username != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == s.sink.rejectTo {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.sink.mu.Lock()
	s.sink.mails = append(s.sink.mails, sunkMail{From: s.from, To: s.to, Data: b})
	s.sink.mu.Unlock()
	return nil
}

func (s *sinkSession) Reset()        { s.from, s.to = "", nil }
func (s *sinkSession) Logout() error { return nil }

func (s *smtpSink) deps(username, password string) Deps {
	return Deps{SMTP: SMTPConfig{Host: "127.0.0.1", Port: s.addr.Port, Username: username, Password: password,
		From: "StreamSpace <alerts@streamspace.test>", TLS: SMTPNoTLS}}
}

// TestEmailThroughSMTP sends through go-mail to a real SMTP server started
// here, authenticating with AUTH PLAIN, and reads the message it received:
// envelope, From/To/Subject, and the text and HTML alternatives.
func TestEmailThroughSMTP(t *testing.T) {
	t.Parallel()
	const password = "SmTpPaSsWoRd"
	sink := newSMTPSink(t, "mailer", password)
	d := sink.deps("mailer", password)
	cfg := mustJSON(t, EmailConfig{To: []string{"ops@example.com", "Oncall <oncall@example.com>"}, SubjectPrefix: "[prod]"})
	ev := testEvent(t, "node.unhealthy", samples[schemas.EventNodeUnhealthy])

	res, err := Senders(d)["email"].Send(context.Background(), cfg, ev)
	require.NoError(t, err)
	require.Equal(t, 250, res.Status)
	require.Equal(t, "smtp://127.0.0.1:"+strconv.Itoa(sink.addr.Port), res.RequestURL)
	require.Equal(t, "[prod] Node unhealthy: worker-1", res.RequestHeaders["Subject"])
	requireNoSecret(t, res, err, password)

	require.Equal(t, []string{"mailer"}, sink.auths)
	mails := sink.received()
	require.Len(t, mails, 1)
	require.Equal(t, "alerts@streamspace.test", mails[0].From)
	require.Equal(t, []string{"ops@example.com", "oncall@example.com"}, mails[0].To)

	msg, err := mail.ReadMessage(bytes.NewReader(mails[0].Data))
	require.NoError(t, err)
	from, err := mail.ParseAddress(msg.Header.Get("From"))
	require.NoError(t, err)
	require.Equal(t, "alerts@streamspace.test", from.Address)
	to, err := msg.Header.AddressList("To")
	require.NoError(t, err)
	require.Len(t, to, 2)
	require.Equal(t, "oncall@example.com", to[1].Address)
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	require.NoError(t, err)
	require.Equal(t, "[prod] Node unhealthy: worker-1", subject)
	require.Equal(t, "<0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee@streamspace>", msg.Header.Get("Message-ID"))
	require.Equal(t, "node.unhealthy", msg.Header.Get("X-StreamSpace-Event"))

	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/alternative", mediaType)
	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		body, err := io.ReadAll(p) // multipart decodes quoted-printable
		require.NoError(t, err)
		parts[ct] = strings.ReplaceAll(string(body), "\r\n", "\n")
	}
	require.Contains(t, parts, "text/plain")
	require.Contains(t, parts, "text/html")
	require.Contains(t, parts["text/plain"], "Node unhealthy: worker-1\n\nThe node worker-1 is unhealthy: NotReady.")
	require.Contains(t, parts["text/plain"], "Conditions: Ready=False")
	require.Contains(t, parts["text/html"], "<h2 style=\"margin:0 0 8px 0;font-size:18px\">Node unhealthy: worker-1</h2>")
	require.Contains(t, parts["text/html"], "<th style=\"text-align:left;padding:2px 12px 2px 0;vertical-align:top\">Node</th>")
}

// TestEmailEscapesHTML: event data is text in the HTML part, not markup.
func TestEmailEscapesHTML(t *testing.T) {
	t.Parallel()
	_, html := emailBodies(Render(testEvent(t, "security.alert", schemas.SecurityAlertData{AlertID: "a", Kind: "x",
		Severity: "low", Message: `<script>alert(1)</script>`})), Event{})
	require.NotContains(t, html, "<script>")
	require.Contains(t, html, "&lt;script&gt;")
}

func TestEmailWithoutAuthAndRejections(t *testing.T) {
	t.Parallel()
	sink := newSMTPSink(t, "", "")
	sink.rejectTo = "nobody@example.com"
	d := sink.deps("", "")
	send := Senders(d)["email"]

	res, err := send.Send(context.Background(), mustJSON(t, EmailConfig{To: []string{"ops@example.com"}}), Event{Type: EventTest, DeliveryID: "d-1"})
	require.NoError(t, err)
	require.Equal(t, 250, res.Status)
	require.Len(t, sink.received(), 1)
	msg, err := mail.ReadMessage(bytes.NewReader(sink.received()[0].Data))
	require.NoError(t, err)
	require.Equal(t, "[StreamSpace] Test notification from StreamSpace", msg.Header.Get("Subject"))

	// a recipient the server refuses for good: 550, permanent
	res, err = send.Send(context.Background(), mustJSON(t, EmailConfig{To: []string{"nobody@example.com"}}), Event{Type: EventTest})
	require.Error(t, err)
	require.Equal(t, 550, res.Status)
	require.True(t, res.Permanent)

	// no SMTP configured: permanent
	res, err = Senders(Deps{})["email"].Send(context.Background(), mustJSON(t, EmailConfig{To: []string{"ops@example.com"}}), Event{Type: EventTest})
	require.ErrorContains(t, err, "SMTP is not configured")
	require.True(t, res.Permanent)

	// a wrong password: refused, and the password is not in the error
	authSink := newSMTPSink(t, "mailer", "right")
	res, err = Senders(authSink.deps("mailer", "WrOnGpAsS"))["email"].Send(context.Background(),
		mustJSON(t, EmailConfig{To: []string{"ops@example.com"}}), Event{Type: EventTest})
	require.Error(t, err)
	requireNoSecret(t, res, err, "WrOnGpAsS")
	require.Empty(t, authSink.received())
}

// TestEmailAuthFailedIsPermanent: a server refusing the credentials (535 at
// AUTH) refuses every retry alike, so the delivery fails for good at once
// instead of being retried for hours; a 454 (temporary authentication
// failure) is still retried.
func TestEmailAuthFailedIsPermanent(t *testing.T) {
	t.Parallel()
	sink := newSMTPSink(t, "mailer", "right")
	send := Senders(sink.deps("mailer", "WrOnGpAsS"))["email"]
	res, err := send.Send(context.Background(), mustJSON(t, EmailConfig{To: []string{"ops@example.com"}}), Event{Type: EventTest, DeliveryID: "d-535"})
	require.Error(t, err)
	require.Equal(t, 535, res.Status)
	require.True(t, res.Permanent, "535 must not be retried: %v", err)
	requireNoSecret(t, res, err, "WrOnGpAsS")
	require.Empty(t, sink.received())

	tempSink := newSMTPSink(t, "mailer", "right")
	tempSink.authErr = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}
	res, err = Senders(tempSink.deps("mailer", "right"))["email"].Send(context.Background(),
		mustJSON(t, EmailConfig{To: []string{"ops@example.com"}}), Event{Type: EventTest})
	require.Error(t, err)
	require.Equal(t, 454, res.Status)
	require.False(t, res.Permanent)
}
