package server

import (
	"net/http"
	"testing"
)

// BenchmarkGetMe is one authenticated GET /api/me through the real router
// and middleware (JWT check, user read, rate limiter, audit pass-through,
// metrics) against the real PostgreSQL, from parallel clients.
func BenchmarkGetMe(b *testing.B) {
	api := newAPI(b)
	req := func() {
		r, _ := http.NewRequest("GET", api.srv.URL+"/api/me", nil)
		r.Header.Set("Authorization", "Bearer "+api.admin.Token)
		resp, err := api.srv.Client().Do(r)
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req()
		}
	})
}
