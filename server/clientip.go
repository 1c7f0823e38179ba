package server

import (
	"context"
	"net/http"
	"net/netip"
)

const clientIPKey ctxKey = iota + 200

// withClientIP stores the request's client address, as the resolver decides
// it from the socket peer and trusted proxies, for every later layer (rate
// limits, audit, allowlists) to use; nothing else reads X-Forwarded-For.
func (s *Server) withClientIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := s.deps.ClientIP.Resolve(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey, ip)))
	})
}

// clientIP is the request's client address (invalid if unknown).
func clientIP(ctx context.Context) netip.Addr {
	ip, _ := ctx.Value(clientIPKey).(netip.Addr)
	return ip
}
