package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/streamspace/enterprise/schemas"
)

// Security alerts: what the rules in security_signals.go (and the MFA and
// allowlist code) raise, and the API to read and close them. Users see the
// alerts about themselves; admins see all of them.
//
//	GET  /api/security/alerts                   ?status= ?kind= ?severity= ?user_id= (admins) ?cursor= ?limit=
//	GET  /api/security/alerts/{id}              another user's alert: 404
//	POST /api/security/alerts/{id}/acknowledge  the alert's user or an admin
//	POST /api/security/alerts/{id}/resolve      {note?}: admins only

// securityAlertRoutes mounts the alert routes on the signed-in user router.
// resolve sits behind requireRole, so a user trying it counts as a refused
// admin request like any other.
func (s *Server) securityAlertRoutes(user chi.Router) {
	h := func(fn handlerFunc) http.HandlerFunc { return handle(s.deps.Logger, fn) }
	user.Get("/api/security/alerts", h(s.listAlerts))
	user.Get("/api/security/alerts/{id}", h(s.getAlert))
	user.Post("/api/security/alerts/{id}/acknowledge", h(s.acknowledgeAlert))
	user.With(s.requireRole(RoleAdmin)).Post("/api/security/alerts/{id}/resolve", h(s.resolveAlert))
}

// alertWriteTimeout bounds raising one alert. The write outlives the
// request's own context: a client hanging up must not stop its alert.
const alertWriteTimeout = 5 * time.Second

// raiseAlert stores a security alert (or folds it into the open one with the
// same dedup key) and, for a new alert, publishes security.alert. It fills
// the user from the signed-in caller when in names nobody (or their username
// when in names the caller) and the address from the request when in has
// none. It never fails the request: an error is logged (kind and cause, not
// the details, which may hold client-sent text) and the request goes on.
func (s *Server) raiseAlert(ctx context.Context, in schemas.AlertInput) {
	if s.deps.Store == nil {
		return
	}
	if p, ok := principalFrom(ctx); ok {
		switch {
		case in.UserID == uuid.Nil && in.Username == "":
			in.UserID, in.Username = p.UserID, p.Username
		case in.UserID == p.UserID && in.Username == "":
			in.Username = p.Username
		}
	}
	if !in.IP.IsValid() {
		in.IP = clientIP(ctx)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), alertWriteTimeout)
	defer cancel()
	a, created, err := s.deps.Store.RaiseAlert(wctx, in)
	if err != nil {
		s.deps.Logger.ErrorContext(ctx, "raise security alert", "kind", in.Kind, "severity", in.Severity,
			"err", err, "request_id", requestID(ctx))
		return
	}
	auditSetDetail(ctx, "security_alert_id", a.ID)
	if created {
		s.deps.Logger.WarnContext(ctx, "security alert", "alert_id", a.ID, "kind", a.Kind, "severity", a.Severity,
			"user_id", a.UserID, "client_ip", a.IP.String(), "request_id", requestID(ctx))
	}
}

func errNoAlert() *Error { return Errorf(CodeNotFound, "no such security alert") }

// visibleAlert reads the alert of the {id} parameter if the caller may see
// it: theirs, or any for an admin. Another user's alert is 404, as a missing
// one, so users cannot probe which alerts exist.
func (s *Server) visibleAlert(r *http.Request) (schemas.SecurityAlert, Principal, error) {
	p, _ := principalFrom(r.Context())
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		return schemas.SecurityAlert{}, p, errNoAlert()
	}
	a, err := s.deps.Store.GetAlert(r.Context(), id)
	if errors.Is(err, schemas.ErrNotFound) || (err == nil && !p.IsAdmin() && a.UserID != p.UserID) {
		return schemas.SecurityAlert{}, p, errNoAlert()
	}
	return a, p, err
}

// alertChangeError maps the store's answers to a change of an alert.
func alertChangeError(err error) error {
	switch {
	case errors.Is(err, schemas.ErrNotFound):
		return errNoAlert()
	case errors.Is(err, schemas.ErrAlertResolved):
		return Errorf(CodeConflict, "the alert is already resolved")
	}
	return err
}

// listAlerts answers one page of alerts, newest first (by first_seen). A
// user gets their own; user_id (admins only) selects one user's.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) error {
	q, err := parseAdminListQuery(r, "status", "kind", "severity", "user_id", "cursor", "limit")
	if err != nil {
		return err
	}
	p, _ := principalFrom(r.Context())
	f := schemas.AlertFilter{Kind: q.Get("kind"), Status: q.Get("status"), Severity: q.Get("severity"),
		Cursor: q.Get("cursor")}
	if f.Kind != "" && !schemas.ValidAlertKind(f.Kind) {
		return fieldError("kind", fmt.Sprintf("unknown alert kind %q", f.Kind))
	}
	if f.Status != "" && !schemas.ValidAlertStatus(f.Status) {
		return fieldError("status", "must be open, acknowledged or resolved")
	}
	if f.Severity != "" && !schemas.ValidAlertSeverity(f.Severity) {
		return fieldError("severity", "must be low, medium, high or critical")
	}
	if v := q.Get("user_id"); v != "" {
		if f.UserID, err = uuid.Parse(v); err != nil {
			return fieldError("user_id", "must be a user ID")
		}
	}
	if !p.IsAdmin() {
		if f.UserID != uuid.Nil && f.UserID != p.UserID {
			return Errorf(CodeForbidden, "only admins may list other users' alerts")
		}
		f.UserID = p.UserID
	}
	if f.Limit, err = q.limit(); err != nil {
		return err
	}
	alerts, next, err := s.deps.Store.ListAlerts(r.Context(), f)
	if errors.Is(err, schemas.ErrInvalidCursor) {
		return errBadCursor()
	}
	if err != nil {
		return err
	}
	out := alertListResponse{Alerts: make([]alertJSON, 0, len(alerts)), NextCursor: optString(next)}
	for _, a := range alerts {
		out.Alerts = append(out.Alerts, toAlertJSON(a))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) error {
	a, _, err := s.visibleAlert(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAlertJSON(a))
	return nil
}

// acknowledgeAlert marks an alert seen: by its user or by an admin.
func (s *Server) acknowledgeAlert(w http.ResponseWriter, r *http.Request) error {
	auditSetAction(r.Context(), "security.alert.acknowledge")
	a, p, err := s.visibleAlert(r)
	if err != nil {
		return err
	}
	a, err = s.deps.Store.AcknowledgeAlert(r.Context(), a.ID, p.UserID)
	if err != nil {
		return alertChangeError(err)
	}
	writeJSON(w, http.StatusOK, toAlertJSON(a))
	return nil
}

// resolveAlert closes an alert with an optional note (admins only).
func (s *Server) resolveAlert(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	auditSetAction(ctx, "security.alert.resolve")
	var req resolveAlertRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
	}
	if len(req.Note) > maxResolutionNote {
		return fieldError("note", fmt.Sprintf("must be at most %d bytes", maxResolutionNote))
	}
	a, p, err := s.visibleAlert(r)
	if err != nil {
		return err
	}
	a, err = s.deps.Store.ResolveAlert(ctx, a.ID, p.UserID, req.Note)
	if err != nil {
		return alertChangeError(err)
	}
	writeJSON(w, http.StatusOK, toAlertJSON(a))
	return nil
}
