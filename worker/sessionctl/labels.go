package sessionctl

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// labelValue returns s when it is a valid label value, else a valid one
// derived from it: characters outside [A-Za-z0-9-_.] become '-', the ends
// are trimmed to alphanumerics, the rest cut to 54 characters, and "-" plus
// 8 hex digits of s's SHA-256 appended, so that two different names (say
// "alice@example.com" and "alice-example.com") never share a value.
func labelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	mapped := strings.Map(func(r rune) rune {
		switch {
		case isAlnum(r), r == '-', r == '_', r == '.':
			return r
		}
		return '-'
	}, s)
	prefix := trimToAlnum(mapped)
	if len(prefix) > 54 {
		prefix = trimToAlnum(prefix[:54])
	}
	sum := sha256.Sum256([]byte(s))
	hash := hex.EncodeToString(sum[:4])
	if prefix == "" {
		return hash
	}
	return prefix + "-" + hash
}

func trimToAlnum(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return !isAlnum(r) })
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}
