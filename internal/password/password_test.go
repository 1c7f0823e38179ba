package password

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHashAndCheck(t *testing.T) {
	t.Parallel()
	h, err := Hash("correct horse battery staple")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$"))
	require.True(t, Check("correct horse battery staple", h))
	require.False(t, Check("correct horse battery stapl", h))
	require.False(t, Check("", ""))
	h2, _ := Hash("correct horse battery staple")
	require.NotEqual(t, h, h2, "salted")
}

func TestValidate(t *testing.T) {
	t.Parallel()
	require.ErrorContains(t, Validate("short"), "at least 12")
	require.ErrorContains(t, Validate(strings.Repeat("x", 257)), "at most 256")
	require.NoError(t, Validate("twelve chars"))
	require.Error(t, Validate("\xff\xfe invalid utf8"))
}
