package server

import (
	"errors"
	"net/http"

	"github.com/google/uuid"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// Persistent homes. A user's home is one PersistentVolumeClaim in the
// sessions' namespace (kubeapi.HomeClaimName of the user id) that the
// session controller creates for the first session with persistent_home
// and every later one mounts; ending or hibernating a session keeps it.
// Only these routes, or deleting the user, remove it.
//
//	DELETE /api/users/me/home          the caller's own home; 204, 404 when none
//	DELETE /api/admin/users/{id}/home  any user's (admins), also one whose account is gone
//
// Both refuse with 409 while a live session of the user (hibernated ones
// too: they mount it again when they wake) uses the home.

func (s *Server) deleteMyHome(w http.ResponseWriter, r *http.Request) error {
	p, _ := principalFrom(r.Context())
	return s.deleteHome(w, r, p.UserID)
}

func (s *Server) deleteUserHome(w http.ResponseWriter, r *http.Request) error {
	id, err := userIDParam(r)
	if err != nil {
		return err
	}
	return s.deleteHome(w, r, id)
}

func (s *Server) deleteHome(w http.ResponseWriter, r *http.Request, userID uuid.UUID) error {
	k, err := s.kube()
	if err != nil {
		return err
	}
	ctx := r.Context()
	auditSetTarget(ctx, kubeapi.HomeClaimName(userID.String()))
	live, err := s.deps.Store.LiveHomeSessionIDsOf(ctx, userID)
	if err != nil {
		return err
	}
	if len(live) > 0 {
		return &Error{Code: CodeConflict, Message: "the home is in use by a live session; end the user's sessions first",
			Details: map[string]any{"session_ids": live}}
	}
	err = activities.DeleteHome(ctx, k, userID.String())
	if errors.Is(err, activities.ErrNoHome) {
		return Errorf(CodeNotFound, "the user has no persistent home volume")
	}
	if err != nil {
		return kubeError("persistent home", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
