package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/workflows"
)

// SessionConfig is the session API's configuration: the default quota and
// the timings sessions get when they ask for none.
type SessionConfig struct {
	// DefaultQuota is every user's quota unless an admin set their own
	// (per field). The zero Quota means DefaultSessionQuota.
	DefaultQuota schemas.Quota
	// StartTimeout bounds how long a session may take to reach Running (at
	// start and at wake); 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// DefaultIdleTimeout hibernates a session idle that long, unless the
	// request says otherwise; 0 never does.
	DefaultIdleTimeout time.Duration
	// DefaultMaxDuration terminates a session that long after it started,
	// unless the request says otherwise; 0 never does.
	DefaultMaxDuration time.Duration
}

// Defaults of SessionConfig's zero fields.
var (
	DefaultSessionQuota = schemas.Quota{MaxSessions: 5}
	DefaultStartTimeout = 5 * time.Minute
)

func (c SessionConfig) quota() schemas.Quota {
	if c.DefaultQuota == (schemas.Quota{}) {
		return DefaultSessionQuota
	}
	return c.DefaultQuota
}

func (c SessionConfig) startTimeout() time.Duration {
	if c.StartTimeout <= 0 {
		return DefaultStartTimeout
	}
	return c.StartTimeout
}

func quotaExceeded(e *schemas.QuotaExceededError) *Error {
	return &Error{Code: CodeQuotaExceeded,
		Message: fmt.Sprintf("quota exceeded: %s limit %g, this would use %g", e.Resource, e.Limit, e.Used),
		Details: map[string]any{"resource": e.Resource, "limit": e.Limit, "used": e.Used}}
}

// kube is the cluster, or 503 when the server has none.
func (s *Server) kube() (*activities.Kube, error) {
	if s.deps.Kube == nil {
		return nil, Errorf(CodeUnavailable, "sessions and templates need a Kubernetes cluster, and this server has none configured (set KUBECONFIG)")
	}
	return s.deps.Kube, nil
}

// sessionDeps are the cluster and the workflow client, or 503.
func (s *Server) sessionDeps() (*activities.Kube, *workflows.Client, error) {
	k, err := s.kube()
	if err != nil {
		return nil, nil, err
	}
	if s.deps.Workflows == nil {
		return nil, nil, Errorf(CodeUnavailable, "sessions need Temporal, and this server has no workflow client configured")
	}
	return k, s.deps.Workflows, nil
}

// kubeError maps a Kubernetes API error about a resource of kind (e.g.
// "template") to an API error.
func kubeError(kind string, err error) error {
	var netErr net.Error
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return Errorf(CodeNotFound, "no such %s", kind)
	case apierrors.IsAlreadyExists(err):
		return Errorf(CodeConflict, "a %s with that id already exists", kind)
	case apierrors.IsConflict(err):
		return Errorf(CodeConflict, "the %s was changed concurrently; retry", kind)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		// The apiserver's schema (the CRD) refused the object: its message
		// names the field.
		var status apierrors.APIStatus
		e := &Error{Code: CodeValidation, Message: "Invalid request parameters",
			Details: map[string]any{"field": "body", "issue": err.Error()}}
		if errors.As(err, &status) {
			if d := status.Status().Details; d != nil && len(d.Causes) > 0 {
				e.Details["field"] = apiField(d.Causes[0].Field)
				e.Details["issue"] = d.Causes[0].Message
				e.Details["apiserver_message"] = status.Status().Message
			}
		}
		return e
	case apierrors.IsServiceUnavailable(err), apierrors.IsTimeout(err), apierrors.IsServerTimeout(err),
		apierrors.IsTooManyRequests(err), errors.As(err, &netErr):
		return Errorf(CodeUnavailable, "the Kubernetes API is not reachable; try again")
	}
	return fmt.Errorf("kubernetes %s: %w", kind, err)
}

// apiField names a resource's field as the API does: spec.baseImage is
// base_image, spec.ports[0].containerPort is ports[0].container_port,
// metadata.name is id.
func apiField(f string) string {
	if f == "metadata.name" {
		return "id"
	}
	f = strings.TrimPrefix(f, "spec.")
	var b strings.Builder
	for _, r := range f {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// errSessionEnded answers changes to a session that has failed or been
// terminated.
func errSessionEnded(id string) *Error {
	return Errorf(CodeConflict, "session %s has ended", id)
}

// workflowError maps an error of a session Update, Signal or start to an
// API error.
func workflowError(sessionID string, err error) error {
	var (
		appErr   *temporal.ApplicationError
		notFound *serviceerror.NotFound
		timeout  *client.WorkflowUpdateServiceTimeoutOrCanceledError
		unavail  *serviceerror.Unavailable
		deadline *serviceerror.DeadlineExceeded
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &appErr):
		switch appErr.Type() {
		case workflows.ErrTypeInvalidTransition:
			return Errorf(CodeConflict, "%s", appErr.Message())
		case workflows.ErrTypeQuotaExceeded:
			var q schemas.QuotaExceededError
			if appErr.HasDetails() && appErr.Details(&q) == nil && q.Resource != "" {
				return quotaExceeded(&q)
			}
			return &Error{Code: CodeQuotaExceeded, Message: appErr.Message(), Details: map[string]any{}}
		case workflows.ErrTypeSessionFailed:
			return Errorf(CodeConflict, "%s", appErr.Message())
		}
	case errors.As(err, &notFound):
		return errSessionEnded(sessionID)
	case errors.As(err, &timeout), errors.As(err, &unavail), errors.As(err, &deadline),
		errors.Is(err, context.DeadlineExceeded):
		return Errorf(CodeUnavailable, "the session service (Temporal) did not answer in time; "+
			"a change may still complete: follow the session with GET /api/sessions/%s", sessionID)
	}
	return fmt.Errorf("session %s workflow: %w", sessionID, err)
}

// cpuString renders millicores as a Kubernetes quantity ("500m", "2").
func cpuString(millis int64) string {
	return resource.NewMilliQuantity(millis, resource.DecimalSI).String()
}

// memoryString renders bytes as a Kubernetes quantity ("512Mi", "2Gi").
func memoryString(bytes int64) string {
	return resource.NewQuantity(bytes, resource.BinarySI).String()
}
