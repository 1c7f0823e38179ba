package schemas_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

const testIssuer = "https://login.example.com/realms/acme"

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func suffix(issuer, subject string, n int) string {
	sum := sha256.Sum256([]byte(issuer + "\n" + subject))
	return hex.EncodeToString(sum[:])[:n]
}

func TestOIDCSanitizeUsername(t *testing.T) {
	t.Parallel()
	long := "a123456789b123456789c123456789d123456789e123456789f123456789g123456789"
	for in, want := range map[string]string{
		"alice":                "alice",
		"Alice.Smith@corp.io":  "Alice.Smith@corp.io",
		"José García":          "Jose-Garcia",
		"  -_.bob":             "bob",
		"o'brien":              "o-brien",
		"a  //  b":             "a-b",
		"trailing!":            "trailing",
		"日本語":                  "",
		"":                     "",
		"---":                  "",
		long:                   long[:64],
		"user name with space": "user-name-with-space",
	} {
		got := schemas.SanitizeUsername(in)
		require.Equal(t, want, got, "SanitizeUsername(%q)", in)
		if got != "" {
			require.Regexp(t, usernamePattern, got)
		}
	}
}

func insertLocalUser(t *testing.T, store *schemas.Store, username, email string) schemas.User {
	t.Helper()
	u := schemas.User{Username: username, Email: email, Role: "admin", Active: true, PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$aGFzaA"}
	require.NoError(t, store.InTx(context.Background(), func(tx pgx.Tx) error { return schemas.InsertUser(context.Background(), tx, &u) }))
	return u
}

func countEvents(t *testing.T, store *schemas.Store, typ schemas.EventType, userID string) int {
	t.Helper()
	var n int
	require.NoError(t, store.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM events WHERE type = $1 AND payload->>'user_id' = $2`, string(typ), userID).Scan(&n))
	return n
}

func TestOIDCProvisionNeverLinksToLocalAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	local := insertLocalUser(t, store, "alice", "alice@example.com")

	// Someone at the IdP claims alice's username and email.
	id := schemas.OIDCIdentity{Issuer: testIssuer, Subject: "sub-impostor", Username: "Alice", Email: "ALICE@example.com",
		DisplayName: "Alice?", Role: "user"}
	u, created, changed, err := store.ProvisionOIDCUser(ctx, id)
	require.NoError(t, err)
	require.True(t, created)
	require.Nil(t, changed)
	require.NotEqual(t, local.ID, u.ID, "a matching username or email never links accounts")
	require.Equal(t, "Alice-"+suffix(testIssuer, "sub-impostor", 8), u.Username)
	require.Empty(t, u.Email, "the email belongs to another account")
	require.Equal(t, "user", u.Role)
	require.Equal(t, 1, countEvents(t, store, schemas.EventUserCreated, u.ID.String()))

	after, err := store.GetUser(ctx, local.ID)
	require.NoError(t, err)
	require.Equal(t, local.Username, after.Username)
	require.Equal(t, local.Email, after.Email)
	require.Equal(t, local.PasswordHash, after.PasswordHash)
	require.Empty(t, after.OIDCSubject)

	// The same identity again: the same account, nothing written, even
	// though its email still differs from the claim.
	again, created, changed, err := store.ProvisionOIDCUser(ctx, id)
	require.NoError(t, err)
	require.False(t, created)
	require.Nil(t, changed)
	require.Equal(t, u.ID, again.ID)
	require.Equal(t, u.Username, again.Username)
	require.Zero(t, countEvents(t, store, schemas.EventUserUpdated, u.ID.String()))

	// The plain name frees up: the suffixed name stays (no flip-flopping).
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error { return schemas.DeleteUser(ctx, tx, local.ID) }))
	again, _, changed, err = store.ProvisionOIDCUser(ctx, schemas.OIDCIdentity{Issuer: testIssuer, Subject: "sub-impostor",
		Username: "Alice", DisplayName: "Alice?", Role: "user"})
	require.NoError(t, err)
	require.Nil(t, changed)
	require.Equal(t, u.Username, again.Username)

	// A second identity wanting the same name gets its own suffix.
	other, created, _, err := store.ProvisionOIDCUser(ctx, schemas.OIDCIdentity{Issuer: testIssuer, Subject: "sub-other",
		Username: "alice-" + suffix(testIssuer, "sub-impostor", 8)})
	require.NoError(t, err)
	require.True(t, created)
	require.NotEqual(t, u.Username, other.Username)
	require.Regexp(t, usernamePattern, other.Username)
}

func TestOIDCProvisionUsernameFallbacks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	for _, tc := range []struct {
		name string
		id   schemas.OIDCIdentity
		want string
	}{
		{"Claim", schemas.OIDCIdentity{Subject: "s1", Username: "Zoë Quinn", Email: "zq@example.com"}, "Zoe-Quinn"},
		{"Email", schemas.OIDCIdentity{Subject: "s2", Email: "mail.only@example.com"}, "mail.only@example.com"},
		{"UnusableClaimFallsBackToEmail", schemas.OIDCIdentity{Subject: "s3", Username: "名前", Email: "kanji@example.com"}, "kanji@example.com"},
		{"Subject", schemas.OIDCIdentity{Subject: "248289761001-abcdef-0123"}, "oidc-248289761001"},
		{"NothingUsable", schemas.OIDCIdentity{Subject: "|||"}, "oidc-" + suffix(testIssuer, "|||", 32)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.id.Issuer = testIssuer
			u, created, _, err := store.ProvisionOIDCUser(ctx, tc.id)
			require.NoError(t, err)
			require.True(t, created)
			require.Equal(t, tc.want, u.Username)
			require.Equal(t, "user", u.Role, "no role from the IdP: a new account is a user")
		})
	}
}

func TestOIDCProvisionConcurrentUsernameRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	// Different identities all wanting "bob" at once: every one gets an
	// account, with distinct names, and one of them is "bob".
	const n = 6
	names := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			u, _, _, err := store.ProvisionOIDCUser(ctx, schemas.OIDCIdentity{
				Issuer: testIssuer, Subject: fmt.Sprintf("bob-%d", i), Username: "bob", Email: "bob@example.com"})
			names[i], errs[i] = u.Username, err
		})
	}
	close(start)
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		require.NoError(t, errs[i])
		require.False(t, seen[names[i]], "username %s given twice", names[i])
		seen[names[i]] = true
	}
	require.True(t, seen["bob"])
	var withEmail int
	require.NoError(t, store.Pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE email IS NOT NULL`).Scan(&withEmail))
	require.Equal(t, 1, withEmail, "the email goes to one account only")
}

func TestOIDCProvisionUpdateInOneTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	id := schemas.OIDCIdentity{Issuer: testIssuer, Subject: "sub-gina", Username: "gina", Email: "gina@example.com", DisplayName: "Gina", Role: "user"}
	u, _, _, err := store.ProvisionOIDCUser(ctx, id)
	require.NoError(t, err)

	// A local user holds the email the IdP now sends: the OIDC account's
	// email is cleared rather than the update failing.
	insertLocalUser(t, store, "someone", "new@example.com")
	id.Email, id.DisplayName, id.Role = "new@example.com", "Gina G.", "admin"
	got, created, changed, err := store.ProvisionOIDCUser(ctx, id)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, []string{"email", "display_name", "role"}, changed)
	require.Equal(t, u.ID, got.ID)
	require.Empty(t, got.Email)
	require.Equal(t, "admin", got.Role)
	require.Equal(t, 1, countEvents(t, store, schemas.EventUserUpdated, u.ID.String()))

	// Unknown roles and missing keys are refused before touching the database.
	_, _, _, err = store.ProvisionOIDCUser(ctx, schemas.OIDCIdentity{Issuer: testIssuer, Subject: "x", Role: "root"})
	require.Error(t, err)
	_, _, _, err = store.ProvisionOIDCUser(ctx, schemas.OIDCIdentity{Issuer: testIssuer})
	require.Error(t, err)
}
