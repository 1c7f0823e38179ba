package server

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// createSessionRequest is the body of POST /api/sessions.
type createSessionRequest struct {
	Template           string                `json:"template"`
	Resources          *sessionResourcesJSON `json:"resources"`
	IdleTimeout        *string               `json:"idle_timeout"`
	MaxSessionDuration *string               `json:"max_session_duration"`
	PersistentHome     *bool                 `json:"persistent_home"`
	Tags               []string              `json:"tags"`
}

// sessionResourcesJSON is what a session holds: its CPU and memory limits as
// Kubernetes quantities.
type sessionResourcesJSON struct {
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
}

// patchSessionRequest is the body of PATCH /api/sessions/{id}.
type patchSessionRequest struct {
	State string `json:"state"`
}

// sessionJSON is a session as the API shows it. Phase is lowercase; node,
// pod_name and url are empty until the session runs (and pod_name and url
// are only known to the single-session view, which reads the live Session
// resource).
type sessionJSON struct {
	ID                 string               `json:"id"`
	User               string               `json:"user"`
	UserID             uuid.UUID            `json:"user_id"`
	Template           string               `json:"template"`
	State              string               `json:"state"`
	Phase              string               `json:"phase"`
	Message            string               `json:"message"`
	Node               string               `json:"node"`
	PodName            string               `json:"pod_name"`
	URL                string               `json:"url"`
	Resources          sessionResourcesJSON `json:"resources"`
	IdleTimeout        string               `json:"idle_timeout"`
	MaxSessionDuration string               `json:"max_session_duration"`
	PersistentHome     bool                 `json:"persistent_home"`
	Tags               []string             `json:"tags"`
	CreatedAt          time.Time            `json:"created_at"`
	UpdatedAt          time.Time            `json:"updated_at"`
	RunningAt          *time.Time           `json:"running_at"`
	LastActivityAt     *time.Time           `json:"last_activity_at"`
	EndedAt            *time.Time           `json:"ended_at"`
}

// toSessionJSON shows a read-model row; live, when not nil, is the Session
// resource, whose observed status is newer than the row's.
func toSessionJSON(row schemas.SessionRow, live *kubeapi.Session) sessionJSON {
	out := sessionJSON{ID: row.ID, User: row.Username, UserID: row.UserID, Template: row.Template,
		State: row.State, Phase: strings.ToLower(row.Phase), Message: row.Message, Node: row.NodeName,
		Resources:   sessionResourcesJSON{CPU: cpuString(row.CPUMillis), Memory: memoryString(row.MemoryBytes)},
		IdleTimeout: orZero(row.Spec.IdleTimeout), MaxSessionDuration: orZero(row.Spec.MaxSessionDuration),
		PersistentHome: row.Spec.PersistentHome == nil || *row.Spec.PersistentHome, Tags: nonNil(row.Spec.Tags),
		CreatedAt: row.CreatedAt.UTC(), UpdatedAt: row.UpdatedAt.UTC(), RunningAt: utcPtr(row.RunningAt),
		LastActivityAt: utcPtr(row.LastActivityAt), EndedAt: utcPtr(row.EndedAt)}
	if live != nil && row.Live() {
		st := live.Status
		if live.Spec.State != "" {
			out.State = live.Spec.State
		}
		if st.Phase != "" {
			out.Phase = strings.ToLower(st.Phase)
			out.Message = st.Message
		}
		if st.NodeName != "" {
			out.Node = st.NodeName
		}
		out.PodName, out.URL = st.PodName, st.URL
		if st.LastActivity != nil && (out.LastActivityAt == nil || st.LastActivity.After(*out.LastActivityAt)) {
			t := st.LastActivity.UTC()
			out.LastActivityAt = &t
		}
	}
	return out
}

func orZero(d string) string {
	if d == "" {
		return "0"
	}
	return d
}

// durationPattern is the CRD's pattern for idleTimeout and
// maxSessionDuration.
var durationPattern = regexp.MustCompile(`^(0|([0-9]+(\.[0-9]+)?(ms|s|m|h))+)$`)

// parseSessionDuration reads an optional duration field; absent means def.
// It answers the value as the Session records it and as a Duration.
func parseSessionDuration(field string, v *string, def time.Duration) (string, time.Duration, error) {
	if v == nil {
		if def <= 0 {
			return "0", 0, nil
		}
		return def.String(), def, nil
	}
	d, err := time.ParseDuration(*v)
	if *v == "0" {
		d, err = 0, nil
	}
	if err != nil || d < 0 || !durationPattern.MatchString(*v) {
		return "", 0, fieldError(field, `must be a duration such as "30m", "8h" or "1h30m", or "0" for none`)
	}
	return *v, d, nil
}

// parseSessionResources reads the requested cpu and memory.
func parseSessionResources(r *sessionResourcesJSON) (*kubeapi.Resources, error) {
	if r == nil {
		return nil, nil
	}
	for _, f := range []struct{ name, v string }{{"cpu", r.CPU}, {"memory", r.Memory}} {
		if f.v == "" {
			continue
		}
		q, err := resource.ParseQuantity(f.v)
		if err != nil || q.Sign() <= 0 {
			return nil, fieldError("resources."+f.name, fmt.Sprintf("%q is not a positive Kubernetes quantity such as 500m, 2 (cpu) or 512Mi, 2Gi (memory)", f.v))
		}
	}
	return &kubeapi.Resources{CPU: r.CPU, Memory: r.Memory}, nil
}

var notNameChars = regexp.MustCompile(`[^a-z0-9]+`)

// newSessionID names a session <user>-<template>-<8 random [a-z0-9]>, a
// DNS-1123 label (so it also fits the label values the controller puts on
// the session's pod): the user and template part is shortened to fit 63
// characters.
func newSessionID(username, template string) string {
	user := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(username), "-"), "-")
	if user == "" {
		user = "user"
	}
	tpl := strings.Trim(notNameChars.ReplaceAllString(template, "-"), "-")
	prefix := user + "-" + tpl
	const suffix = 9 // "-" and 8 random characters
	if len(prefix) > 63-suffix {
		prefix = prefix[:63-suffix]
	}
	prefix = strings.TrimRight(prefix, "-")
	return prefix + "-" + randomName(8)
}

// randomName is n random characters of [a-z2-7] (crypto/rand's base32).
func randomName(n int) string {
	return strings.ToLower(rand.Text()[:n])
}

// sessionPhaseParam maps the lowercase ?phase= to the stored phase.
func sessionPhaseParam(v string) (string, error) {
	switch v {
	case "":
		return "", nil
	case "pending":
		return kubeapi.PhasePending, nil
	case "running":
		return kubeapi.PhaseRunning, nil
	case "hibernated":
		return kubeapi.PhaseHibernated, nil
	case "failed":
		return kubeapi.PhaseFailed, nil
	case "terminated":
		return kubeapi.PhaseTerminated, nil
	}
	return "", fieldError("phase", "must be pending, running, hibernated, failed or terminated")
}
