package schemas_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func TestDeploymentIDIsStablePerDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	one := &schemas.Store{Pool: testenv.DB(t)}
	first, err := one.DeploymentID(ctx)
	require.NoError(t, err)
	require.NotEqual(t, uuid.Nil, first)
	again, err := (&schemas.Store{Pool: one.Pool}).DeploymentID(ctx)
	require.NoError(t, err)
	require.Equal(t, first, again, "every reader (replica, restart) gets the same id")

	other, err := (&schemas.Store{Pool: testenv.DB(t)}).DeploymentID(ctx)
	require.NoError(t, err)
	require.NotEqual(t, first, other, "another database is another deployment")

	_, err = (&schemas.Store{Pool: testenv.EmptyDB(t)}).DeploymentID(ctx)
	require.ErrorContains(t, err, "not migrated")
}
