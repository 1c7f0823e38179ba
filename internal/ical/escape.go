package ical

import (
	"fmt"
	"strings"
)

// escapeText renders s as an RFC 5545 §3.3.11 TEXT value: backslash,
// semicolon and comma are escaped with a backslash, a line break (CRLF, LF
// or a lone CR) becomes \n, other control characters (which TEXT may not
// hold) are dropped except HTAB, and invalid UTF-8 is replaced by U+FFFD.
func escapeText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == ';' || c == ',':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\r':
			b.WriteString(`\n`)
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteByte(c)
		case c < 0x20 || c == 0x7F:
			// dropped: not allowed in TEXT
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// paramValue renders a parameter value (RFC 5545 §3.2): quoted when it holds
// ':', ';' or ','. A value that cannot be written at all (a double quote or
// a control character) is an error.
func paramValue(v string) (string, error) {
	for _, r := range v {
		if r == '"' || (r < 0x20 && r != '\t') || r == 0x7F {
			return "", fmt.Errorf("parameter value %q holds a double quote or control character", v)
		}
	}
	if strings.ContainsAny(v, ":;,") {
		return `"` + v + `"`, nil
	}
	return v, nil
}

// checkRawValue rejects a value written verbatim (RRULE) that would break
// the content line: a line break or another control character.
func checkRawValue(v string) error {
	for _, r := range v {
		if r < 0x20 || r == 0x7F {
			return fmt.Errorf("value %q holds a control character", v)
		}
	}
	return nil
}
