package server

import (
	"net/http"

	swaggerfiles "github.com/swaggo/files/v2"

	"github.com/streamspace/enterprise/schemas"
)

// swaggerInitializer points the embedded Swagger UI at our own document.
const swaggerInitializer = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/docs/openapi.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
};
`

// docsCSP keeps the Swagger UI page from loading anything off this server.
const docsCSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'"

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	_, _ = w.Write(schemas.OpenAPI)
}

// swaggerUI serves Swagger UI from assets embedded in the binary.
func swaggerUI() http.Handler {
	assets := http.StripPrefix("/api/docs/", http.FileServerFS(swaggerfiles.FS))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", docsCSP)
		switch r.URL.Path {
		case "/api/docs":
			http.Redirect(w, r, "/api/docs/", http.StatusMovedPermanently)
		case "/api/docs/swagger-initializer.js":
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			_, _ = w.Write([]byte(swaggerInitializer))
		default:
			assets.ServeHTTP(w, r)
		}
	})
}
