package schemas

import (
	"net/netip"
	"time"

	"github.com/google/uuid"
)

// The security feature's rows (migration 00008): MFA methods and codes, the
// IP allowlist and security alerts. Each has its store in its own file
// (mfa*.go, ip_allowlist.go, security_alerts.go).

// Lockout rule (PCI DSS v4.0.1 8.3.4: at most 10 tries, at least 30 minutes).
const (
	LockoutThreshold = 10
	LockoutDuration  = 30 * time.Minute
)

// MFA method types.
const (
	MFATOTP  = "totp"
	MFASMS   = "sms"
	MFAEmail = "email"
	// MFABackup names a backup code where a method is expected (login).
	MFABackup = "backup"
)

// MFA policies (security_settings.mfa_required).
const (
	MFAPolicyOff      = "off"
	MFAPolicyAdmins   = "admins"
	MFAPolicyEveryone = "everyone"
)

// MFAMethod is one of a user's second factors. SecretSealed is the TOTP seed
// sealed with ENCRYPTION_KEY; it never leaves the server after setup.
type MFAMethod struct {
	ID           int64
	UserID       uuid.UUID
	Type         string // MFATOTP | MFASMS | MFAEmail
	SecretSealed []byte
	Phone        string
	VerifiedAt   *time.Time
	LastTOTPStep *int64
	LastUsedAt   *time.Time
	CreatedAt    time.Time
}

// Verified reports whether the method completed setup.
func (m MFAMethod) Verified() bool { return m.VerifiedAt != nil }

// IPEntry is one allowlist entry. UserID uuid.Nil = a global entry. Granted
// marks a per-user entry an admin created: it admits its user even from
// outside the global list. ExpiresAt makes it temporary.
type IPEntry struct {
	ID          int64
	UserID      uuid.UUID
	Prefix      netip.Prefix // a single address is a /32 or /128
	Description string
	Enabled     bool
	Granted     bool // an admin's grant for the user: widens their access
	Restricted  bool // an admin's restriction of the user: confines them to it
	ExpiresAt   *time.Time
	ExpiredAt   *time.Time // set when the grant workflow disabled it
	CreatedBy   uuid.UUID
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Global reports whether the entry applies to every user.
func (e IPEntry) Global() bool { return e.UserID == uuid.Nil }

// Active reports whether the entry admits anyone at now: enabled and not
// past its expiry.
func (e IPEntry) Active(now time.Time) bool {
	return e.Enabled && (e.ExpiresAt == nil || now.Before(*e.ExpiresAt))
}

// Alert kinds: the seed's five.
const (
	AlertFailedLogin         = "failed_login"
	AlertUnusualAccess       = "unusual_access"
	AlertMFAChange           = "mfa_change"
	AlertIPViolation         = "ip_violation"
	AlertPrivilegeEscalation = "privilege_escalation"
)

// Alert severities and statuses.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"

	AlertOpen         = "open"
	AlertAcknowledged = "acknowledged"
	AlertResolved     = "resolved"
)

// AlertInput is what raises an alert. DedupKey folds repeats into the open
// alert with the same key; "" = kind, user and address.
type AlertInput struct {
	Kind     string
	Severity string
	UserID   uuid.UUID // uuid.Nil when no account is known
	Username string
	IP       netip.Addr // invalid when unknown
	Message  string
	Details  map[string]any
	DedupKey string
}

// SecurityAlert is a stored alert.
type SecurityAlert struct {
	ID             int64
	Kind           string
	Severity       string
	Status         string
	UserID         uuid.UUID
	Username       string
	IP             netip.Addr
	Message        string
	Details        map[string]any
	Count          int
	FirstSeen      time.Time
	LastSeen       time.Time
	AcknowledgedAt *time.Time
	AcknowledgedBy uuid.UUID
	ResolvedAt     *time.Time
	ResolvedBy     uuid.UUID
	ResolutionNote string
}
