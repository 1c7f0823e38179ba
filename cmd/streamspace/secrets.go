package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/streamspace/enterprise/internal/secretbox"
)

// Secrets at rest (webhook secrets, integration configurations, TOTP seeds)
// are sealed with ENCRYPTION_KEY. To rotate it, set the new key as
// ENCRYPTION_KEY and the old one in ENCRYPTION_KEY_PREVIOUS: new values are
// sealed with the new key, old ones still open, and once everything has been
// re-sealed the old key can be dropped.

const encryptionKeyHint = "set ENCRYPTION_KEY to 32 random bytes (generate them with: openssl rand -base64 32)"

// openSecretBox returns the box that seals secrets at rest, built from
// ENCRYPTION_KEY and ENCRYPTION_KEY_PREVIOUS.
//
// It returns (nil, nil) when ENCRYPTION_KEY is unset: server and worker start
// without it, and each feature that stores secrets decides for itself, with
// requireSecretBox, whether it can run. `streamspace dev` never sees it unset
// (see ensureDevEncryptionKey).
func openSecretBox(cfg SecurityConfig) (*secretbox.Box, error) {
	if cfg.EncryptionKey == nil {
		if len(cfg.PreviousEncryptionKeys) > 0 {
			return nil, errors.New("ENCRYPTION_KEY_PREVIOUS is set but ENCRYPTION_KEY is not: " +
				"previous keys only open old secrets, a current key must seal new ones")
		}
		return nil, nil
	}
	box, err := secretbox.New(cfg.EncryptionKey, cfg.PreviousEncryptionKeys...)
	if err != nil {
		return nil, fmt.Errorf("ENCRYPTION_KEY: %w", err)
	}
	return box, nil
}

// requireSecretBox is the error a feature that stores secrets returns at
// start-up when openSecretBox gave no box, e.g.
//
//	if err := requireSecretBox(box, "webhooks"); err != nil { return err }
func requireSecretBox(box *secretbox.Box, feature string) error {
	if box != nil {
		return nil
	}
	return fmt.Errorf("ENCRYPTION_KEY is required: %s store secrets encrypted at rest; %s", feature, encryptionKeyHint)
}

// readKeyList reads a comma-separated list of keys, each written like
// ENCRYPTION_KEY (64 hex digits or base64 of 32 bytes). Errors never echo a key.
func readKeyList(e *envReader, name string) [][]byte {
	var keys [][]byte
	for i, item := range e.list(name) {
		k, ok := parseKey(item)
		if !ok {
			e.errs = append(e.errs, fmt.Errorf("invalid %s: key %d must be 32 bytes as 64 hex digits or base64 "+
				"(separate keys with commas)", name, i+1))
			continue
		}
		keys = append(keys, k)
	}
	return keys
}

// parseKey decodes a 32-byte key written as 64 hex digits or standard base64,
// the format envReader.key accepts.
func parseKey(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == secretbox.KeySize {
		return b, true
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == secretbox.KeySize {
		return b, true
	}
	return nil, false
}

// ensureDevEncryptionKey returns the dev stack's encryption key, stored in
// path (base64, mode 0600), generating it on first run. The file has the
// format of ENCRYPTION_KEY, so `ENCRYPTION_KEY=$(cat .data/encryption-key)`
// lets a separately started server or worker open what dev sealed. Losing the
// file loses every secret sealed with it, so it is never overwritten.
func ensureDevEncryptionKey(path string) ([]byte, error) {
	key, err := readDevEncryptionKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	key = make([]byte, secretbox.KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	// Write a temporary file, then link it into place: the key file is never
	// seen half-written, and a concurrent first run keeps the key that won.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".encryption-key-*")
	if err != nil {
		return nil, fmt.Errorf("write dev encryption key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil { // CreateTemp makes the file 0600
		err = os.Link(tmp.Name(), path)
	}
	if errors.Is(err, os.ErrExist) {
		return readDevEncryptionKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("write dev encryption key: %w", err)
	}
	return key, nil
}

func readDevEncryptionKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, ok := parseKey(string(data))
	if !ok {
		return nil, fmt.Errorf("%s is not a 32-byte key (64 hex digits or base64); it seals the dev stack's "+
			"secrets, so restore it, or delete it to start over without them", path)
	}
	return key, nil
}
