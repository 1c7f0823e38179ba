package server

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Check is one dependency readiness depends on.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

type checkResult struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz runs every check at once, each with a deadline, and answers 200 only
// when all pass. The check names and outcomes are listed either way; a failed
// check's message names the dependency but not credentials or addresses.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	results := make(map[string]checkResult, len(s.deps.Checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	ready := true
	for _, c := range s.deps.Checks {
		wg.Go(func() {
			res := checkResult{Status: "ok"}
			if err := c.Check(ctx); err != nil {
				s.deps.Logger.WarnContext(r.Context(), "readiness check failed", "check", c.Name, "err", err)
				res = checkResult{Status: "failing", Error: c.Name + " is not reachable or not ready"}
			}
			mu.Lock()
			defer mu.Unlock()
			results[c.Name] = res
			ready = ready && res.Status == "ok"
		})
	}
	wg.Wait()
	if !ready {
		writeJSON(w, http.StatusServiceUnavailable, envelope{Error: envelopeBody{
			Code: CodeUnavailable, Message: "not ready", Details: map[string]any{"checks": results}}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": results})
}
