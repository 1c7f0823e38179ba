package schemas

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The IP allowlist store (table ip_allowlist, migration 00008). The rules
// that decide who may connect from where are in internal/ipset (its package
// documentation); this file only reads and writes rows. Every
// write fires the table's trigger, which notifies IPAllowlistChannel so that
// every replica reloads its in-memory copy.

// IPAllowlistChannel is the PostgreSQL notification channel the
// ip_allowlist trigger notifies on every change.
const IPAllowlistChannel = "streamspace_ip_allowlist"

const ipEntryColumns = `id, user_id, cidr, description, enabled, granted, restricted, expires_at, expired_at,
	created_by, created_at, updated_at`

func scanIPEntry(row pgx.Row) (IPEntry, error) {
	var (
		e         IPEntry
		userID    *uuid.UUID
		createdBy *uuid.UUID
	)
	err := row.Scan(&e.ID, &userID, &e.Prefix, &e.Description, &e.Enabled, &e.Granted, &e.Restricted, &e.ExpiresAt,
		&e.ExpiredAt, &createdBy, &e.CreatedAt, &e.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return IPEntry{}, ErrNotFound
	}
	if err != nil {
		return IPEntry{}, err
	}
	if userID != nil {
		e.UserID = *userID
	}
	if createdBy != nil {
		e.CreatedBy = *createdBy
	}
	return e, nil
}

// ipEntryUUID is id, or NULL for uuid.Nil.
func ipEntryUUID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// ipEntryWriteError maps the constraint errors of an insert or update: the
// (user, cidr) pair taken is ErrConflict, a user that does not exist is
// ErrNotFound.
func ipEntryWriteError(err error, what string) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return fmt.Errorf("%s: %w: the list already has an entry for this address range", what, ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("%s: %w: no such user", what, ErrNotFound)
	case errors.Is(err, pgx.ErrNoRows):
		return ErrNotFound
	}
	return fmt.Errorf("%s: %w", what, err)
}

// checkIPEntryPrefix refuses what the cidr column would reject or store
// under another key: an invalid prefix or one with host bits set (the
// handlers validate first and explain; this is the store's own guard).
func checkIPEntryPrefix(p netip.Prefix) error {
	if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" {
		return fmt.Errorf("ip allowlist entry: %q is not a network prefix", p)
	}
	return nil
}

// InsertIPEntry creates e inside tx, so the caller can start its expiry
// workflow and check the result before committing. It fills ID and the
// timestamps. ErrConflict when the user (or the global list) already has an
// entry for the same prefix; ErrNotFound when the user does not exist.
func InsertIPEntry(ctx context.Context, tx pgx.Tx, e *IPEntry) error {
	if err := checkIPEntryPrefix(e.Prefix); err != nil {
		return err
	}
	err := tx.QueryRow(ctx, `INSERT INTO ip_allowlist (user_id, cidr, description, enabled, granted, restricted,
			expires_at, expired_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		RETURNING id, created_at, updated_at`,
		ipEntryUUID(e.UserID), e.Prefix, e.Description, e.Enabled, e.Granted, e.Restricted, e.ExpiresAt, e.ExpiredAt,
		ipEntryUUID(e.CreatedBy),
	).Scan(&e.ID, &e.CreatedAt, &e.UpdatedAt)
	if err != nil {
		return ipEntryWriteError(err, "insert ip allowlist entry")
	}
	return nil
}

// GetIPEntry reads one entry; ErrNotFound when there is none.
func (s *Store) GetIPEntry(ctx context.Context, id int64) (IPEntry, error) {
	e, err := scanIPEntry(s.Pool.QueryRow(ctx, `SELECT `+ipEntryColumns+` FROM ip_allowlist WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return e, fmt.Errorf("get ip allowlist entry %d: %w", id, err)
	}
	return e, err
}

// LockIPEntry reads one entry inside tx and locks its row until tx ends, for
// a read-modify-write (UpdateIPEntry) or a delete.
func LockIPEntry(ctx context.Context, tx pgx.Tx, id int64) (IPEntry, error) {
	e, err := scanIPEntry(tx.QueryRow(ctx, `SELECT `+ipEntryColumns+` FROM ip_allowlist WHERE id = $1 FOR UPDATE`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return e, fmt.Errorf("lock ip allowlist entry %d: %w", id, err)
	}
	return e, err
}

// UpdateIPEntry writes the changeable fields of e (Prefix, Description,
// Enabled, ExpiresAt, ExpiredAt; not the owner, the kind or the creation
// facts) and sets UpdatedAt. ErrConflict when the new prefix is taken.
func UpdateIPEntry(ctx context.Context, tx pgx.Tx, e *IPEntry) error {
	if err := checkIPEntryPrefix(e.Prefix); err != nil {
		return err
	}
	err := tx.QueryRow(ctx, `UPDATE ip_allowlist SET cidr = $2, description = $3, enabled = $4, expires_at = $5,
			expired_at = $6, updated_at = now()
		WHERE id = $1 RETURNING updated_at`,
		e.ID, e.Prefix, e.Description, e.Enabled, e.ExpiresAt, e.ExpiredAt,
	).Scan(&e.UpdatedAt)
	if err != nil {
		return ipEntryWriteError(err, fmt.Sprintf("update ip allowlist entry %d", e.ID))
	}
	return nil
}

// DeleteIPEntry deletes one entry inside tx; ErrNotFound when there is none.
func DeleteIPEntry(ctx context.Context, tx pgx.Tx, id int64) error {
	tag, err := tx.Exec(ctx, `DELETE FROM ip_allowlist WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete ip allowlist entry %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// CountUserIPEntries counts the entries a user made for themselves (grants,
// restrictions and global entries excluded), for the per-user cap.
func CountUserIPEntries(ctx context.Context, tx pgx.Tx, userID uuid.UUID) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM ip_allowlist WHERE user_id = $1 AND NOT granted AND NOT restricted`, userID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count ip allowlist entries of %s: %w", userID, err)
	}
	return n, nil
}

// IP allowlist scopes, as the API names them.
const (
	IPScopeGlobal = "global"
	IPScopeUser   = "user"
)

// IPEntryFilter selects a page of entries, newest first.
type IPEntryFilter struct {
	// Scope: IPScopeGlobal (user_id NULL), IPScopeUser (any user's) or ""
	// (all).
	Scope string
	// UserID, when set, keeps only that user's entries (grants included).
	UserID uuid.UUID
	Cursor string // the next cursor of the previous page
	Limit  int    // 1..MaxPageSize; 0 = DefaultPageSize
}

const ipEntryCursorPrefix = "ip1."

// ListIPEntries answers one page of entries, newest (highest id) first, and
// the cursor of the next page ("" on the last); ErrInvalidCursor for a
// cursor it did not return.
func (s *Store) ListIPEntries(ctx context.Context, f IPEntryFilter) ([]IPEntry, string, error) {
	limit := pageSize(f.Limit)
	q := `SELECT ` + ipEntryColumns + ` FROM ip_allowlist WHERE true`
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	switch f.Scope {
	case "":
	case IPScopeGlobal:
		q += ` AND user_id IS NULL`
	case IPScopeUser:
		q += ` AND user_id IS NOT NULL`
	default:
		return nil, "", fmt.Errorf("list ip allowlist: unknown scope %q", f.Scope)
	}
	if f.UserID != uuid.Nil {
		q += ` AND user_id = ` + arg(f.UserID)
	}
	if f.Cursor != "" {
		after, err := decodeIPEntryCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q += ` AND id < ` + arg(after)
	}
	q += ` ORDER BY id DESC LIMIT ` + arg(limit+1)
	rows, err := s.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list ip allowlist: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (IPEntry, error) { return scanIPEntry(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list ip allowlist: %w", err)
	}
	next := ""
	if len(list) > limit {
		list = list[:limit]
		next = base64.RawURLEncoding.EncodeToString(
			[]byte(ipEntryCursorPrefix + strconv.FormatInt(list[limit-1].ID, 10)))
	}
	return list, next, nil
}

func decodeIPEntryCursor(s string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(raw), ipEntryCursorPrefix) {
		return 0, ErrInvalidCursor
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(string(raw), ipEntryCursorPrefix), 10, 64)
	if err != nil || id < 1 {
		return 0, ErrInvalidCursor
	}
	return id, nil
}

// ListActiveIPEntries reads every entry that counts at the database's now:
// enabled and not past its expiry. This is what each replica compiles into
// its in-memory policy.
func (s *Store) ListActiveIPEntries(ctx context.Context) ([]IPEntry, error) {
	return listActiveIPEntries(ctx, s.Pool)
}

// ListActiveIPEntriesTx is ListActiveIPEntries inside tx: it sees the
// transaction's own uncommitted changes, so a caller can judge the list as
// it would be after a change before committing it (the self-lockout guard).
func ListActiveIPEntriesTx(ctx context.Context, tx pgx.Tx) ([]IPEntry, error) {
	return listActiveIPEntries(ctx, tx)
}

func listActiveIPEntries(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]IPEntry, error) {
	rows, err := q.Query(ctx, `SELECT `+ipEntryColumns+` FROM ip_allowlist
		WHERE enabled AND (expires_at IS NULL OR expires_at > now()) ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list active ip allowlist entries: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (IPEntry, error) { return scanIPEntry(r) })
	if err != nil {
		return nil, fmt.Errorf("list active ip allowlist entries: %w", err)
	}
	return list, nil
}
