package schemas_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func setMFAPolicy(store *schemas.Store, policy string, by uuid.UUID) (st schemas.SecuritySettings, err error) {
	ctx := context.Background()
	err = store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		st, err = schemas.SetMFAPolicy(ctx, tx, policy, by)
		return err
	})
	return st, err
}

func TestSecuritySettingsMFAPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	admin := mfaUser(t, store, "settings-admin", "admin")

	st, err := store.GetSecuritySettings(ctx)
	require.NoError(t, err)
	require.Equal(t, schemas.MFAPolicyOff, st.MFARequired, "MFA is optional until an admin says otherwise")
	require.Equal(t, uuid.Nil, st.UpdatedBy)

	set, err := setMFAPolicy(store, schemas.MFAPolicyAdmins, admin.ID)
	require.NoError(t, err)
	require.Equal(t, schemas.MFAPolicyAdmins, set.MFARequired)
	require.Equal(t, admin.ID, set.UpdatedBy)
	require.WithinDuration(t, time.Now(), set.UpdatedAt, time.Minute)
	st, err = store.GetSecuritySettings(ctx)
	require.NoError(t, err)
	require.Equal(t, set, st)

	for _, bad := range []string{"", "Admins", "all", "sometimes"} {
		_, err = setMFAPolicy(store, bad, admin.ID)
		require.ErrorIs(t, err, schemas.ErrInvalidMFAPolicy, bad)
	}
	st, err = store.GetSecuritySettings(ctx)
	require.NoError(t, err)
	require.Equal(t, schemas.MFAPolicyAdmins, st.MFARequired, "a refused value changes nothing")

	set, err = setMFAPolicy(store, schemas.MFAPolicyEveryone, uuid.Nil)
	require.NoError(t, err)
	require.Equal(t, schemas.MFAPolicyEveryone, set.MFARequired)
	require.Equal(t, uuid.Nil, set.UpdatedBy, "a change by the system names nobody")
	var rows int
	require.NoError(t, store.Pool.QueryRow(ctx, `SELECT count(*) FROM security_settings`).Scan(&rows))
	require.Equal(t, 1, rows)
}

func TestMFARequiredFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy, role string
		want         bool
	}{
		{schemas.MFAPolicyOff, "admin", false},
		{schemas.MFAPolicyOff, "user", false},
		{schemas.MFAPolicyAdmins, "admin", true},
		{schemas.MFAPolicyAdmins, "user", false},
		{schemas.MFAPolicyEveryone, "admin", true},
		{schemas.MFAPolicyEveryone, "user", true},
		{"", "admin", false},
	} {
		require.Equal(t, tc.want, schemas.MFARequiredFor(tc.policy, tc.role), "%s/%s", tc.policy, tc.role)
		require.Equal(t, tc.policy != "", schemas.ValidMFAPolicy(tc.policy))
	}
}
