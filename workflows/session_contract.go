package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
)

// SessionWorkflowID is the workflow ID of a session's lifecycle run; one run
// (and its continue-as-new successors) per session.
func SessionWorkflowID(sessionID string) string { return "session/" + sessionID }

// Names of the session lifecycle's Updates, Signal and Query.
const (
	UpdateHibernate = "hibernate" // running → hibernated: the pod is removed, the Session kept
	UpdateWake      = "wake"      // hibernated → running: quota re-checked, the pod recreated
	UpdateTerminate = "terminate" // any → terminated: the Session (and its pod) deleted; the run ends
	SignalActivity  = "activity"  // the user is active: resets the idle timer
	SignalObserved  = "observed"  // SessionObserved: the Session was deleted or failed outside the run
	QueryStatus     = "status"    // SessionStatus
)

// SessionIDAttr tags each session lifecycle run with its session ID and
// SessionUserAttr with the owner's username, so operators find a session's
// run in the Web UI with StreamSpaceSessionUser = "alice".
var (
	SessionIDAttr   = temporal.NewSearchAttributeKeyKeyword("StreamSpaceSessionID")
	SessionUserAttr = temporal.NewSearchAttributeKeyKeyword("StreamSpaceSessionUser")
)

// SessionInput starts (or continues) a session's lifecycle run. Only the ID
// and timings travel through Temporal; activities read the session's spec
// from the database.
type SessionInput struct {
	SessionID string
	// StartTimeout bounds how long the session may take to reach Running
	// (at start and at wake); past it the session fails with the reason.
	StartTimeout time.Duration
	// IdleTimeout hibernates a running session with no activity for that
	// long; 0 never does.
	IdleTimeout time.Duration
	// MaxDuration terminates the session that long after it started; 0
	// never does.
	MaxDuration time.Duration

	// Carried across continue-as-new; zero on the first run.
	Continued    bool
	StartedAt    time.Time // when the session first reached Running
	LastActivity time.Time
	State        string // kubeapi.State* at the hand-over
}

// SessionStatus is what the status Query and the Updates answer.
type SessionStatus struct {
	SessionID    string
	State        string // kubeapi.State*
	Phase        string // kubeapi.Phase*
	Message      string
	NodeName     string
	StartedAt    time.Time
	LastActivity time.Time
	// Deadlines the run is holding; zero when none.
	IdleDeadline time.Time
	EndDeadline  time.Time
}

// SessionObserved is the observed Signal's argument: what the session
// watcher (worker/sessionwatch) saw happen to the Session resource that the
// run did not do itself.
type SessionObserved struct {
	Change  string // ObservedDeleted or ObservedFailed
	Message string // the Session's status.message when it failed
}

// Changes a SessionObserved reports.
const (
	// ObservedDeleted: the Session is gone (kubectl delete, a namespace
	// deleted); the run records the session terminated and ends.
	ObservedDeleted = "deleted"
	// ObservedFailed: the Session's phase turned Failed while it ran (its pod
	// failed mid-life); the run fails the session and ends.
	ObservedFailed = "failed"
)

// TerminateRequest is the terminate Update's argument.
type TerminateRequest struct {
	Reason string // recorded on the session and its session.deleted event
}

// Application error types the session Updates fail with, for the server to
// map to HTTP answers.
const (
	ErrTypeInvalidTransition = "InvalidSessionTransition" // e.g. hibernating a hibernated session
	ErrTypeQuotaExceeded     = "QuotaExceeded"            // waking would break the user's quota; details: schemas.QuotaExceededError
	ErrTypeSessionFailed     = "SessionFailed"            // the session did not reach Running in time
)
