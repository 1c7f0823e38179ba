package server

import (
	"time"

	"github.com/google/uuid"

	"github.com/streamspace/enterprise/schemas"
)

// alertJSON is a security alert as the API shows it. Unknown user, address
// or actor are null; details is always an object.
type alertJSON struct {
	ID             int64          `json:"id"`
	Kind           string         `json:"kind"`
	Severity       string         `json:"severity"`
	Status         string         `json:"status"`
	UserID         *uuid.UUID     `json:"user_id"`
	Username       string         `json:"username"`
	IPAddress      *string        `json:"ip_address"`
	Message        string         `json:"message"`
	Details        map[string]any `json:"details"`
	Count          int            `json:"count"`
	FirstSeen      time.Time      `json:"first_seen"`
	LastSeen       time.Time      `json:"last_seen"`
	AcknowledgedAt *time.Time     `json:"acknowledged_at"`
	AcknowledgedBy *uuid.UUID     `json:"acknowledged_by"`
	ResolvedAt     *time.Time     `json:"resolved_at"`
	ResolvedBy     *uuid.UUID     `json:"resolved_by"`
	ResolutionNote string         `json:"resolution_note"`
}

type alertListResponse struct {
	Alerts     []alertJSON `json:"alerts"`
	NextCursor *string     `json:"next_cursor"`
}

// resolveAlertRequest is the body of POST /api/security/alerts/{id}/resolve
// (optional: no body is no note).
type resolveAlertRequest struct {
	Note string `json:"note"`
}

// maxResolutionNote bounds a resolution note, in bytes.
const maxResolutionNote = 2000

func alertUUID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

func toAlertJSON(a schemas.SecurityAlert) alertJSON {
	out := alertJSON{
		ID:             a.ID,
		Kind:           a.Kind,
		Severity:       a.Severity,
		Status:         a.Status,
		UserID:         alertUUID(a.UserID),
		Username:       a.Username,
		Message:        a.Message,
		Details:        a.Details,
		Count:          a.Count,
		FirstSeen:      a.FirstSeen.UTC(),
		LastSeen:       a.LastSeen.UTC(),
		AcknowledgedAt: a.AcknowledgedAt,
		AcknowledgedBy: alertUUID(a.AcknowledgedBy),
		ResolvedAt:     a.ResolvedAt,
		ResolvedBy:     alertUUID(a.ResolvedBy),
		ResolutionNote: a.ResolutionNote,
	}
	if a.IP.IsValid() {
		ip := a.IP.String()
		out.IPAddress = &ip
	}
	if out.Details == nil {
		out.Details = map[string]any{}
	}
	return out
}
