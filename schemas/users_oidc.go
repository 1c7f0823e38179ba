package schemas

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"
	"golang.org/x/text/unicode/norm"
)

// OIDCIdentity is what a verified token from an external OIDC issuer says
// about its subject, already mapped to StreamSpace terms by the verifier.
type OIDCIdentity struct {
	Issuer  string // the token's iss (required)
	Subject string // the token's sub (required): with Issuer, the identity's key
	// Username is the preferred username (the configured claim); it is
	// sanitized, and Email then "oidc-"+Subject are the fallbacks.
	Username    string
	Email       string // "" when absent or not verified by the IdP
	DisplayName string
	// Role is "user" or "admin" when the IdP is the authority for roles (a
	// role claim is configured); "" leaves the role alone, and a new user
	// then gets "user".
	Role string
	// ClientIP is the address of the request that presented the token
	// (optional): the privilege_escalation alert a role change raises
	// names it.
	ClientIP netip.Addr
}

// ProvisionOIDCUser returns the account of an OIDC identity, creating it on
// first sight and updating username, email, display name and role when the
// IdP's claims no longer match it. created is true for a new account; changed
// names the fields an update changed (nil when nothing changed). A user.created
// or user.updated event is published in the transaction that writes the row,
// and so is a privilege_escalation alert (RoleChangeAlert) when the IdP's
// claim changes the account's role or creates it as an admin.
//
// The account is found by (issuer, subject) only. It is never linked to an
// existing account whose username or email happens to match: an IdP where
// anyone can register (or set their own email or username) would otherwise let
// them sign in as that local user, an account takeover. A taken username gets a
// deterministic suffix instead (see candidateUsernames), and a taken email is
// left empty on the OIDC account.
//
// The common case, a known identity whose claims have not changed, is one
// indexed read without a transaction. Concurrent first requests of the same
// new identity are serialized by a transaction-scoped advisory lock on the
// identity, so exactly one creates the row and the others see it; a username
// or email taken concurrently by someone else is retried.
//
// A deactivated account is returned as it is, unchanged: refusing it is the
// caller's decision.
func (s *Store) ProvisionOIDCUser(ctx context.Context, id OIDCIdentity) (u User, created bool, changed []string, err error) {
	if id.Issuer == "" || id.Subject == "" {
		return User{}, false, nil, errors.New("provision oidc user: issuer and subject are required")
	}
	if id.Role != "" && id.Role != "user" && id.Role != "admin" {
		return User{}, false, nil, fmt.Errorf("provision oidc user: unknown role %q", id.Role)
	}
	u, err = s.GetUserByOIDC(ctx, id.Issuer, id.Subject)
	switch {
	case err == nil:
		if !u.Active || upToDate(u, id) {
			return u, false, nil, nil
		}
	case !errors.Is(err, ErrNotFound):
		return User{}, false, nil, fmt.Errorf("provision oidc user: %w", err)
	}
	const attempts = 4
	for range attempts {
		u, created, changed, err = s.provisionOIDCUserTx(ctx, id)
		if !errors.Is(err, ErrConflict) {
			break
		}
		// A username or email was taken between our check and our write
		// by another account; the next attempt sees it and picks another.
	}
	if err != nil {
		return User{}, false, nil, fmt.Errorf("provision oidc user: %w", err)
	}
	return u, created, changed, nil
}

// oidcLockClass is the first key of the advisory locks that serialize the
// provisioning of one OIDC identity (the two-int key space is separate from
// the bigint one goose uses).
const oidcLockClass = 0x0D1C

func (s *Store) provisionOIDCUserTx(ctx context.Context, id OIDCIdentity) (u User, created bool, changed []string, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2 || chr(10) || $3))`,
			oidcLockClass, id.Issuer, id.Subject); err != nil {
			return fmt.Errorf("lock oidc identity: %w", err)
		}
		cur, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users
			WHERE oidc_issuer = $1 AND oidc_subject = $2 FOR UPDATE`, id.Issuer, id.Subject))
		switch {
		case errors.Is(err, ErrNotFound):
			u, err = insertOIDCUser(ctx, tx, id)
			created = err == nil
			return err
		case err != nil:
			return fmt.Errorf("lock oidc user: %w", err)
		case !cur.Active || upToDate(cur, id):
			u = cur // another request updated it meanwhile, or it is deactivated
			return nil
		}
		u, changed, err = updateOIDCUser(ctx, tx, cur, id)
		return err
	})
	if err != nil {
		return User{}, false, nil, err
	}
	return u, created, changed, nil
}

func insertOIDCUser(ctx context.Context, tx pgx.Tx, id OIDCIdentity) (User, error) {
	u := User{
		DisplayName: id.DisplayName,
		Role:        id.Role,
		Active:      true,
		OIDCIssuer:  id.Issuer,
		OIDCSubject: id.Subject,
	}
	if u.Role == "" {
		u.Role = "user"
	}
	var err error
	if u.Username, err = freeUsername(ctx, tx, id, nil); err != nil {
		return User{}, err
	}
	if u.Email, err = freeEmail(ctx, tx, id.Email, nil); err != nil {
		return User{}, err
	}
	if err := InsertUser(ctx, tx, &u); err != nil {
		return User{}, err
	}
	if _, err := Publish(ctx, tx, Event{Type: EventUserCreated, Data: UserEventData{
		UserID: u.ID.String(), Username: u.Username, Email: u.Email, Role: u.Role,
	}}); err != nil {
		return User{}, err
	}
	if u.Role == "admin" {
		if err := raiseOIDCRoleAlert(ctx, tx, id, u, ""); err != nil {
			return User{}, err
		}
	}
	return u, nil
}

func updateOIDCUser(ctx context.Context, tx pgx.Tx, cur User, id OIDCIdentity) (User, []string, error) {
	u := cur
	var changed []string
	if !usernameMatches(cur.Username, id) {
		name, err := freeUsername(ctx, tx, id, &cur)
		if err != nil {
			return User{}, nil, err
		}
		if name != cur.Username {
			u.Username = name
			changed = append(changed, "username")
		}
	}
	if !strings.EqualFold(cur.Email, id.Email) {
		email, err := freeEmail(ctx, tx, id.Email, &cur)
		if err != nil {
			return User{}, nil, err
		}
		if email != cur.Email {
			u.Email = email
			changed = append(changed, "email")
		}
	}
	if cur.DisplayName != id.DisplayName {
		u.DisplayName = id.DisplayName
		changed = append(changed, "display_name")
	}
	if id.Role != "" && cur.Role != id.Role {
		u.Role = id.Role
		changed = append(changed, "role")
	}
	if len(changed) == 0 {
		return cur, nil, nil
	}
	if err := UpdateUser(ctx, tx, &u); err != nil {
		return User{}, nil, err
	}
	if _, err := Publish(ctx, tx, Event{Type: EventUserUpdated, Data: UserEventData{
		UserID: u.ID.String(), Username: u.Username, Email: u.Email, Role: u.Role, Changed: changed,
	}}); err != nil {
		return User{}, nil, err
	}
	if u.Role != cur.Role {
		if err := raiseOIDCRoleAlert(ctx, tx, id, u, cur.Role); err != nil {
			return User{}, nil, err
		}
	}
	return u, changed, nil
}

// raiseOIDCRoleAlert raises, in the transaction that gives u its role, the
// alert that the identity provider gave it (oldRole "" for a new account).
func raiseOIDCRoleAlert(ctx context.Context, tx pgx.Tx, id OIDCIdentity, u User, oldRole string) error {
	in := RoleChangeAlert(RoleActor{Issuer: id.Issuer}, u, oldRole)
	in.IP = id.ClientIP
	_, _, err := raiseAlertTx(ctx, tx, in)
	return err
}

// upToDate reports whether u already reflects id, so no write is needed.
// An email that was left empty because another account has it counts as a
// difference; the transaction then finds nothing to change.
func upToDate(u User, id OIDCIdentity) bool {
	return usernameMatches(u.Username, id) &&
		strings.EqualFold(u.Email, id.Email) &&
		u.DisplayName == id.DisplayName &&
		(id.Role == "" || u.Role == id.Role)
}

// usernameMatches reports whether username is one the identity's current
// claims could have produced, so a user who got a suffix because the plain
// name was taken keeps it rather than flipping when that name frees up.
func usernameMatches(username string, id OIDCIdentity) bool {
	for _, c := range candidateUsernames(id) {
		if username == c {
			return true
		}
	}
	return false
}

// freeUsername picks the first candidate username not held by another
// account (case-insensitively, as the unique index compares). self, when
// not nil, is the account being updated: its own name does not count as taken.
func freeUsername(ctx context.Context, tx pgx.Tx, id OIDCIdentity, self *User) (string, error) {
	for _, c := range candidateUsernames(id) {
		taken, err := takenBy(ctx, tx, `lower(username) = lower($1)`, c, self)
		if err != nil {
			return "", err
		}
		if !taken {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w: every username candidate for the oidc identity is taken", ErrConflict)
}

// freeEmail returns email, or "" when another account already has it (the
// email is informational here; it never links accounts).
func freeEmail(ctx context.Context, tx pgx.Tx, email string, self *User) (string, error) {
	if email == "" {
		return "", nil
	}
	taken, err := takenBy(ctx, tx, `lower(email) = lower($1)`, email, self)
	if err != nil || taken {
		return "", err
	}
	return email, nil
}

func takenBy(ctx context.Context, tx pgx.Tx, cond, value string, self *User) (bool, error) {
	var taken bool
	var selfID any // NULL when there is no account to exclude
	if self != nil {
		selfID = self.ID
	}
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE `+cond+`
		AND ($2::uuid IS NULL OR id <> $2::uuid))`, value, selfID).Scan(&taken)
	if err != nil {
		return false, fmt.Errorf("check %s: %w", cond, err)
	}
	return taken, nil
}

// maxUsernameLen is the longest username the users table accepts.
const maxUsernameLen = 64

// candidateUsernames lists, in order of preference, the usernames an OIDC
// identity may get: the sanitized preferred name (or email, or
// "oidc-"+subject), then the same with a suffix derived from a hash of the
// issuer and subject, then a longer one, then "oidc-"+a long hash. The
// suffixes are deterministic, so the same identity always lands on the same
// name, and two identities wanting "alice" get different ones.
func candidateUsernames(id OIDCIdentity) []string {
	base := SanitizeUsername(id.Username)
	if base == "" {
		base = SanitizeUsername(id.Email)
	}
	if base == "" {
		if sub := SanitizeUsername(id.Subject); sub != "" {
			base = "oidc-" + truncate(sub, 12)
		}
	}
	sum := sha256.Sum256([]byte(id.Issuer + "\n" + id.Subject))
	h := hex.EncodeToString(sum[:])
	var out []string
	if base != "" {
		out = append(out,
			base,
			strings.TrimRight(truncate(base, maxUsernameLen-9), "-")+"-"+h[:8],
			strings.TrimRight(truncate(base, maxUsernameLen-17), "-")+"-"+h[:16],
		)
	}
	return append(out, "oidc-"+h[:32])
}

// SanitizeUsername maps s into the users table's username pattern
// ^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$: accents are dropped (José → Jose), other
// characters outside the set become '-', runs of '-' collapse, leading
// characters that are not letters or digits go, and the result is cut to 64
// characters. It returns "" when nothing usable is left.
func SanitizeUsername(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.TrimSpace(s)) {
		switch {
		case unicode.Is(unicode.Mn, r):
			// a combining accent of the previous letter
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '.' || r == '_' || r == '@' || r == '-':
			if r == '-' && strings.HasSuffix(b.String(), "-") {
				continue
			}
			b.WriteRune(r)
		default:
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	out := strings.TrimLeftFunc(b.String(), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
	out = truncate(out, maxUsernameLen)
	return strings.TrimRight(out, "-")
}

// truncate cuts an ASCII string to at most n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
