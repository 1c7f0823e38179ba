package schemas

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// sessionCursor continues a session listing after (CreatedAt, ID).
type sessionCursor struct {
	CreatedAt time.Time
	ID        string
}

const sessionCursorPrefix = "s1."

func (c sessionCursor) encode() string {
	raw := fmt.Sprintf("%s%d.%s", sessionCursorPrefix, c.CreatedAt.UnixMicro(), c.ID)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeSessionCursor(s string) (sessionCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(raw), sessionCursorPrefix) {
		return sessionCursor{}, ErrInvalidCursor
	}
	micros, id, ok := strings.Cut(strings.TrimPrefix(string(raw), sessionCursorPrefix), ".")
	us, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || id == "" {
		return sessionCursor{}, ErrInvalidCursor
	}
	return sessionCursor{CreatedAt: time.UnixMicro(us).UTC(), ID: id}, nil
}
