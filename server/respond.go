package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
)

// writeJSON answers with status and v encoded as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	// Answers are JSON with nosniff, never HTML: "&" stays "&" (an otpauth
	// URI, a next link) rather than "\u0026".
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts fn, writing any error it returns as the error envelope.
func handle(logger *slog.Logger, fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			writeError(w, r, logger, err)
		}
	}
}
