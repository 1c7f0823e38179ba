package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/mfa"
	"github.com/streamspace/enterprise/internal/password"
	"github.com/streamspace/enterprise/schemas"
)

// BenchmarkLoginTOTP is the whole sign-in of a user with TOTP through the
// real router against the real PostgreSQL: POST /api/auth/login (argon2id
// password check, lockout and allowlist checks, a challenge) then POST
// /api/auth/mfa (the TOTP match, the single-use step, the session), from
// parallel clients (4 per CPU). Each login is a different user, since a TOTP step is
// accepted once per user. It reports logins/s and the p50/p99 of one whole
// login.
func BenchmarkLoginTOTP(b *testing.B) {
	api, _ := newMFAAPI(b)
	ctx := context.Background()
	hash, err := password.Hash(testPassword)
	require.NoError(b, err)
	key, err := mfa.NewTOTP("StreamSpace", "bench")
	require.NoError(b, err)
	sealed, err := api.server.deps.Secrets.SealString(key.Secret())
	require.NoError(b, err)
	users := make([]string, b.N)
	for i := range users {
		users[i] = fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)
	}
	require.NoError(b, api.store.InTx(ctx, func(tx pgx.Tx) error {
		for _, name := range users {
			u := schemas.User{Username: name, Role: "user", Active: true, PasswordHash: hash}
			if err := schemas.InsertUser(ctx, tx, &u); err != nil {
				return err
			}
			var id int64
			if err := tx.QueryRow(ctx, `INSERT INTO mfa_methods (user_id, type, secret_sealed, verified_at)
				VALUES ($1, 'totp', $2, now()) RETURNING id`, u.ID, sealed).Scan(&id); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE users SET mfa_enabled = true WHERE id = $1`, u.ID); err != nil {
				return err
			}
		}
		return nil
	}))

	post := func(path string, body any) map[string]any {
		data, _ := json.Marshal(body)
		resp, err := api.srv.Client().Post(api.srv.URL+path, "application/json", bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	var (
		next      atomic.Int64
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
	)
	b.SetParallelism(4) // 4 clients per CPU: more sign-ins at once than cores
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			name := users[next.Add(1)-1]
			t0 := time.Now()
			ch := post("/api/auth/login", map[string]string{"username": name, "password": testPassword})
			code := totpCode(b, key.Secret(), time.Now())
			post("/api/auth/mfa", map[string]any{"mfa_token": ch["mfa_token"], "method": "totp", "code": code})
			d := time.Since(t0)
			mu.Lock()
			latencies = append(latencies, d)
			mu.Unlock()
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "logins/s")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}
