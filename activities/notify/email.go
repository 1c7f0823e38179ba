package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"

	"github.com/wneessen/go-mail"
)

// sendEmail mails the event to the config's recipients through d.SMTP, as
// text and HTML alternatives. The Message-ID derives from the delivery id,
// so a retried delivery carries the same one.
func (d Deps) sendEmail(ctx context.Context, config json.RawMessage, ev Event) (Result, error) {
	c, err := decodeConfig[EmailConfig](config)
	if err == nil {
		err = c.validate()
	}
	if err != nil {
		return Result{Permanent: true}, fmt.Errorf("email: %w", err)
	}
	s := d.SMTP
	red := newRedactor(s.Password, redacted)
	client, addr, err := smtpClient(s)
	if err != nil {
		return Result{Permanent: true}, scrubbed(red, "email: ", err)
	}
	m := Render(ev)
	subject := oneLine(orElse(c.SubjectPrefix, defaultSubjectPref) + " " + m.Title)
	text, html := emailBodies(m, ev)

	res := Result{
		RequestURL:     addr,
		RequestHeaders: map[string]string{"From": s.From, "To": strings.Join(c.To, ", "), "Subject": subject},
		RequestBody:    excerpt([]byte(text)),
	}
	msg := mail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return Result{Permanent: true}, fmt.Errorf("email: SMTP_FROM: %w", err)
	}
	if err := msg.To(c.To...); err != nil {
		return Result{Permanent: true}, fmt.Errorf("email: %w", &ConfigError{Field: "config.to", Issue: "must be valid email addresses"})
	}
	msg.Subject(subject)
	msg.SetDate()
	if ev.DeliveryID != "" {
		msg.SetMessageIDWithValue(ev.DeliveryID + "@streamspace")
		res.RequestHeaders["Message-ID"] = "<" + ev.DeliveryID + "@streamspace>"
	} else {
		msg.SetMessageID()
	}
	msg.SetBulk()
	msg.SetGenHeader("X-StreamSpace-Event", ev.Type)
	msg.SetBodyString(mail.TypeTextPlain, text)
	msg.AddAlternativeString(mail.TypeTextHTML, html)

	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		// Only a 5xx reply is permanent (550 no such user, 535 credentials
		// refused at AUTH, which go-mail reports outside a SendError); 4xx
		// and a connection lost mid-transaction (no SMTP code) are retried.
		res.Status = smtpReplyCode(err)
		res.Permanent = res.Status >= 500 && res.Status < 600
		return res, scrubbed(red, "email: ", err)
	}
	res.Status = 250
	return res, nil
}

var emailHTML = template.Must(template.New("email").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.M.Title}}</title></head>
<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1d1c1d">
<div style="border-left:4px solid {{.Color}};padding:4px 12px;margin:8px 0">
<h2 style="margin:0 0 8px 0;font-size:18px">{{.M.Title}}</h2>
{{if .M.Text}}<p style="margin:0 0 12px 0">{{.M.Text}}</p>{{end}}
{{if .M.Fields}}<table style="border-collapse:collapse">
{{range .M.Fields}}<tr><th style="text-align:left;padding:2px 12px 2px 0;vertical-align:top">{{.Name}}</th><td style="padding:2px 0">{{.Value}}</td></tr>
{{end}}</table>{{end}}
</div>
<p style="color:#616061;font-size:12px">{{.Footer}}{{if .EventID}} · event {{.EventID}}{{end}}</p>
</body></html>
`))

// emailBodies renders the text and the HTML part.
func emailBodies(m Message, ev Event) (string, string) {
	var t strings.Builder
	t.WriteString(m.Title + "\n\n")
	if m.Text != "" {
		t.WriteString(m.Text + "\n\n")
	}
	for _, f := range m.Fields {
		t.WriteString(f.Name + ": " + f.Value + "\n")
	}
	if len(m.Fields) > 0 {
		t.WriteString("\n")
	}
	t.WriteString("-- \n" + footer(m))
	if ev.ID != "" {
		t.WriteString(" · event " + ev.ID)
	}
	t.WriteString("\n")

	var h bytes.Buffer
	_ = emailHTML.Execute(&h, map[string]any{"M": m, "Color": template.CSS(fmt.Sprintf("#%06x", m.Color)),
		"Footer": footer(m), "EventID": ev.ID})
	return t.String(), h.String()
}
