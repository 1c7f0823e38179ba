package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/secretbox"
)

func TestSecretBoxConfig(t *testing.T) {
	t.Parallel()
	cur, old1, old2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	env := map[string]string{"DATABASE_URL": goodDB, "JWT_SECRET": goodJWT,
		"ENCRYPTION_KEY":          base64.StdEncoding.EncodeToString(cur),
		"ENCRYPTION_KEY_PREVIOUS": hex.EncodeToString(old1) + " , " + base64.StdEncoding.EncodeToString(old2) + ",",
	}
	cfg, err := readServerConfig(lookupFrom(env))
	require.NoError(t, err)
	require.Equal(t, [][]byte{old1, old2}, cfg.Security.PreviousEncryptionKeys)

	oldBox, err := secretbox.New(old2)
	require.NoError(t, err)
	sealed, err := oldBox.SealString("from before the rotation")
	require.NoError(t, err)
	box, err := openSecretBox(cfg.Security)
	require.NoError(t, err)
	got, err := box.OpenString(sealed)
	require.NoError(t, err)
	require.Equal(t, "from before the rotation", got)
	require.NoError(t, requireSecretBox(box, "webhooks"))

	// Unset: no box and no error; the feature decides.
	wcfg, err := readWorkerConfig(lookupFrom(map[string]string{"DATABASE_URL": goodDB}))
	require.NoError(t, err)
	box, err = openSecretBox(wcfg.Security)
	require.NoError(t, err)
	require.Nil(t, box)
	require.ErrorContains(t, requireSecretBox(box, "webhooks"), "ENCRYPTION_KEY is required: webhooks store secrets")

	_, err = openSecretBox(SecurityConfig{PreviousEncryptionKeys: [][]byte{old1}})
	require.ErrorContains(t, err, "ENCRYPTION_KEY_PREVIOUS is set but ENCRYPTION_KEY is not")

	secretKey := "c2hvcnQ" + strings.Repeat("x", 30)
	_, err = readServerConfig(lookupFrom(map[string]string{"DATABASE_URL": goodDB, "JWT_SECRET": goodJWT,
		"ENCRYPTION_KEY_PREVIOUS": hex.EncodeToString(old1) + "," + secretKey}))
	require.ErrorContains(t, err, "invalid ENCRYPTION_KEY_PREVIOUS: key 2 must be 32 bytes")
	require.NotContains(t, err.Error(), secretKey)
}

func TestDevEncryptionKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "encryption-key")
	key, err := ensureDevEncryptionKey(path)
	require.NoError(t, err)
	require.Len(t, key, 32)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	again, err := ensureDevEncryptionKey(path)
	require.NoError(t, err)
	require.Equal(t, key, again, "the key is reused")

	// The file reads like ENCRYPTION_KEY.
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	cfg, err := readWorkerConfig(lookupFrom(map[string]string{"DATABASE_URL": goodDB, "ENCRYPTION_KEY": string(data)}))
	require.NoError(t, err)
	require.Equal(t, key, cfg.Security.EncryptionKey)

	require.NoError(t, os.WriteFile(path, []byte("garbage\n"), 0o600))
	_, err = ensureDevEncryptionKey(path)
	require.ErrorContains(t, err, "is not a 32-byte key")
	data, _ = os.ReadFile(path)
	require.Equal(t, "garbage\n", string(data), "a bad key file is never overwritten")
}
