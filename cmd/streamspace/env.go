package main

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/internal/mfa"
)

// envReader reads typed settings from the environment, collecting one error
// per bad variable, each naming the variable, so a start-up lists them all.
type envReader struct {
	lookup func(string) (string, bool)
	errs   []error
}

func newEnvReader(lookup func(string) (string, bool)) *envReader {
	return &envReader{lookup: lookup}
}

func (e *envReader) bad(name, value, why string) {
	e.errs = append(e.errs, fmt.Errorf("invalid %s %q: %s", name, value, why))
}

// err is every problem found, or nil.
func (e *envReader) err() error { return errors.Join(e.errs...) }

func (e *envReader) raw(name string) (string, bool) {
	v, ok := e.lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

func (e *envReader) str(name, def string) string {
	if v, ok := e.raw(name); ok {
		return v
	}
	return def
}

// secret is like str but never echoes the value in an error.
func (e *envReader) secret(name string, minLen int) string {
	v, ok := e.raw(name)
	if ok && len(v) < minLen {
		e.errs = append(e.errs, fmt.Errorf("invalid %s: must be at least %d characters", name, minLen))
	}
	return v
}

func (e *envReader) integer(name string, def, lo, hi int) int {
	v, ok := e.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		e.bad(name, v, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
		return def
	}
	return n
}

func (e *envReader) duration(name string, def time.Duration) time.Duration {
	v, ok := e.raw(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.bad(name, v, "must be a positive duration such as 500ms, 30s or 5m")
		return def
	}
	return d
}

func (e *envReader) boolean(name string, def bool) bool {
	v, ok := e.raw(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.bad(name, v, "must be true or false")
		return def
	}
	return b
}

func (e *envReader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(e.str(name, def))
	if !slices.Contains(allowed, v) {
		e.bad(name, v, "must be one of "+strings.Join(allowed, ", "))
		return def
	}
	return v
}

// hostPort reads an address of the form host:port.
func (e *envReader) hostPort(name, def string) string {
	v := e.str(name, def)
	if v == "" {
		return v
	}
	_, port, err := net.SplitHostPort(v)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		e.bad(name, v, "must be host:port, e.g. 127.0.0.1:8080")
	}
	return v
}

// postgresURL reads a PostgreSQL connection URL or DSN; errors never echo it,
// since it may hold a password.
func (e *envReader) postgresURL(name string) string {
	v, ok := e.raw(name)
	if !ok {
		return ""
	}
	if _, err := pgx.ParseConfig(v); err != nil {
		e.errs = append(e.errs, fmt.Errorf("invalid %s: not a PostgreSQL connection URL "+
			"(postgres://user:password@host:5432/db?sslmode=disable)", name))
	}
	return v
}

// key reads a 32-byte key given as 64 hex digits or standard base64.
func (e *envReader) key(name string) []byte {
	v, ok := e.raw(name)
	if !ok {
		return nil
	}
	if b, ok := parseKey(v); ok {
		return b
	}
	e.errs = append(e.errs, fmt.Errorf("invalid %s: must be 32 bytes as 64 hex digits or base64 "+
		"(generate one with: openssl rand -base64 32)", name))
	return nil
}

// list reads a comma-separated list, dropping empty items.
func (e *envReader) list(name string) []string {
	var out []string
	for _, item := range strings.Split(e.str(name, ""), ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// paths checks that v, the value of name, is a list of existing files
// separated by the OS list separator, the way KUBECONFIG is written.
func (e *envReader) paths(name, v string) string {
	if v == "" {
		return ""
	}
	for _, p := range filepath.SplitList(v) {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			e.bad(name, v, fmt.Sprintf("%s is not a readable file", p))
		}
	}
	return v
}

// email reads an RFC 5322 address.
func (e *envReader) mfaIssuer(name, def string) string {
	v := e.str(name, def)
	if err := mfa.ValidIssuer(v); err != nil {
		e.bad(name, v, err.Error())
	}
	return v
}

func (e *envReader) email(name, def string) string {
	v := e.str(name, def)
	if v == "" {
		return v
	}
	if _, err := mail.ParseAddress(v); err != nil {
		e.bad(name, v, "must be an email address such as StreamSpace <noreply@example.com>")
	}
	return v
}
