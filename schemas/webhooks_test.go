package schemas_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/secretbox"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func testBox(t *testing.T) *secretbox.Box {
	t.Helper()
	key := make([]byte, secretbox.KeySize)
	_, _ = rand.Read(key)
	box, err := secretbox.New(key)
	require.NoError(t, err)
	return box
}

func insertWebhook(t *testing.T, store *schemas.Store, w *schemas.Webhook) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertWebhook(ctx, tx, w) }))
}

func TestWebhookCRUD(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	box := testBox(t)

	admin := schemas.User{Username: "hook-admin", Role: "admin", Active: true}
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertUser(ctx, tx, &admin) }))

	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	sealed, err := box.SealString(secret)
	require.NoError(t, err)
	headers, err := box.Seal([]byte(`{"Authorization":"Bearer s3cr3t-token"}`))
	require.NoError(t, err)
	w := schemas.Webhook{Name: "Production Alerts", URL: "https://alerts.example.com/hook",
		Events: []string{"session.created", "quota.exceeded"}, Enabled: true, SecretEnc: sealed, HeadersEnc: headers,
		BackoffSeconds: []int{60}, MaxAttempts: 3, CreatedBy: &admin.ID}
	insertWebhook(t, store, &w)
	require.NotEqual(t, uuid.Nil, w.ID)
	require.Equal(t, schemas.DefaultWebhookRateLimit, w.RateLimitPerSecond)
	require.WithinDuration(t, time.Now(), w.CreatedAt, time.Minute)

	got, err := store.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	require.Equal(t, w.Name, got.Name)
	require.Equal(t, w.URL, got.URL)
	require.Equal(t, w.Events, got.Events)
	require.Equal(t, []int{60}, got.BackoffSeconds)
	require.Equal(t, 3, got.MaxAttempts)
	require.Equal(t, &admin.ID, got.CreatedBy)
	require.Nil(t, got.PreviousSecretEnc)
	require.Nil(t, got.PreviousSecretExpiresAt)
	require.Nil(t, got.FailingSince)

	// The secret and the headers are stored sealed: nothing of them is in
	// the row in clear, and they open with the box.
	var rawSecret, rawHeaders []byte
	require.NoError(t, store.Pool.QueryRow(ctx, `SELECT secret_enc, headers_enc FROM webhooks WHERE id = $1`, w.ID).
		Scan(&rawSecret, &rawHeaders))
	require.False(t, bytes.Contains(rawSecret, []byte("MfKQ9r8G")))
	require.False(t, bytes.Contains(rawHeaders, []byte("s3cr3t")))
	opened, err := box.OpenString(got.SecretEnc)
	require.NoError(t, err)
	require.Equal(t, secret, opened)
	openedHeaders, err := box.Open(got.HeadersEnc)
	require.NoError(t, err)
	require.JSONEq(t, `{"Authorization":"Bearer s3cr3t-token"}`, string(openedHeaders))

	// Update: every changeable field, under the row lock.
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	failing := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		h, err := schemas.LockWebhook(ctx, tx, w.ID)
		if err != nil {
			return err
		}
		h.Name, h.Description, h.URL = "Renamed", "desc", "https://other.example.com/"
		h.Events, h.Enabled, h.HeadersEnc = []string{"user.created"}, false, nil
		h.PreviousSecretEnc, h.PreviousSecretExpiresAt = h.SecretEnc, &expires
		h.MaxAttempts, h.BackoffSeconds, h.RateLimitPerSecond = 5, []int{1, 2, 3}, 50
		h.DisabledReason, h.FailingSince = "410 Gone", &failing
		return schemas.UpdateWebhook(ctx, tx, &h)
	}))
	got, err = store.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	require.Equal(t, "Renamed", got.Name)
	require.Equal(t, "desc", got.Description)
	require.Equal(t, []string{"user.created"}, got.Events)
	require.False(t, got.Enabled)
	require.Nil(t, got.HeadersEnc)
	require.Equal(t, sealed, got.PreviousSecretEnc)
	require.True(t, expires.Equal(*got.PreviousSecretExpiresAt))
	require.Equal(t, []int{1, 2, 3}, got.BackoffSeconds)
	require.Equal(t, 5, got.MaxAttempts)
	require.Equal(t, 50, got.RateLimitPerSecond)
	require.Equal(t, "410 Gone", got.DisabledReason)
	require.True(t, failing.Equal(*got.FailingSince))
	require.True(t, got.UpdatedAt.After(w.UpdatedAt) || got.UpdatedAt.Equal(w.UpdatedAt))

	// Update of a missing webhook, delete, and reads after it.
	require.ErrorIs(t, store.InTx(ctx, func(tx pgx.Tx) error {
		missing := got
		missing.ID = uuid.New()
		return schemas.UpdateWebhook(ctx, tx, &missing)
	}), schemas.ErrNotFound)
	_, err = store.DeleteWebhook(ctx, w.ID)
	require.NoError(t, err)
	_, err = store.DeleteWebhook(ctx, w.ID)
	require.ErrorIs(t, err, schemas.ErrNotFound)
	_, err = store.GetWebhook(ctx, w.ID)
	require.ErrorIs(t, err, schemas.ErrNotFound)
	require.ErrorIs(t, store.InTx(ctx, func(tx pgx.Tx) error {
		_, err := schemas.LockWebhook(ctx, tx, w.ID)
		return err
	}), schemas.ErrNotFound)
}

func TestWebhookConstraints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	for name, w := range map[string]schemas.Webhook{
		"no events":          {Name: "x", URL: "https://x.example", Events: []string{}, SecretEnc: []byte{1}},
		"empty name":         {Name: "", URL: "https://x.example", Events: []string{"user.created"}, SecretEnc: []byte{1}},
		"too many attempts":  {Name: "x", URL: "https://x.example", Events: []string{"user.created"}, SecretEnc: []byte{1}, MaxAttempts: 51},
		"no secret":          {Name: "x", URL: "https://x.example", Events: []string{"user.created"}},
		"rate limit too big": {Name: "x", URL: "https://x.example", Events: []string{"user.created"}, SecretEnc: []byte{1}, RateLimitPerSecond: 10001},
	} {
		err := store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertWebhook(ctx, tx, &w) })
		require.Error(t, err, name)
	}
}

func TestListWebhooksFiltersAndPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	var ids []uuid.UUID // oldest first
	for i := range 7 {
		events := []string{"session.created"}
		if i%2 == 1 {
			events = []string{"user.created", "quota.exceeded"}
		}
		w := schemas.Webhook{Name: fmt.Sprintf("hook-%d", i), URL: "https://x.example/", Events: events,
			Enabled: i != 3, SecretEnc: []byte{1}}
		insertWebhook(t, store, &w)
		ids = append(ids, w.ID)
	}

	// Pages of 3, newest first, across every row once.
	var seen []uuid.UUID
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		page, next, err := store.ListWebhooks(ctx, schemas.WebhookFilter{Limit: 3, Cursor: cursor})
		require.NoError(t, err)
		for _, w := range page {
			seen = append(seen, w.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	want := make([]uuid.UUID, len(ids))
	for i, id := range ids {
		want[len(ids)-1-i] = id
	}
	require.Equal(t, want, seen)

	// Filters.
	list, _, err := store.ListWebhooks(ctx, schemas.WebhookFilter{Event: schemas.EventQuotaExceeded})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{ids[5], ids[3], ids[1]}, webhookIDs(list))
	disabled := false
	list, _, err = store.ListWebhooks(ctx, schemas.WebhookFilter{Enabled: &disabled})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{ids[3]}, webhookIDs(list))
	enabled := true
	list, _, err = store.ListWebhooks(ctx, schemas.WebhookFilter{Enabled: &enabled, Event: schemas.EventUserCreated})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{ids[5], ids[1]}, webhookIDs(list))

	// A cursor of another listing, or garbage, is refused.
	_, _, err = store.ListWebhooks(ctx, schemas.WebhookFilter{Cursor: "bm9wZQ"})
	require.True(t, errors.Is(err, schemas.ErrInvalidCursor), "%v", err)
}

func webhookIDs(list []schemas.Webhook) []uuid.UUID {
	out := make([]uuid.UUID, len(list))
	for i, w := range list {
		out[i] = w.ID
	}
	return out
}
