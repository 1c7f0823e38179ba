package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/streamspace/enterprise/schemas"
)

// Session quotas: what one user's live sessions may hold at once. Every user
// has the configured default (SessionConfig.DefaultQuota); an admin may set
// a user's own limits per field.
//
//	GET /api/me/quota                   the caller's limits and usage
//	GET /api/admin/users/{id}/quota     a user's own limits, effective limits and usage
//	PUT /api/admin/users/{id}/quota     replaces a user's own limits (null: the default)

// quotaLimitsJSON are effective limits: CPU in cores and memory in bytes,
// null when unlimited.
type quotaLimitsJSON struct {
	MaxSessions int      `json:"max_sessions"`
	CPU         *float64 `json:"cpu"`
	Memory      *int64   `json:"memory"`
}

// quotaUsageJSON is what a user's live sessions hold: every live session
// counts, and running or starting ones (not hibernated) hold CPU (cores)
// and memory (bytes).
type quotaUsageJSON struct {
	Sessions int     `json:"sessions"`
	CPU      float64 `json:"cpu"`
	Memory   int64   `json:"memory"`
}

type myQuotaJSON struct {
	Limits quotaLimitsJSON `json:"limits"`
	Usage  quotaUsageJSON  `json:"usage"`
}

// userQuotaJSON is a user's own limits as an admin sets them (quantities;
// null takes the default), with the effective limits and the usage.
type userQuotaJSON struct {
	UserID      uuid.UUID       `json:"user_id"`
	MaxSessions *int            `json:"max_sessions"`
	CPU         *string         `json:"cpu"`
	Memory      *string         `json:"memory"`
	Effective   quotaLimitsJSON `json:"effective"`
	Usage       quotaUsageJSON  `json:"usage"`
}

// putQuotaRequest replaces a user's own limits; an absent or null field
// takes the default. cpu "0" or memory "0" means no limit.
type putQuotaRequest struct {
	MaxSessions *int    `json:"max_sessions"`
	CPU         *string `json:"cpu"`
	Memory      *string `json:"memory"`
}

func toLimitsJSON(q schemas.Quota) quotaLimitsJSON {
	out := quotaLimitsJSON{MaxSessions: q.MaxSessions}
	if q.CPUMillis > 0 {
		cores := float64(q.CPUMillis) / 1000
		out.CPU = &cores
	}
	if q.MemoryBytes > 0 {
		m := q.MemoryBytes
		out.Memory = &m
	}
	return out
}

func toUsageJSON(u schemas.Usage) quotaUsageJSON {
	return quotaUsageJSON{Sessions: u.Sessions, CPU: float64(u.CPUMillis) / 1000, Memory: u.MemoryBytes}
}

// quotaOf is a user's own limits, effective limits and usage.
func (s *Server) quotaOf(ctx context.Context, userID uuid.UUID) (schemas.QuotaOverride, schemas.Quota, schemas.Usage, error) {
	o, err := s.deps.Store.GetQuotaOverride(ctx, userID)
	if err != nil {
		return o, schemas.Quota{}, schemas.Usage{}, err
	}
	u, err := s.deps.Store.UsageOf(ctx, userID)
	if err != nil {
		return o, schemas.Quota{}, schemas.Usage{}, err
	}
	return o, o.Apply(s.cfg.Sessions.quota()), u, nil
}

func (s *Server) getMyQuota(w http.ResponseWriter, r *http.Request) error {
	p, _ := principalFrom(r.Context())
	_, q, u, err := s.quotaOf(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, myQuotaJSON{Limits: toLimitsJSON(q), Usage: toUsageJSON(u)})
	return nil
}

func (s *Server) getUserQuota(w http.ResponseWriter, r *http.Request) error {
	id, err := userIDParam(r)
	if err != nil {
		return err
	}
	if _, err := s.deps.Store.GetUser(r.Context(), id); err != nil {
		return storeError(err)
	}
	return s.answerUserQuota(w, r, id)
}

func (s *Server) answerUserQuota(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
	o, q, u, err := s.quotaOf(r.Context(), id)
	if err != nil {
		return err
	}
	out := userQuotaJSON{UserID: id, MaxSessions: o.MaxSessions, Effective: toLimitsJSON(q), Usage: toUsageJSON(u)}
	if o.CPUMillis != nil {
		v := cpuString(*o.CPUMillis)
		out.CPU = &v
	}
	if o.MemoryBytes != nil {
		v := memoryString(*o.MemoryBytes)
		out.Memory = &v
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) putUserQuota(w http.ResponseWriter, r *http.Request) error {
	id, err := userIDParam(r)
	if err != nil {
		return err
	}
	var req putQuotaRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	var o schemas.QuotaOverride
	if req.MaxSessions != nil {
		if *req.MaxSessions < 0 || *req.MaxSessions > 10000 {
			return fieldError("max_sessions", "must be a whole number from 0 to 10000, or null for the default")
		}
		o.MaxSessions = req.MaxSessions
	}
	if o.CPUMillis, err = quotaQuantity("cpu", req.CPU, func(q resource.Quantity) int64 { return q.MilliValue() }); err != nil {
		return err
	}
	if o.MemoryBytes, err = quotaQuantity("memory", req.Memory, func(q resource.Quantity) int64 { return q.Value() }); err != nil {
		return err
	}
	if err := s.deps.Store.SetQuotaOverride(r.Context(), id, o); err != nil {
		return storeError(err)
	}
	auditSetDetail(r.Context(), "quota", map[string]any{"max_sessions": req.MaxSessions, "cpu": req.CPU, "memory": req.Memory})
	return s.answerUserQuota(w, r, id)
}

// quotaQuantity parses an optional limit quantity.
func quotaQuantity(field string, v *string, value func(resource.Quantity) int64) (*int64, error) {
	if v == nil {
		return nil, nil
	}
	q, err := resource.ParseQuantity(*v)
	if err != nil || q.Sign() < 0 {
		return nil, fieldError(field, fmt.Sprintf("%q is not a Kubernetes quantity such as 4 or 500m (cpu) or 8Gi (memory); \"0\" means no limit, null the default", *v))
	}
	n := value(q)
	return &n, nil
}
