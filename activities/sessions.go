package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// Sessions holds the activities of the session lifecycle: the Session
// resource in Kubernetes and the session's row (with its events) in
// PostgreSQL.
type Sessions struct {
	Kube  *Kube
	Store *schemas.Store
	// Quota is the default per-user quota, re-checked when a session wakes.
	Quota schemas.Quota
}

// Error types of the session activities that retrying cannot fix.
const (
	ErrTypeSessionNotFound = "SessionNotFound" // no row for the ID
	ErrTypeSessionEnded    = "SessionEnded"    // the row is Failed or Terminated
	ErrTypeQuotaExceeded   = "QuotaExceeded"   // details: *schemas.QuotaExceededError
)

// AnnotationWorkflow on a Session names its lifecycle run: the workflow ID
// of the run that created it, with the deployment's prefix (or without one,
// for a run started before prefixes).
const AnnotationWorkflow = "stream.space/workflow-id"

// CreateSessionResource creates the Session resource of a session row.
// Creating one that exists is not an error (a retried activity). It runs in
// the session's lifecycle run, whose ID the Session's annotation names. A
// row that has ended before its run got this far (its user was deleted and
// the session ended as an orphan meanwhile) gets no Session: ErrTypeSessionEnded.
func (a *Sessions) CreateSessionResource(ctx context.Context, sessionID string) error {
	row, err := a.Store.GetSession(ctx, sessionID)
	if err != nil {
		return sessionError(err)
	}
	if !row.Live() {
		return sessionError(fmt.Errorf("session %s is %s: %w", row.ID, row.Phase, schemas.ErrSessionEnded))
	}
	s := &kubeapi.Session{Spec: row.Spec}
	s.Name, s.Namespace = row.ID, row.Namespace
	s.Labels = map[string]string{kubeapi.LabelManaged: kubeapi.ManagedBy, kubeapi.LabelUserID: row.UserID.String()}
	s.Annotations = map[string]string{AnnotationWorkflow: activity.GetInfo(ctx).WorkflowExecution.ID}
	obj, err := s.Unstructured()
	if err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), "BadSession", err)
	}
	_, err = a.Kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(row.Namespace).Create(ctx, obj, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "InvalidSession", err)
	}
	return err
}

// SetStateInput changes a Session's desired state.
type SetStateInput struct {
	SessionID string
	State     string // kubeapi.State*
}

// SetSessionResourceState sets spec.state of a Session; the controller then
// removes or recreates its pod.
func (a *Sessions) SetSessionResourceState(ctx context.Context, in SetStateInput) error {
	ns, err := a.namespaceOf(ctx, in.SessionID)
	if err != nil {
		return err
	}
	patch := fmt.Appendf(nil, `{"spec":{"state":%q}}`, in.State)
	_, err = a.Kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(ns).
		Patch(ctx, in.SessionID, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("Session %s/%s no longer exists", ns, in.SessionID), ErrTypeSessionNotFound, err)
	}
	return err
}

// RecordInput is one transition of a session's row (see
// schemas.SessionTransition); Wake re-checks the user's quota first.
type RecordInput struct {
	SessionID string
	State     string
	Phase     string
	Message   string
	NodeName  *string
	Event     schemas.EventType
	Reason    string
	Wake      bool
}

// RecordSession writes a transition of a session's row and publishes its
// event in the same transaction.
func (a *Sessions) RecordSession(ctx context.Context, in RecordInput) (SessionRecord, error) {
	t := schemas.SessionTransition{State: in.State, Phase: in.Phase, Message: in.Message,
		NodeName: in.NodeName, Event: in.Event, Reason: in.Reason}
	if in.Wake {
		t.WakeQuota = &a.Quota
	}
	row, err := a.Store.TransitionSession(ctx, in.SessionID, t)
	if err != nil {
		return SessionRecord{}, sessionError(err)
	}
	return recordOf(row), nil
}

// SessionRecord is the part of a session row the workflow needs.
type SessionRecord struct {
	State    string
	Phase    string
	NodeName string
	Message  string
}

func recordOf(row schemas.SessionRow) SessionRecord {
	return SessionRecord{State: row.State, Phase: row.Phase, NodeName: row.NodeName, Message: row.Message}
}

// TouchSession records user activity: on the row and as the Session's
// status.lastActivity.
func (a *Sessions) TouchSession(ctx context.Context, sessionID string) error {
	ns, err := a.namespaceOf(ctx, sessionID)
	if err != nil {
		return err
	}
	if err := a.Store.TouchSession(ctx, sessionID); err != nil {
		return err
	}
	patch := fmt.Appendf(nil, `{"status":{"lastActivity":%q}}`, metav1.Now().UTC().Format("2006-01-02T15:04:05Z"))
	_, err = a.Kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(ns).
		Patch(ctx, sessionID, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) {
		return nil // ended meanwhile; the row has the time
	}
	return err
}

func (a *Sessions) namespaceOf(ctx context.Context, sessionID string) (string, error) {
	row, err := a.Store.GetSession(ctx, sessionID)
	if err != nil {
		return "", sessionError(err)
	}
	return row.Namespace, nil
}

// sessionError makes store errors that retrying cannot fix non-retryable.
func sessionError(err error) error {
	var exceeded *schemas.QuotaExceededError
	switch {
	case errors.As(err, &exceeded):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeQuotaExceeded, err, *exceeded)
	case errors.Is(err, schemas.ErrNotFound):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeSessionNotFound, err)
	case errors.Is(err, schemas.ErrSessionEnded):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeSessionEnded, err)
	}
	return err
}
