package schemas

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// newestFirst runs q (a SELECT with its WHERE, no ORDER BY or LIMIT; args
// its parameters) for one page of at most limit rows ordered by
// (created_at, id) descending, and returns the page and the cursor of the
// next one ("" when this is the last). what names the listing in errors.
func newestFirst[T any](ctx context.Context, pool *pgxpool.Pool, what, q string, args []any, limit int,
	scan func(pgx.Row) (T, error), key func(T) timeIDCursor, prefix string) ([]T, string, error) {
	q += ` ORDER BY created_at DESC, id DESC LIMIT $` + strconv.Itoa(len(args)+1)
	rows, err := pool.Query(ctx, q, append(args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	next := ""
	if len(list) > limit {
		list = list[:limit]
		next = key(list[limit-1]).encode(prefix)
	}
	return list, next, nil
}

// timeIDCursor continues a listing ordered by (created_at, id) descending
// after the row it names. The prefix keeps one listing's cursors out of
// another's.
type timeIDCursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

const (
	webhookCursorPrefix  = "w1."
	deliveryCursorPrefix = "d1."
)

func (c timeIDCursor) encode(prefix string) string {
	raw := fmt.Sprintf("%s%d.%s", prefix, c.CreatedAt.UnixMicro(), c.ID)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeTimeIDCursor(prefix, s string) (timeIDCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(raw), prefix) {
		return timeIDCursor{}, ErrInvalidCursor
	}
	micros, idText, ok := strings.Cut(strings.TrimPrefix(string(raw), prefix), ".")
	us, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil {
		return timeIDCursor{}, ErrInvalidCursor
	}
	id, err := uuid.Parse(idText)
	if err != nil {
		return timeIDCursor{}, ErrInvalidCursor
	}
	return timeIDCursor{CreatedAt: time.UnixMicro(us).UTC(), ID: id}, nil
}
