package notify

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/schemas"
)

// maxResponseBytes bounds how much of a provider's answer is read at all;
// the Result keeps schemas.ResponseExcerptBytes of it.
const maxResponseBytes = 1 << 20

// redacted stands in for a secret in everything a Result or an error shows.
const redacted = "[redacted]"

// redactor replaces the secrets of one integration (tokens, routing keys,
// webhook URLs and their paths) in text that leaves a Sender.
type redactor struct{ r *strings.Replacer }

// newRedactor takes (secret, replacement) pairs; longer secrets are
// replaced first so a URL is not half-replaced by its own path.
func newRedactor(pairs ...string) redactor {
	type pair struct{ old, new string }
	var ps []pair
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] != "" {
			ps = append(ps, pair{pairs[i], pairs[i+1]})
		}
	}
	sort.SliceStable(ps, func(i, j int) bool { return len(ps[i].old) > len(ps[j].old) })
	args := make([]string, 0, 2*len(ps))
	for _, p := range ps {
		args = append(args, p.old, p.new)
	}
	return redactor{strings.NewReplacer(args...)}
}

func (r redactor) apply(s string) string {
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// urlSecrets are the redactor pairs of a URL that carries a token in its
// path or query (every incoming-webhook URL): the URL, its path and its
// query all become "…".
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw, redacted}
	}
	out := []string{raw, hostOnly(raw) + "/…"}
	if u.Path != "" && u.Path != "/" {
		out = append(out, u.Path, "/…")
		if u.RawPath != "" {
			out = append(out, u.RawPath, "/…")
		}
	}
	if u.RawQuery != "" {
		out = append(out, u.RawQuery, "…")
	}
	return out
}

// hostOnly is a URL's scheme and host: what a delivery log may show of a URL
// that holds a token.
func hostOnly(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// recorder is an http.RoundTripper that writes the request and the answer
// into a Result (secrets replaced, the answer cut to an excerpt) while
// passing both through unchanged.
type recorder struct {
	base   http.RoundTripper
	res    *Result
	red    redactor
	before func(*http.Request) // adjusts the request before it is recorded and sent
}

func (rec *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		setBody(req, body)
	}
	if rec.before != nil {
		rec.before(req)
	}
	res := rec.res
	res.RequestURL = req.URL.Scheme + "://" + req.URL.Host
	res.RequestHeaders = map[string]string{}
	for k, v := range req.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Authorization", "Cookie", "Proxy-Authorization":
			res.RequestHeaders[k] = redacted
		default:
			res.RequestHeaders[k] = rec.red.apply(strings.Join(v, ", "))
		}
	}
	if req.GetBody != nil {
		if b, err := req.GetBody(); err == nil {
			data, _ := io.ReadAll(b)
			res.RequestBody = rec.red.apply(string(data))
		}
	}

	resp, err := rec.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	res.Status = resp.StatusCode
	res.ResponseHeaders = map[string]string{}
	for k, v := range resp.Header {
		if http.CanonicalHeaderKey(k) == "Set-Cookie" {
			continue
		}
		res.ResponseHeaders[k] = rec.red.apply(strings.Join(v, ", "))
	}
	res.ResponseBody = rec.red.apply(excerpt(body))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	if readErr != nil {
		return nil, readErr
	}
	return resp, nil
}

func setBody(req *http.Request, body []byte) {
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// excerpt is the start of a body as a delivery attempt keeps it.
func excerpt(b []byte) string {
	if len(b) > schemas.ResponseExcerptBytes {
		b = b[:schemas.ResponseExcerptBytes]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// parseRetryAfter reads a Retry-After value: seconds (Discord sends
// fractions) or an HTTP date. 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

var defaultHTTP = sync.OnceValue(func() *http.Client { return safehttp.NewClient(safehttp.Options{}) })

// httpClient is d.HTTP (or, when unset, a safehttp client with default
// options) with a recorder in front of its transport.
func (d Deps) httpClient(res *Result, red redactor, before func(*http.Request)) *http.Client {
	base := d.HTTP
	if base == nil {
		base = defaultHTTP()
	}
	rt := base.Transport
	if rt == nil {
		rt = defaultHTTP().Transport
	}
	return &http.Client{
		Transport:     &recorder{base: rt, res: res, red: red, before: before},
		CheckRedirect: base.CheckRedirect,
		Jar:           base.Jar,
		Timeout:       base.Timeout,
	}
}

// permanentStatus reports whether retrying cannot help after an answer
// with this status: every 4xx but 408 and 429. (2xx is success; 3xx, 408,
// 429 and 5xx are retried.)
func permanentStatus(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// sendError is what a Sender returns: a message with every secret of the
// integration replaced. It does not unwrap (the library errors it replaces
// may quote a webhook URL), but errors.Is still answers for the sentinels
// callers test.
type sendError struct {
	msg   string
	cause error
}

func (e *sendError) Error() string { return e.msg }

func (e *sendError) Is(target error) bool {
	switch target {
	case context.Canceled, context.DeadlineExceeded, safehttp.ErrBlockedAddress, safehttp.ErrInvalidURL, ErrInvalidConfig:
		return errors.Is(e.cause, target)
	}
	return false
}

// ErrInvalidConfig is wrapped by errors about an integration's config (the
// Result is then Permanent).
var ErrInvalidConfig = errors.New("invalid integration config")

func scrubbed(red redactor, prefix string, err error) error {
	if err == nil {
		return nil
	}
	return &sendError{msg: red.apply(prefix + err.Error()), cause: err}
}

// statusError is the error of an attempt that got an answer that is not a
// success.
func statusError(red redactor, provider string, res *Result, detail string) error {
	msg := provider + " answered " + strconv.Itoa(res.Status)
	if t := http.StatusText(res.Status); t != "" {
		msg += " " + t
	}
	if detail = strings.TrimSpace(detail); detail != "" {
		msg += ": " + truncate(oneLine(detail), 300)
	}
	return &sendError{msg: red.apply(msg), cause: errors.New(msg)}
}
