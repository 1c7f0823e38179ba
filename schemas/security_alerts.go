package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Security alerts (migration 00008). An alert is raised by a rule in the
// server (failed-login bursts, unusual access, MFA changes, allowlist
// violations, privilege escalation). Repeats fold into the unresolved alert
// with the same dedup key, so a burst is one alert and one security.alert
// event, however long it lasts; once that alert is resolved, the next repeat
// raises a new one.

// ErrInvalidAlert is returned by RaiseAlert for an alert with an unknown
// kind or severity or without a message.
var ErrInvalidAlert = errors.New("invalid security alert")

// ErrAlertResolved is returned by AcknowledgeAlert and ResolveAlert for an
// alert that is already resolved: a resolved alert is closed for good.
var ErrAlertResolved = errors.New("security alert already resolved")

var (
	alertKinds = []string{AlertFailedLogin, AlertUnusualAccess, AlertMFAChange, AlertIPViolation,
		AlertPrivilegeEscalation}
	// alertSeverities is ordered from least to most severe; a fold keeps the
	// more severe of the two (alertSeveritySQL).
	alertSeverities = []string{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}
	alertStatuses   = []string{AlertOpen, AlertAcknowledged, AlertResolved}
)

// ValidAlertKind, ValidAlertSeverity and ValidAlertStatus report whether a
// value is one the security_alerts table accepts (for validating filters).
func ValidAlertKind(k string) bool     { return slices.Contains(alertKinds, k) }
func ValidAlertSeverity(s string) bool { return slices.Contains(alertSeverities, s) }
func ValidAlertStatus(s string) bool   { return slices.Contains(alertStatuses, s) }

// Bounds on what an alert stores: the text comes partly from clients (a
// username tried at login, a User-Agent), so it is cut rather than trusted.
const (
	alertMaxMessage  = 1000
	alertMaxUsername = 256
	alertMaxDedupKey = 512
)

// alertSeveritySQL ranks a severity for the fold's max().
const alertSeveritySQL = `array_position(ARRAY['low', 'medium', 'high', 'critical']::text[], %s)`

const alertColumns = `id, kind, severity, status, user_id, username, ip_address, message, details, count,
	first_seen, last_seen, acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolution_note`

func scanAlert(row pgx.Row) (SecurityAlert, error) {
	var (
		a                      SecurityAlert
		userID, ackBy, resBy   *uuid.UUID
		ip                     *netip.Prefix
		details                []byte
		ackAt, resAt           *time.Time
		firstSeen, lastSeen    time.Time
		count                  int32
		kind, severity, status string
	)
	err := row.Scan(&a.ID, &kind, &severity, &status, &userID, &a.Username, &ip, &a.Message, &details, &count,
		&firstSeen, &lastSeen, &ackAt, &ackBy, &resAt, &resBy, &a.ResolutionNote)
	if errors.Is(err, pgx.ErrNoRows) {
		return SecurityAlert{}, ErrNotFound
	}
	if err != nil {
		return SecurityAlert{}, err
	}
	a.Kind, a.Severity, a.Status, a.Count = kind, severity, status, int(count)
	a.FirstSeen, a.LastSeen = firstSeen.UTC(), lastSeen.UTC()
	if userID != nil {
		a.UserID = *userID
	}
	if ip != nil {
		a.IP = ip.Addr()
	}
	if err := json.Unmarshal(details, &a.Details); err != nil {
		return SecurityAlert{}, fmt.Errorf("decode alert details: %w", err)
	}
	if ackAt != nil {
		t := ackAt.UTC()
		a.AcknowledgedAt = &t
	}
	if ackBy != nil {
		a.AcknowledgedBy = *ackBy
	}
	if resAt != nil {
		t := resAt.UTC()
		a.ResolvedAt = &t
	}
	if resBy != nil {
		a.ResolvedBy = *resBy
	}
	return a, nil
}

// defaultAlertDedupKey is the key of an alert raised without one: kind, user
// and address, so the same thing about the same user from the same address
// folds.
func defaultAlertDedupKey(in AlertInput) string {
	user, ip := "", ""
	if in.UserID != uuid.Nil {
		user = in.UserID.String()
	}
	if in.IP.IsValid() {
		ip = in.IP.Unmap().WithZone("").String()
	}
	return in.Kind + ":" + user + ":" + ip
}

// RaiseAlert stores an alert, or folds it into the unresolved alert with the
// same dedup key (count + 1, last_seen now, the higher severity of the two,
// the newer message, details merged with the newer values winning). created
// reports whether a new alert was stored; only a new alert publishes
// security.alert, in the same transaction.
func (s *Store) RaiseAlert(ctx context.Context, in AlertInput) (a SecurityAlert, created bool, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		a, created, err = raiseAlertTx(ctx, tx, in)
		return err
	})
	return a, created, err
}

// raiseAlertTx is RaiseAlert's work inside its transaction.
//
// Concurrency: one INSERT … ON CONFLICT on the partial unique index of
// unresolved dedup keys, so two replicas raising the same alert at once
// store one alert with count 2 and publish one event; (xmax = 0) tells an
// inserted row from an updated one.
func raiseAlertTx(ctx context.Context, tx pgx.Tx, in AlertInput) (SecurityAlert, bool, error) {
	if !ValidAlertKind(in.Kind) {
		return SecurityAlert{}, false, fmt.Errorf("%w: kind %q", ErrInvalidAlert, in.Kind)
	}
	if !ValidAlertSeverity(in.Severity) {
		return SecurityAlert{}, false, fmt.Errorf("%w: severity %q", ErrInvalidAlert, in.Severity)
	}
	if strings.TrimSpace(in.Message) == "" {
		return SecurityAlert{}, false, fmt.Errorf("%w: message is required", ErrInvalidAlert)
	}
	if in.DedupKey == "" {
		in.DedupKey = defaultAlertDedupKey(in)
	}
	details := in.Details
	if details == nil {
		details = map[string]any{}
	}
	detailsJSON, err := json.Marshal(details)
	if err != nil {
		return SecurityAlert{}, false, fmt.Errorf("%w: details: %v", ErrInvalidAlert, err)
	}
	var userID *uuid.UUID
	if in.UserID != uuid.Nil {
		userID = &in.UserID
	}
	var ip *netip.Addr
	if in.IP.IsValid() {
		a := in.IP.Unmap().WithZone("")
		ip = &a
	}
	q := `INSERT INTO security_alerts AS a (kind, severity, user_id, username, ip_address, message, details, dedup_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (dedup_key) WHERE status <> 'resolved' DO UPDATE SET
			count = a.count + 1,
			last_seen = now(),
			severity = CASE WHEN ` + fmt.Sprintf(alertSeveritySQL, "EXCLUDED.severity") + ` > ` +
		fmt.Sprintf(alertSeveritySQL, "a.severity") + ` THEN EXCLUDED.severity ELSE a.severity END,
			message = EXCLUDED.message,
			details = a.details || EXCLUDED.details,
			user_id = coalesce(a.user_id, EXCLUDED.user_id),
			username = CASE WHEN a.username = '' THEN EXCLUDED.username ELSE a.username END,
			ip_address = coalesce(EXCLUDED.ip_address, a.ip_address)
		RETURNING ` + alertColumns + `, (xmax = 0) AS inserted`
	var inserted bool
	a, err := scanAlert(insertedRow{row: tx.QueryRow(ctx, q, in.Kind, in.Severity, userID,
		cutAlertText(in.Username, alertMaxUsername), ip, cutAlertText(in.Message, alertMaxMessage), string(detailsJSON),
		cutAlertText(in.DedupKey, alertMaxDedupKey)), inserted: &inserted})
	if err != nil {
		return SecurityAlert{}, false, fmt.Errorf("raise %s alert: %w", in.Kind, err)
	}
	if !inserted {
		return a, false, nil
	}
	data := SecurityAlertData{AlertID: strconv.FormatInt(a.ID, 10), Kind: a.Kind, Severity: a.Severity,
		Message: a.Message}
	if a.UserID != uuid.Nil {
		data.UserID = a.UserID.String()
	}
	if a.IP.IsValid() {
		data.IPAddress = a.IP.String()
	}
	if _, err := Publish(ctx, tx, Event{Type: EventSecurityAlert, Data: data}); err != nil {
		return SecurityAlert{}, false, err
	}
	return a, true, nil
}

// insertedRow appends the RETURNING's trailing "inserted" column to the
// alert columns scanAlert reads.
type insertedRow struct {
	row      pgx.Row
	inserted *bool
}

func (r insertedRow) Scan(dest ...any) error { return r.row.Scan(append(dest, r.inserted)...) }

// cutAlertText shortens s to at most n bytes on a rune boundary.
func cutAlertText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// GetAlert reads one alert; ErrNotFound when there is none.
func (s *Store) GetAlert(ctx context.Context, id int64) (SecurityAlert, error) {
	a, err := scanAlert(s.Pool.QueryRow(ctx, `SELECT `+alertColumns+` FROM security_alerts WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return a, fmt.Errorf("get security alert %d: %w", id, err)
	}
	return a, err
}

// AcknowledgeAlert marks an open alert acknowledged by a user. Acknowledging
// it again changes nothing (the first acknowledgement is kept); ErrNotFound
// when there is no such alert, ErrAlertResolved when it is resolved.
func (s *Store) AcknowledgeAlert(ctx context.Context, id int64, by uuid.UUID) (SecurityAlert, error) {
	a, err := scanAlert(s.Pool.QueryRow(ctx, `UPDATE security_alerts SET status = 'acknowledged',
			acknowledged_at = coalesce(acknowledged_at, now()), acknowledged_by = coalesce(acknowledged_by, $2)
		WHERE id = $1 AND status <> 'resolved' RETURNING `+alertColumns, id, by))
	return s.afterAlertChange(ctx, "acknowledge", id, a, err)
}

// ResolveAlert closes an alert (open or acknowledged) with a note; the next
// alert with its dedup key is a new one. ErrNotFound when there is no such
// alert, ErrAlertResolved when it is already resolved.
func (s *Store) ResolveAlert(ctx context.Context, id int64, by uuid.UUID, note string) (SecurityAlert, error) {
	a, err := scanAlert(s.Pool.QueryRow(ctx, `UPDATE security_alerts SET status = 'resolved',
			resolved_at = now(), resolved_by = $2, resolution_note = $3
		WHERE id = $1 AND status <> 'resolved' RETURNING `+alertColumns, id, by, note))
	return s.afterAlertChange(ctx, "resolve", id, a, err)
}

// afterAlertChange tells a missing alert from a resolved one when an update
// matched no row.
func (s *Store) afterAlertChange(ctx context.Context, what string, id int64, a SecurityAlert, err error) (SecurityAlert, error) {
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return SecurityAlert{}, fmt.Errorf("%s security alert %d: %w", what, id, err)
	}
	if _, err := s.GetAlert(ctx, id); err != nil {
		return SecurityAlert{}, err
	}
	return SecurityAlert{}, ErrAlertResolved
}

// AlertFilter selects a page of alerts, newest first. Zero fields do not
// filter; the caller validates Kind, Status and Severity.
type AlertFilter struct {
	UserID   uuid.UUID // only alerts about this user
	Kind     string
	Status   string
	Severity string
	Cursor   string // the next cursor of the previous page
	Limit    int    // 1..MaxPageSize; 0 = DefaultPageSize
}

// ListAlerts answers one page of alerts, newest first by first_seen (a
// column a fold never changes, so pages stay stable while alerts fold), and
// the cursor of the next page ("" on the last); ErrInvalidCursor for a
// cursor it did not return.
func (s *Store) ListAlerts(ctx context.Context, f AlertFilter) ([]SecurityAlert, string, error) {
	limit := pageSize(f.Limit)
	q := `SELECT ` + alertColumns + ` FROM security_alerts WHERE true`
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.UserID != uuid.Nil {
		q += ` AND user_id = ` + arg(f.UserID)
	}
	if f.Kind != "" {
		q += ` AND kind = ` + arg(f.Kind)
	}
	if f.Status != "" {
		q += ` AND status = ` + arg(f.Status)
	}
	if f.Severity != "" {
		q += ` AND severity = ` + arg(f.Severity)
	}
	if f.Cursor != "" {
		c, err := decodeSeqCursor(alertCursorPrefix, f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (first_seen, id) < (` + arg(c.at) + `, ` + arg(c.id) + `)`
	}
	q += ` ORDER BY first_seen DESC, id DESC LIMIT ` + arg(limit+1)
	rows, err := s.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list security alerts: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SecurityAlert, error) { return scanAlert(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list security alerts: %w", err)
	}
	if len(list) <= limit {
		return list, "", nil
	}
	list = list[:limit]
	last := list[limit-1]
	return list, seqCursor{at: last.FirstSeen, id: last.ID}.encode(alertCursorPrefix), nil
}
