package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/schemas"
)

// The IP allowlist API (the seed's "ip-whitelist"). Entries are global
// (admins only) or a user's; an entry an admin makes for another user is a
// grant (kind "grant", granted: true), which admits that user even from
// outside the global list, or with kind "restrict" a restriction, which
// confines that user to their restrictions; a user's own entries (kind
// "own") can only narrow their access. How a request is judged:
// allowlist_guard.go and internal/ipset.
//
//	POST   /api/security/ip-whitelist       {ip_address, description?, enabled?, expires_at?, user_id?, scope?, kind?, force?}
//	GET    /api/security/ip-whitelist       users: their own entries (grants included);
//	                                        admins: all, ?scope=global|user ?user_id= ?cursor= ?limit=
//	GET    /api/security/ip-whitelist/{id}  another user's entry (or a global one, for a user): 404
//	PATCH  /api/security/ip-whitelist/{id}  {ip_address?, description?, enabled?, expires_at? (null: never), force?}
//	DELETE /api/security/ip-whitelist/{id}  ?force=true
//
// Users change only their own entries; grants, restrictions and global
// entries are the admins'. A change that would refuse the caller's
// own current request answers 409 LOCKOUT_RISK unless forced. An entry with
// expires_at has an expiry workflow (ipgrant/<id>, workflows/ipgrant.go) that
// disables it at expiry; without Temporal, entries with an expiry cannot be
// made (503) while the others can.

// ipAllowlistRoutes mounts the allowlist routes on the signed-in user router;
// each handler decides what the caller may see and change.
func (s *Server) ipAllowlistRoutes(user chi.Router) {
	h := func(fn handlerFunc) http.HandlerFunc { return handle(s.deps.Logger, fn) }
	user.Post("/api/security/ip-whitelist", h(s.createIPEntry))
	user.Get("/api/security/ip-whitelist", h(s.listIPEntries))
	user.Get("/api/security/ip-whitelist/{id}", h(s.getIPEntry))
	user.Patch("/api/security/ip-whitelist/{id}", h(s.patchIPEntry))
	user.Delete("/api/security/ip-whitelist/{id}", h(s.deleteIPEntry))
}

// maxOwnIPEntries caps the entries a user makes for themselves: each one is
// held in every replica's memory. Admins (global entries, grants) are not
// capped.
const maxOwnIPEntries = 100

// ipGrantTimeout bounds the call that schedules an entry's expiry run.
const ipGrantTimeout = 10 * time.Second

func errNoIPEntry() *Error { return Errorf(CodeNotFound, "no such allowlist entry") }

func errIPEntryTaken() *Error {
	return &Error{Code: CodeConflict, Message: "the list already has an entry for this address range",
		Details: map[string]any{"field": "ip_address"}}
}

func errNoTemporalForExpiry() *Error {
	return Errorf(CodeUnavailable, "temporary entries (expires_at) need Temporal, which expires them, and this "+
		"server has no workflow client configured; leave expires_at out for a permanent entry")
}

func ipEntryStoreError(err error) error {
	switch {
	case errors.Is(err, schemas.ErrNotFound):
		return errNoIPEntry()
	case errors.Is(err, schemas.ErrConflict):
		return errIPEntryTaken()
	}
	return err
}

func ipEntryIDParam(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id < 1 {
		return 0, errNoIPEntry()
	}
	return id, nil
}

// The kinds of entry, as the API names them (ipEntryJSON.Kind).
const (
	ipKindOwn      = "own"
	ipKindGrant    = "grant"
	ipKindRestrict = "restrict"
)

// ipEntryKind names e's kind.
func ipEntryKind(e schemas.IPEntry) string {
	switch {
	case e.Global():
		return schemas.IPScopeGlobal
	case e.Granted:
		return ipKindGrant
	case e.Restricted:
		return ipKindRestrict
	}
	return ipKindOwn
}

// ipEntryScope names an entry's scope for audit details.
func ipEntryScope(e schemas.IPEntry) string {
	if e.Global() {
		return schemas.IPScopeGlobal
	}
	return schemas.IPScopeUser
}

// Audit actions of the allowlist API. Each handler names its action first,
// so refused attempts (a LOCKOUT_RISK, a 404) are recorded under it too.
const (
	auditIPCreate = "security.ip_whitelist.create"
	auditIPUpdate = "security.ip_whitelist.update"
	auditIPDelete = "security.ip_whitelist.delete"
)

// auditIPEntry records what the audit row needs to know about the entry.
func auditIPEntry(ctx context.Context, e schemas.IPEntry) {
	auditSetTarget(ctx, strconv.FormatInt(e.ID, 10))
	auditSetDetail(ctx, "cidr", e.Prefix.String())
	auditSetDetail(ctx, "scope", ipEntryScope(e))
	if !e.Global() {
		auditSetDetail(ctx, "user_id", e.UserID.String())
		auditSetDetail(ctx, "granted", e.Granted)
		auditSetDetail(ctx, "kind", ipEntryKind(e))
	}
	if e.ExpiresAt != nil {
		auditSetDetail(ctx, "expires_at", e.ExpiresAt.UTC().Format(time.RFC3339))
	}
}

// setIPExpiry tells the entry's expiry run its new expiry (starting the run
// when there is none), within ipGrantTimeout. Called inside the writing
// transaction, before commit, so that an entry with an expiry exists only
// with its run: a failure rolls the change back and answers 503.
func (s *Server) setIPExpiry(ctx context.Context, id int64, expiresAt time.Time) error {
	if s.deps.Workflows == nil {
		return errNoTemporalForExpiry()
	}
	cctx, cancel := context.WithTimeout(ctx, ipGrantTimeout)
	defer cancel()
	if err := s.deps.Workflows.SetIPGrantExpiry(cctx, id, &expiresAt); err != nil {
		s.deps.Logger.WarnContext(ctx, "ip allowlist: schedule expiry", "entry_id", id, "err", err)
		return Errorf(CodeUnavailable, "the expiry of the entry could not be scheduled (Temporal did not answer); "+
			"nothing was changed; try again")
	}
	return nil
}

// endIPExpiry ends the entry's expiry run after the entry stopped expiring
// (or was deleted), once that is committed. Best effort: a run left behind
// finds the row without an expiry (or gone) at its deadline and ends
// without changing anything.
func (s *Server) endIPExpiry(ctx context.Context, id int64) {
	if s.deps.Workflows == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ipGrantTimeout)
	defer cancel()
	if err := s.deps.Workflows.SetIPGrantExpiry(cctx, id, nil); err != nil {
		s.deps.Logger.WarnContext(ctx, "ip allowlist: end expiry run; it will end by itself at its deadline",
			"entry_id", id, "err", err)
	}
}

func (s *Server) createIPEntry(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	auditSetAction(ctx, auditIPCreate)
	p, _ := principalFrom(ctx)
	var req createIPEntryRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	now := s.allowlistNow()
	prefix, err := parseIPAddress("ip_address", req.IPAddress)
	if err != nil {
		return err
	}
	if err := validateIPDescription(req.Description); err != nil {
		return err
	}
	e := schemas.IPEntry{Prefix: prefix, Description: req.Description, Enabled: req.Enabled == nil || *req.Enabled,
		CreatedBy: p.UserID}
	switch req.Kind {
	case "", ipKindGrant, ipKindRestrict:
	default:
		return fieldError("kind", `must be "grant" or "restrict" (for another user's entry), or left out`)
	}
	switch req.Scope {
	case schemas.IPScopeGlobal:
		if !p.IsAdmin() {
			return Errorf(CodeForbidden, "only admins manage the global allowlist")
		}
		if req.UserID != nil {
			return fieldError("user_id", `must be left out for a global entry ("scope": "global")`)
		}
		if req.Kind != "" {
			return fieldError("kind", "applies to another user's entry; leave it out for a global entry")
		}
	case "", schemas.IPScopeUser:
		e.UserID = p.UserID
		if req.UserID != nil {
			id, err := uuid.Parse(*req.UserID)
			if err != nil {
				return fieldError("user_id", "must be a user ID (a UUID)")
			}
			if id != p.UserID {
				if !p.IsAdmin() {
					return Errorf(CodeForbidden, "you may add entries only to your own allowlist")
				}
				// An admin's entry for another user is a grant, or a
				// restriction when asked. (An unknown user fails the
				// insert's foreign key: 400 below.)
				e.UserID = id
				e.Granted, e.Restricted = req.Kind != ipKindRestrict, req.Kind == ipKindRestrict
			}
		}
		if e.UserID == p.UserID && req.Kind != "" {
			if !p.IsAdmin() {
				return Errorf(CodeForbidden, "only admins make grants and restrictions; your own entries need no kind")
			}
			return fieldError("kind", "grants and restrictions are for another user (user_id); "+
				"to narrow your own access, add an entry of your own without kind")
		}
	default:
		return fieldError("scope", `must be "global" or "user"`)
	}
	if req.ExpiresAt != nil {
		t, err := parseExpiresAt(*req.ExpiresAt, now)
		if err != nil {
			return err
		}
		if s.deps.Workflows == nil {
			return errNoTemporalForExpiry()
		}
		e.ExpiresAt = &t
	}
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		if ipEntryKind(e) == ipKindOwn && !p.IsAdmin() {
			n, err := schemas.CountUserIPEntries(ctx, tx, e.UserID)
			if err != nil {
				return err
			}
			if n >= maxOwnIPEntries {
				return &Error{Code: CodeQuotaExceeded,
					Message: fmt.Sprintf("your allowlist holds at most %d entries; use CIDR ranges to cover more addresses", maxOwnIPEntries),
					Details: map[string]any{"resource": "ip_whitelist_entries", "limit": maxOwnIPEntries, "used": n + 1}}
			}
		}
		if err := schemas.InsertIPEntry(ctx, tx, &e); err != nil {
			return err
		}
		if err := s.allowlistLockoutCheck(ctx, tx, req.Force); err != nil {
			return err
		}
		if e.ExpiresAt != nil {
			return s.setIPExpiry(ctx, e.ID, *e.ExpiresAt)
		}
		return nil
	})
	if errors.Is(err, schemas.ErrNotFound) {
		return fieldError("user_id", "no such user")
	}
	if err != nil {
		return ipEntryStoreError(err)
	}
	s.reloadAllowlistAfterWrite(ctx)
	auditIPEntry(ctx, e)
	w.Header().Set("Location", "/api/security/ip-whitelist/"+strconv.FormatInt(e.ID, 10))
	writeJSON(w, http.StatusCreated, toIPEntryJSON(e, s.allowlistNow()))
	return nil
}

// listIPEntries answers one page of entries, newest first: a user's own
// (grants made for them included), or for an admin any, filtered.
func (s *Server) listIPEntries(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p, _ := principalFrom(ctx)
	q, err := parseAdminListQuery(r, "scope", "user_id", "cursor", "limit")
	if err != nil {
		return err
	}
	f := schemas.IPEntryFilter{Scope: q.Get("scope"), Cursor: q.Get("cursor")}
	switch f.Scope {
	case "", schemas.IPScopeGlobal, schemas.IPScopeUser:
	default:
		return fieldError("scope", `must be "global" or "user"`)
	}
	if v := q.Get("user_id"); v != "" {
		if f.UserID, err = uuid.Parse(v); err != nil {
			return fieldError("user_id", "must be a user ID (a UUID)")
		}
		if f.Scope == schemas.IPScopeGlobal {
			return fieldError("user_id", "global entries belong to no user; leave user_id out with scope=global")
		}
	}
	if !p.IsAdmin() {
		if f.Scope == schemas.IPScopeGlobal || (f.UserID != uuid.Nil && f.UserID != p.UserID) {
			return Errorf(CodeForbidden, "only admins may list the global allowlist or other users' entries")
		}
		f.Scope, f.UserID = schemas.IPScopeUser, p.UserID
	}
	if f.Limit, err = q.limit(); err != nil {
		return err
	}
	entries, next, err := s.deps.Store.ListIPEntries(ctx, f)
	if errors.Is(err, schemas.ErrInvalidCursor) {
		return errBadCursor()
	}
	if err != nil {
		return err
	}
	now := s.allowlistNow()
	out := ipEntryListResponse{Entries: make([]ipEntryJSON, 0, len(entries)), NextCursor: optString(next)}
	for _, e := range entries {
		out.Entries = append(out.Entries, toIPEntryJSON(e, now))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// visibleIPEntry reports whether the caller may see e: admins see all,
// users their own entries (grants made for them included).
func visibleIPEntry(p Principal, e schemas.IPEntry) bool {
	return p.IsAdmin() || (!e.Global() && e.UserID == p.UserID)
}

// changeableIPEntry says whether the caller may change or delete e, as the
// error to answer: a user may change only their own entries, not grants or
// restrictions. (A user is told 404 for what they cannot see.)
func changeableIPEntry(p Principal, e schemas.IPEntry) error {
	switch {
	case p.IsAdmin():
		return nil
	case !visibleIPEntry(p, e):
		return errNoIPEntry()
	case e.Granted:
		return Errorf(CodeForbidden, "this entry is a grant an admin made for you; only admins change grants")
	case e.Restricted:
		return Errorf(CodeForbidden, "this entry is a restriction an admin set for you; only admins change restrictions")
	}
	return nil
}

func (s *Server) getIPEntry(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p, _ := principalFrom(ctx)
	id, err := ipEntryIDParam(r)
	if err != nil {
		return err
	}
	e, err := s.deps.Store.GetIPEntry(ctx, id)
	if err != nil {
		return ipEntryStoreError(err)
	}
	if !visibleIPEntry(p, e) {
		return errNoIPEntry()
	}
	writeJSON(w, http.StatusOK, toIPEntryJSON(e, s.allowlistNow()))
	return nil
}

func (s *Server) patchIPEntry(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	auditSetAction(ctx, auditIPUpdate)
	p, _ := principalFrom(ctx)
	id, err := ipEntryIDParam(r)
	if err != nil {
		return err
	}
	var req patchIPEntryRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	// Validate everything before touching the row.
	now := s.allowlistNow()
	var prefix *netip.Prefix
	if req.IPAddress != nil {
		pp, err := parseIPAddress("ip_address", *req.IPAddress)
		if err != nil {
			return err
		}
		prefix = &pp
	}
	if req.Description != nil {
		if err := validateIPDescription(*req.Description); err != nil {
			return err
		}
	}
	var expires *time.Time
	if req.ExpiresAt.Set && req.ExpiresAt.Value != nil {
		t, err := parseExpiresAt(*req.ExpiresAt.Value, now)
		if err != nil {
			return err
		}
		if s.deps.Workflows == nil {
			return errNoTemporalForExpiry()
		}
		expires = &t
	}
	var (
		e              schemas.IPEntry
		expiryCleared  bool
		changed        []string
		expiryReplaced bool
	)
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if e, err = schemas.LockIPEntry(ctx, tx, id); err != nil {
			return err
		}
		if err := changeableIPEntry(p, e); err != nil {
			return err
		}
		changed = nil
		if prefix != nil && *prefix != e.Prefix {
			e.Prefix, changed = *prefix, append(changed, "ip_address")
		}
		if req.Description != nil && *req.Description != e.Description {
			e.Description, changed = *req.Description, append(changed, "description")
		}
		if req.Enabled != nil && *req.Enabled != e.Enabled {
			e.Enabled, changed = *req.Enabled, append(changed, "enabled")
		}
		if req.ExpiresAt.Set {
			switch {
			case expires != nil:
				// A new expiry starts afresh: the entry is no longer
				// marked as expired.
				e.ExpiresAt, e.ExpiredAt, expiryReplaced = expires, nil, true
				changed = append(changed, "expires_at")
			case e.ExpiresAt != nil:
				e.ExpiresAt, expiryCleared = nil, true
				changed = append(changed, "expires_at")
			}
		}
		if req.Enabled != nil && *req.Enabled && e.ExpiresAt != nil && !now.Before(*e.ExpiresAt) {
			return fieldError("expires_at", "the entry expired at "+e.ExpiresAt.UTC().Format(time.RFC3339)+
				"; give a new expires_at in the future (or null) to enable it again")
		}
		if err := schemas.UpdateIPEntry(ctx, tx, &e); err != nil {
			return err
		}
		if err := s.allowlistLockoutCheck(ctx, tx, req.Force); err != nil {
			return err
		}
		if expiryReplaced {
			return s.setIPExpiry(ctx, e.ID, *e.ExpiresAt)
		}
		return nil
	})
	if err != nil {
		return ipEntryStoreError(err)
	}
	if expiryCleared {
		s.endIPExpiry(ctx, e.ID)
	}
	s.reloadAllowlistAfterWrite(ctx)
	auditIPEntry(ctx, e)
	auditSetDetail(ctx, "changed", changed)
	writeJSON(w, http.StatusOK, toIPEntryJSON(e, s.allowlistNow()))
	return nil
}

func (s *Server) deleteIPEntry(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	auditSetAction(ctx, auditIPDelete)
	p, _ := principalFrom(ctx)
	id, err := ipEntryIDParam(r)
	if err != nil {
		return err
	}
	q, err := parseAdminListQuery(r, "force")
	if err != nil {
		return err
	}
	force := false
	if v := q.Get("force"); v != "" {
		if force, err = strconv.ParseBool(v); err != nil {
			return fieldError("force", "must be true or false")
		}
	}
	var e schemas.IPEntry
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if e, err = schemas.LockIPEntry(ctx, tx, id); err != nil {
			return err
		}
		if err := changeableIPEntry(p, e); err != nil {
			return err
		}
		if err := schemas.DeleteIPEntry(ctx, tx, id); err != nil {
			return err
		}
		return s.allowlistLockoutCheck(ctx, tx, force)
	})
	if err != nil {
		return ipEntryStoreError(err)
	}
	if e.ExpiresAt != nil {
		s.endIPExpiry(ctx, e.ID)
	}
	s.reloadAllowlistAfterWrite(ctx)
	auditIPEntry(ctx, e)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
