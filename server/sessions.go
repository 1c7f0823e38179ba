package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
	"github.com/streamspace/enterprise/workflows"
)

// Sessions. The row in PostgreSQL is the read model (ownership, quota,
// listings); the Session resource is the live object; each session's
// lifecycle workflow (session/<id>) makes every change. Users see and change
// only their own sessions (others' answer 404); admins see all.
//
//	POST   /api/sessions                 202: row written, workflow started
//	GET    /api/sessions                 ?user_id= (admin) ?phase= ?live= ?limit= ?cursor=
//	GET    /api/sessions/{id}            the row, overlaid with the live Session's status
//	PATCH  /api/sessions/{id}            {"state":"hibernated"|"running"|"terminated"}
//	DELETE /api/sessions/{id}            terminate; 204, also when it already ended
//	POST   /api/sessions/{id}/heartbeat  the user is active: resets the idle timer

// visibleSession loads a session the caller may see: their own, or any for
// an admin. Others' sessions are 404, as missing ones are.
func (s *Server) visibleSession(r *http.Request) (schemas.SessionRow, error) {
	id := chi.URLParam(r, "id")
	row, err := s.deps.Store.GetSession(r.Context(), id)
	if errors.Is(err, schemas.ErrNotFound) {
		return row, Errorf(CodeNotFound, "no such session")
	}
	if err != nil {
		return row, err
	}
	if p, _ := principalFrom(r.Context()); !p.IsAdmin() && p.UserID != row.UserID {
		return schemas.SessionRow{}, Errorf(CodeNotFound, "no such session")
	}
	return row, nil
}

// liveSession reads the Session resource of a live row; nil when it does
// not exist (yet, or any more) or cannot be read, as the row then stands.
func (s *Server) liveSession(ctx context.Context, row schemas.SessionRow) *kubeapi.Session {
	if s.deps.Kube == nil || !row.Live() {
		return nil
	}
	obj, err := s.deps.Kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(row.Namespace).Get(ctx, row.ID, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			s.deps.Logger.WarnContext(ctx, "cannot read the Session resource; answering from the read model",
				"session_id", row.ID, "err", err)
		}
		return nil
	}
	sess, err := kubeapi.SessionFrom(obj)
	if err != nil {
		s.deps.Logger.WarnContext(ctx, "Session resource does not decode", "session_id", row.ID, "err", err)
		return nil
	}
	return sess
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) error {
	k, wf, err := s.sessionDeps()
	if err != nil {
		return err
	}
	var req createSessionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := validateTemplateRef("template", req.Template); err != nil {
		return err
	}
	if err := validateWords("tags", req.Tags, 64, 63); err != nil {
		return err
	}
	requested, err := parseSessionResources(req.Resources)
	if err != nil {
		return err
	}
	cfg := s.cfg.Sessions
	idle, idleD, err := parseSessionDuration("idle_timeout", req.IdleTimeout, cfg.DefaultIdleTimeout)
	if err != nil {
		return err
	}
	maxDur, maxD, err := parseSessionDuration("max_session_duration", req.MaxSessionDuration, cfg.DefaultMaxDuration)
	if err != nil {
		return err
	}
	ctx := r.Context()
	obj, err := k.Dynamic.Resource(kubeapi.TemplateGVR).Namespace(k.Namespace).Get(ctx, req.Template, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fieldError("template", fmt.Sprintf("there is no template %q", req.Template))
	} else if err != nil {
		return kubeError("template", err)
	}
	tpl, err := kubeapi.TemplateFrom(obj)
	if err != nil {
		return err
	}
	resources := kubeapi.Effective(requested, tpl.Spec.DefaultResources)
	reqs, err := resources.Requirements()
	if err != nil {
		return fieldError("template", fmt.Sprintf("template %q has unusable default resources: %v", req.Template, err))
	}
	cpu, memory := kubeapi.Reserved(reqs)
	if resources != nil {
		copied := *resources
		resources = &copied
	}
	p, _ := principalFrom(ctx)
	persistent := req.PersistentHome == nil || *req.PersistentHome
	row := schemas.SessionRow{Namespace: k.Namespace, UserID: p.UserID, Username: p.Username, Template: req.Template,
		CPUMillis: cpu, MemoryBytes: memory, Spec: kubeapi.SessionSpec{User: p.Username, Template: req.Template,
			State: kubeapi.StateRunning, Resources: resources, PersistentHome: &persistent, IdleTimeout: idle,
			MaxSessionDuration: maxDur, Tags: req.Tags}}
	for attempt := 0; ; attempt++ {
		row.ID = newSessionID(p.Username, req.Template)
		err = s.deps.Store.CreateSession(ctx, &row, cfg.quota(), s.templateStillExists(k, tpl.Name, obj.GetUID()))
		if !errors.Is(err, schemas.ErrConflict) || attempt == 3 {
			break
		}
	}
	var exceeded *schemas.QuotaExceededError
	if errors.As(err, &exceeded) {
		return quotaExceeded(exceeded)
	}
	if err != nil {
		return err
	}
	auditSetTarget(ctx, row.ID)
	in := workflows.SessionInput{SessionID: row.ID, StartTimeout: cfg.startTimeout(), IdleTimeout: idleD, MaxDuration: maxD}
	if err := wf.StartSession(ctx, in, p.Username); err != nil {
		return s.failUnstarted(ctx, row, err)
	}
	w.Header().Set("Location", "/api/sessions/"+row.ID)
	writeJSON(w, http.StatusAccepted, toSessionJSON(row, nil))
	return nil
}

// failUnstarted records a session whose lifecycle workflow could not be
// started as Failed (with session.deleted, as the workflow reports a failed
// session), so it holds no quota, and answers 503.
func (s *Server) failUnstarted(ctx context.Context, row schemas.SessionRow, cause error) error {
	s.deps.Logger.ErrorContext(ctx, "cannot start the session's lifecycle workflow", "session_id", row.ID, "err", cause)
	why := "its lifecycle workflow could not be started (Temporal unavailable)"
	_, err := s.deps.Store.TransitionSession(context.WithoutCancel(ctx), row.ID, schemas.SessionTransition{
		Phase: kubeapi.PhaseFailed, Message: why, Event: schemas.EventSessionDeleted, Reason: "failed: " + why})
	if err != nil {
		s.deps.Logger.ErrorContext(ctx, "cannot mark the unstarted session failed", "session_id", row.ID, "err", err)
	}
	return &Error{Code: CodeUnavailable, Message: "the session could not be started: the workflow service is unavailable; try again",
		Details: map[string]any{"session_id": row.ID}}
}

type sessionListResponse struct {
	Sessions   []sessionJSON `json:"sessions"`
	NextCursor *string       `json:"next_cursor"`
}

// listSessions answers one page of sessions from the read model, newest
// first: a user's own, or an admin's choice of all (?user_id=).
func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) error {
	q, err := parseAdminListQuery(r, "user_id", "phase", "live", "limit", "cursor")
	if err != nil {
		return err
	}
	p, _ := principalFrom(r.Context())
	f := schemas.SessionFilter{Cursor: q.Get("cursor")}
	if v := q.Get("user_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return fieldError("user_id", "must be a user ID (a UUID)")
		}
		if !p.IsAdmin() && id != p.UserID {
			return Errorf(CodeForbidden, "only admins may list other users' sessions")
		}
		f.UserID = &id
	}
	if !p.IsAdmin() {
		f.UserID = &p.UserID
	}
	if f.Phase, err = sessionPhaseParam(q.Get("phase")); err != nil {
		return err
	}
	if v := q.Get("live"); v != "" {
		if f.Live, err = strconv.ParseBool(v); err != nil {
			return fieldError("live", "must be true or false")
		}
	}
	if f.Limit, err = q.limit(); err != nil {
		return err
	}
	rows, next, err := s.deps.Store.ListSessions(r.Context(), f)
	if errors.Is(err, schemas.ErrInvalidCursor) {
		return errBadCursor()
	}
	if err != nil {
		return err
	}
	out := sessionListResponse{Sessions: make([]sessionJSON, 0, len(rows)), NextCursor: optString(next)}
	for _, row := range rows {
		out.Sessions = append(out.Sessions, toSessionJSON(row, nil))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.kube(); err != nil {
		return err
	}
	row, err := s.visibleSession(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toSessionJSON(row, s.liveSession(r.Context(), row)))
	return nil
}

// patchSession moves a session to the state asked for through its
// workflow's Updates, which answer once the move is done (hibernated: the
// pod is gone; running: the pod runs again; terminated: the Session is
// deleted).
func (s *Server) patchSession(w http.ResponseWriter, r *http.Request) error {
	_, wf, err := s.sessionDeps()
	if err != nil {
		return err
	}
	row, err := s.visibleSession(r)
	if err != nil {
		return err
	}
	var req patchSessionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	p, _ := principalFrom(ctx)
	var call func(context.Context) (workflows.SessionStatus, error)
	switch req.State {
	case kubeapi.StateHibernated:
		call = func(ctx context.Context) (workflows.SessionStatus, error) { return wf.HibernateSession(ctx, row.ID) }
	case kubeapi.StateRunning:
		call = func(ctx context.Context) (workflows.SessionStatus, error) { return wf.WakeSession(ctx, row.ID) }
	case kubeapi.StateTerminated:
		call = func(ctx context.Context) (workflows.SessionStatus, error) {
			return wf.TerminateSession(ctx, row.ID, "terminated by "+p.Username)
		}
	default:
		return fieldError("state", "must be hibernated, running or terminated")
	}
	if !row.Live() {
		return errSessionEnded(row.ID)
	}
	auditSetDetail(ctx, "state", req.State)
	updateCtx, cancel := s.updateContext(ctx)
	defer cancel()
	st, err := call(updateCtx)
	if err != nil {
		return workflowError(row.ID, err)
	}
	return s.answerSession(w, r, row.ID, &st)
}

// updateContext bounds the wait for a session Update so the answer beats
// the server's write timeout: a wake may wait minutes for an image pull.
// An Update still running then carries on in the workflow; the client gets
// 503 and follows the session with GET.
func (s *Server) updateContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if wt := s.cfg.WriteTimeout; wt > 0 {
		return context.WithTimeout(ctx, max(wt-5*time.Second, wt*3/4))
	}
	return context.WithCancel(ctx)
}

// answerSession answers the session as it is now; st, the status an Update
// answered, is newer than the row or the resource may yet show.
func (s *Server) answerSession(w http.ResponseWriter, r *http.Request, id string, st *workflows.SessionStatus) error {
	row, err := s.deps.Store.GetSession(r.Context(), id)
	if err != nil {
		return err
	}
	out := toSessionJSON(row, s.liveSession(r.Context(), row))
	if st != nil && st.Phase != "" {
		out.State, out.Phase, out.Message, out.Node = st.State, strings.ToLower(st.Phase), st.Message, st.NodeName
		if st.Phase != kubeapi.PhaseRunning {
			out.PodName, out.URL = "", ""
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteSession terminates a session and answers 204 once its Session
// resource is gone; a session that already ended answers 204 too.
func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) error {
	k, wf, err := s.sessionDeps()
	if err != nil {
		return err
	}
	row, err := s.visibleSession(r)
	if err != nil {
		return err
	}
	if row.Live() {
		ctx := r.Context()
		p, _ := principalFrom(ctx)
		reason := "deleted by " + p.Username
		updateCtx, cancel := s.updateContext(ctx)
		defer cancel()
		_, err := wf.TerminateSession(updateCtx, row.ID, reason)
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			// No workflow holds the session (it could not be started, or an
			// operator ended it): end it here.
			if err := s.endOrphan(ctx, k, row, reason); err != nil {
				return err
			}
		case err != nil:
			if err := s.endedMeanwhile(ctx, row.ID, err); err != nil {
				return err
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// endOrphan ends a live session no workflow holds
// (activities.EndOrphanSession), mapping a Kubernetes failure.
func (s *Server) endOrphan(ctx context.Context, k *activities.Kube, row schemas.SessionRow, reason string) error {
	s.deps.Logger.WarnContext(ctx, "session has no lifecycle workflow; ending it directly", "session_id", row.ID)
	err := activities.EndOrphanSession(ctx, k, s.deps.Store, row, reason)
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return kubeError("session", err)
	}
	return err
}

// endedMeanwhile decides what a failed terminate means: nothing, when the
// session has ended meanwhile (another terminate won, or it failed); else
// the mapped error.
func (s *Server) endedMeanwhile(ctx context.Context, id string, terminateErr error) error {
	apiErr := workflowError(id, terminateErr)
	var e *Error
	if !errors.As(apiErr, &e) || e.Code != CodeConflict {
		return apiErr
	}
	row, err := s.deps.Store.GetSession(ctx, id)
	if err != nil {
		return err
	}
	if !row.Live() {
		return nil
	}
	return apiErr
}

// heartbeat tells the session's workflow that its user is active, which
// restarts the idle timer (the workflow writes last_activity_at down, at
// most once a minute).
func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) error {
	_, wf, err := s.sessionDeps()
	if err != nil {
		return err
	}
	row, err := s.visibleSession(r)
	if err != nil {
		return err
	}
	if !row.Live() {
		return errSessionEnded(row.ID)
	}
	ctx := r.Context()
	if err := wf.RecordSessionActivity(ctx, row.ID); err != nil {
		return workflowError(row.ID, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
