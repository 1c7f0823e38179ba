package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/streamspace/enterprise/internal/authtoken"
	"github.com/streamspace/enterprise/internal/password"
	"github.com/streamspace/enterprise/schemas"
)

// newAuthority loads the access-token keys named by the configuration.
func newAuthority(cfg AuthConfig) (*authtoken.Authority, error) {
	var signer *authtoken.Key
	var err error
	if cfg.Secret != nil {
		signer, err = authtoken.NewHMACKey(cfg.KeyID, cfg.Secret)
	} else {
		signer, err = loadPEMKey(cfg.KeyID, cfg.SigningKeyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("JWT signing key: %w", err)
	}
	var previous []*authtoken.Key
	for _, path := range cfg.PreviousKeyFiles {
		k, err := loadPEMKey("", path)
		if err != nil {
			return nil, fmt.Errorf("JWT_PREVIOUS_KEY_FILES: %w", err)
		}
		previous = append(previous, k)
	}
	return authtoken.NewAuthority(cfg.Issuer, cfg.Audience, cfg.AccessTTL, signer, previous...)
}

func loadPEMKey(id, path string) (*authtoken.Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := authtoken.ParsePEMKey(id, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ensureDevSigningKey makes the dev stack's Ed25519 signing key on first run
// and returns its path.
func ensureDevSigningKey(path string) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	key, err := authtoken.GenerateEd25519PEM()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return "", fmt.Errorf("write dev signing key: %w", err)
	}
	return path, nil
}

// bootstrapAdmin creates the first admin when the database has no users,
// with BOOTSTRAP_ADMIN_PASSWORD or a generated password that is printed to
// out exactly once (it is not logged and not stored anywhere else).
func bootstrapAdmin(ctx context.Context, store *schemas.Store, cfg AuthConfig, out io.Writer) error {
	n, err := store.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	pw, generated := cfg.BootstrapPassword, false
	if pw == "" {
		var b [18]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		pw, generated = base64.RawURLEncoding.EncodeToString(b[:]), true
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return err
	}
	u := &schemas.User{Username: cfg.BootstrapUsername, Role: "admin", Active: true, PasswordHash: hash,
		DisplayName: "Bootstrap admin"}
	created, err := store.CreateFirstAdmin(ctx, u)
	if err != nil || !created {
		return err
	}
	if generated {
		fmt.Fprintf(out, "\nCreated the first admin %q with the one-time password\n\n    %s\n\n"+
			"It is shown only now. Sign in (POST /api/auth/login) and change it (PATCH /api/me).\n\n",
			u.Username, pw)
	} else {
		fmt.Fprintf(out, "Created the first admin %q with the password from BOOTSTRAP_ADMIN_PASSWORD.\n", u.Username)
	}
	return nil
}
