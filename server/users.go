package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/password"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/workflows"
)

type createUserRequest struct {
	Username    string `json:"username"`
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
	Role        Role   `json:"role"`
	Password    string `json:"password"`
	Active      *bool  `json:"active"`
}

// updateUserRequest changes only the fields present.
type updateUserRequest struct {
	Email       *string `json:"email"`
	DisplayName *string `json:"display_name"`
	Role        *Role   `json:"role"`
	Active      *bool   `json:"active"`
	Password    *string `json:"password"`
}

// updateMeRequest is what users may change about themselves; a new password
// needs the current one.
type updateMeRequest struct {
	Email           *string `json:"email"`
	DisplayName     *string `json:"display_name"`
	Password        *string `json:"password"`
	CurrentPassword string  `json:"current_password"`
}

func userIDParam(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return uuid.Nil, Errorf(CodeNotFound, "no such user")
	}
	return id, nil
}

// storeError maps store sentinels to API errors.
func storeError(err error) error {
	switch {
	case errors.Is(err, schemas.ErrNotFound):
		return Errorf(CodeNotFound, "no such user")
	case errors.Is(err, schemas.ErrConflict):
		e := Errorf(CodeConflict, "%s", err.Error())
		e.Message = "a user with that username or email already exists"
		return e
	}
	return err
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return fieldError("limit", "must be a whole number from 1 to 200")
		}
		limit = n
	}
	users, err := s.deps.Store.ListUsers(r.Context(), r.URL.Query().Get("cursor"), limit+1)
	if err != nil {
		return err
	}
	var next *string
	if len(users) > limit {
		users = users[:limit]
		c := users[limit-1].Username
		next = &c
	}
	out := make([]userJSON, len(users))
	for i, u := range users {
		out[i] = toUserJSON(u)
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out, "next_cursor": next})
	return nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	var req createUserRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Role == "" {
		req.Role = RoleUser
	}
	for _, err := range []error{validateUsername(req.Username), validateEmail(req.Email),
		validateDisplayName(req.DisplayName), validateRole(req.Role)} {
		if err != nil {
			return err
		}
	}
	if err := password.Validate(req.Password); err != nil {
		return fieldError("password", err.Error())
	}
	hash, err := password.Hash(req.Password)
	if err != nil {
		return err
	}
	u := schemas.User{Username: req.Username, Email: req.Email, DisplayName: req.DisplayName,
		Role: string(req.Role), Active: req.Active == nil || *req.Active, PasswordHash: hash}
	ctx := r.Context()
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		if err := schemas.InsertUser(ctx, tx, &u); err != nil {
			return err
		}
		_, err := schemas.Publish(ctx, tx, schemas.Event{Type: schemas.EventUserCreated, Data: userEvent(u, nil)})
		return err
	})
	if err != nil {
		return storeError(err)
	}
	auditSetTarget(ctx, u.ID.String())
	if u.Role == string(RoleAdmin) {
		p, _ := principalFrom(ctx)
		s.noteRoleChange(ctx, p, u, "") // an admin made directly: a privilege_escalation alert
	}
	w.Header().Set("Location", "/api/admin/users/"+u.ID.String())
	writeJSON(w, http.StatusCreated, toUserJSON(u))
	return nil
}

func userEvent(u schemas.User, changed []string) schemas.UserEventData {
	return schemas.UserEventData{UserID: u.ID.String(), Username: u.Username, Email: u.Email, Role: u.Role, Changed: changed}
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	id, err := userIDParam(r)
	if err != nil {
		return err
	}
	u, err := s.deps.Store.GetUser(r.Context(), id)
	if err != nil {
		return storeError(err)
	}
	writeJSON(w, http.StatusOK, toUserJSON(u))
	return nil
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) error {
	id, err := userIDParam(r)
	if err != nil {
		return err
	}
	var req updateUserRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	p, _ := principalFrom(r.Context())
	if id == p.UserID && ((req.Role != nil && *req.Role != RoleAdmin) || (req.Active != nil && !*req.Active)) {
		return Errorf(CodeConflict, "you cannot demote or deactivate yourself; ask another admin")
	}
	var oldRole string
	u, err := s.applyUserChange(r, id, func(u *schemas.User) ([]string, error) {
		var changed []string
		oldRole = u.Role
		if req.Role != nil {
			if err := validateRole(*req.Role); err != nil {
				return nil, err
			}
			if string(*req.Role) != u.Role {
				u.Role, changed = string(*req.Role), append(changed, "role")
			}
		}
		if req.Active != nil && *req.Active != u.Active {
			u.Active, changed = *req.Active, append(changed, "active")
		}
		more, err := applyProfile(u, req.Email, req.DisplayName, req.Password)
		return append(changed, more...), err
	})
	if err != nil {
		return err
	}
	if u.Role != oldRole {
		s.noteRoleChange(r.Context(), p, u, oldRole) // a privilege_escalation alert (security_signals.go)
	}
	writeJSON(w, http.StatusOK, toUserJSON(u))
	return nil
}

// applyProfile applies the profile fields every user may change.
func applyProfile(u *schemas.User, email, displayName, newPassword *string) ([]string, error) {
	var changed []string
	if email != nil && *email != u.Email {
		if err := validateEmail(*email); err != nil {
			return nil, err
		}
		u.Email, changed = *email, append(changed, "email")
	}
	if displayName != nil && *displayName != u.DisplayName {
		if err := validateDisplayName(*displayName); err != nil {
			return nil, err
		}
		u.DisplayName, changed = *displayName, append(changed, "display_name")
	}
	if newPassword != nil {
		if u.OIDCSubject != "" {
			return nil, fieldError("password", "this account signs in through OIDC and has no password here")
		}
		if err := password.Validate(*newPassword); err != nil {
			return nil, fieldError("password", err.Error())
		}
		hash, err := password.Hash(*newPassword)
		if err != nil {
			return nil, err
		}
		u.PasswordHash, changed = hash, append(changed, "password")
	}
	return changed, nil
}

// applyUserChange locks the user, applies change, saves, revokes sessions
// when the password changed or the account was deactivated, and publishes
// user.updated, all in one transaction.
func (s *Server) applyUserChange(r *http.Request, id uuid.UUID, change func(*schemas.User) ([]string, error)) (schemas.User, error) {
	ctx := r.Context()
	var u schemas.User
	err := s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if u, err = schemas.LockUser(ctx, tx, id); err != nil {
			return err
		}
		changed, err := change(&u)
		if err != nil || len(changed) == 0 {
			return err
		}
		if err := schemas.UpdateUser(ctx, tx, &u); err != nil {
			return err
		}
		for _, c := range changed {
			if c == "password" || (c == "active" && !u.Active) {
				if err := schemas.RevokeUserRefreshTokens(ctx, tx, u.ID); err != nil {
					return err
				}
				break
			}
		}
		auditSetDetail(ctx, "changed", changed)
		_, err = schemas.Publish(ctx, tx, schemas.Event{Type: schemas.EventUserUpdated, Data: userEvent(u, changed)})
		return err
	})
	if err != nil {
		return schemas.User{}, storeError(err)
	}
	return u, nil
}

// deleteUser deletes an account and ends its sessions: the account is
// deactivated at once (it can neither sign in nor start a session); one
// without live sessions is deleted in the same request (204), one with
// them by its user-delete/<id> run, which the request waits for up to
// userDeleteWait (204), else answers 202 with the run's workflow ID while
// the run goes on.
func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	id, err := userIDParam(r)
	if err != nil {
		return err
	}
	p, _ := principalFrom(r.Context())
	if p.UserID == id {
		return Errorf(CodeConflict, "you cannot delete your own account")
	}
	ctx := r.Context()
	if s.deps.Workflows == nil {
		// Checked before anything changes: without Temporal a user with
		// live sessions is refused, not left deactivated.
		live, err := s.deps.Store.LiveSessionIDsOf(ctx, id)
		if err != nil {
			return err
		}
		if len(live) > 0 {
			return noUserDeleteRun()
		}
	}
	u, err := s.deps.Store.BeginUserDelete(ctx, id)
	if err != nil {
		return storeError(err)
	}
	deleted, err := s.deps.Store.FinishUserDelete(ctx, id)
	switch {
	case err == nil && deleted:
		if err := activities.DeleteHomeIfAny(ctx, s.deps.Kube, id.String()); err != nil {
			s.deps.Logger.WarnContext(ctx, "the user is deleted but their persistent home is not; DELETE /api/admin/users/{id}/home removes it",
				"user_id", id, "err", err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	case err == nil:
		return storeError(schemas.ErrNotFound)
	case !errors.Is(err, schemas.ErrUserHasSessions):
		return storeError(err)
	case s.deps.Workflows == nil:
		return noUserDeleteRun() // a session appeared since the check
	}
	run, err := s.deps.Workflows.StartUserDelete(ctx, activities.UserDeleteInput{UserID: id.String(),
		Username: u.Username, Actor: p.Username})
	if err != nil {
		return Errorf(CodeUnavailable, "the account is deactivated, but its deletion could not be started "+
			"(Temporal unreachable); delete it again to retry")
	}
	waitCtx, cancel := context.WithTimeout(ctx, userDeleteWait)
	defer cancel()
	var res workflows.UserDeleteResult
	err = run.Get(waitCtx, &res)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case waitCtx.Err() != nil && ctx.Err() == nil:
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "deleting", "workflow_id": run.GetID()})
	default:
		return workflowError(run.GetID(), err)
	}
	return nil
}

// noUserDeleteRun refuses deleting a user with live sessions on a server
// that cannot start the run that ends them.
func noUserDeleteRun() error {
	return Errorf(CodeUnavailable, "the user has live sessions; ending them needs Temporal, "+
		"and this server has no workflow client configured")
}

// userDeleteWait is how long DELETE /api/admin/users/{id} waits for the
// user's sessions to end before it answers 202.
const userDeleteWait = 20 * time.Second

func (s *Server) getMe(w http.ResponseWriter, r *http.Request) error {
	u, err := s.callerUser(r.Context())
	if err != nil {
		return storeError(err)
	}
	writeJSON(w, http.StatusOK, toUserJSON(u))
	return nil
}

func (s *Server) updateMe(w http.ResponseWriter, r *http.Request) error {
	var req updateMeRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	p, _ := principalFrom(r.Context())
	auditSetTarget(r.Context(), p.UserID.String())
	u, err := s.applyUserChange(r, p.UserID, func(u *schemas.User) ([]string, error) {
		if req.Password != nil && u.OIDCSubject == "" && !password.Check(req.CurrentPassword, u.PasswordHash) {
			return nil, fieldError("current_password", "does not match your current password")
		}
		// With MFA, the email address may receive codes: moving it needs
		// the password too, not just an access token.
		if req.Email != nil && *req.Email != u.Email && u.MFAEnabled && u.PasswordHash != "" &&
			!password.Check(req.CurrentPassword, u.PasswordHash) {
			return nil, fieldError("current_password", "required to change the email address of an account with MFA")
		}
		return applyProfile(u, req.Email, req.DisplayName, req.Password)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toUserJSON(u))
	return nil
}
