package server

import (
	"strconv"
	"strings"
	"time"

	"github.com/streamspace/enterprise/schemas"
)

// mfaSetupRequest starts a method. A user who already has MFA also sends a
// fresh code of an existing factor (code, method?), as for removing one: a
// stolen access token alone must not add the thief's authenticator.
type mfaSetupRequest struct {
	Type        string `json:"type"`
	PhoneNumber string `json:"phone_number,omitempty"`
	Code        string `json:"code,omitempty"`
	Method      string `json:"method,omitempty"`
}

// mfaSetupResponse is the seed's {"mfa_id","secret","qr_code_url"} for
// TOTP; SMS and email methods answer where the first code went instead.
type mfaSetupResponse struct {
	MFAID         int64      `json:"mfa_id"`
	Type          string     `json:"type"`
	Secret        string     `json:"secret,omitempty"`
	QRCodeURL     string     `json:"qr_code_url,omitempty"`
	QRCodePNG     string     `json:"qr_code_png,omitempty"`
	PhoneNumber   string     `json:"phone_number,omitempty"`
	Email         string     `json:"email,omitempty"`
	CodeSent      bool       `json:"code_sent,omitempty"`
	CodeExpiresAt *time.Time `json:"code_expires_at,omitempty"`
}

// mfaCodeRequest carries a code: to verify a new method, or as the fresh
// proof a sensitive change needs (method optional: inferred).
type mfaCodeRequest struct {
	Code   string `json:"code"`
	Method string `json:"method,omitempty"`
}

type mfaVerifyResponse struct {
	Verified    bool     `json:"verified"`
	BackupCodes []string `json:"backup_codes,omitempty"`
}

type codeSentResponse struct {
	CodeSent  bool      `json:"code_sent"`
	ExpiresAt time.Time `json:"expires_at"`
}

type mfaMethodJSON struct {
	ID          int64      `json:"id"`
	Type        string     `json:"type"`
	Verified    bool       `json:"verified"`
	PhoneNumber string     `json:"phone_number,omitempty"`
	Email       string     `json:"email,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	VerifiedAt  *time.Time `json:"verified_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	// Restricted flags SMS: NIST SP 800-63B restricts it (SIM swap,
	// interception); prefer TOTP.
	Restricted bool `json:"restricted,omitempty"`
}

type mfaListResponse struct {
	Methods              []mfaMethodJSON `json:"methods"`
	MFAEnabled           bool            `json:"mfa_enabled"`
	BackupCodesRemaining int             `json:"backup_codes_remaining"`
	PolicyRequiresMFA    bool            `json:"policy_requires_mfa"`
}

func toMFAMethodJSON(m schemas.MFAMethod, u schemas.User) mfaMethodJSON {
	return mfaMethodJSON{ID: m.ID, Type: m.Type, Verified: m.Verified(), PhoneNumber: maskPhone(m.Phone),
		Email: maskEmailFor(m, u), CreatedAt: m.CreatedAt, VerifiedAt: m.VerifiedAt, LastUsedAt: m.LastUsedAt,
		Restricted: m.Type == schemas.MFASMS}
}

func mfaQRPath(id int64) string { return "/api/security/mfa/" + strconv.FormatInt(id, 10) + "/qr.png" }

// maskPhone keeps the last two digits: "+1•••••••67".
func maskPhone(p string) string {
	if len(p) < 4 {
		return p
	}
	return p[:2] + strings.Repeat("•", len(p)-4) + p[len(p)-2:]
}

// maskEmailFor shows where an email method sends codes: "a•••@example.com".
func maskEmailFor(m schemas.MFAMethod, u schemas.User) string {
	if m.Type != schemas.MFAEmail || u.Email == "" {
		return ""
	}
	local, domain, ok := strings.Cut(u.Email, "@")
	if !ok || local == "" {
		return ""
	}
	return local[:1] + "•••@" + domain
}
