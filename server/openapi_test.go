package server

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/streamspace/enterprise/schemas"
)

// undocumented are routes that serve the Swagger UI's own files, not the API.
var undocumented = map[string]bool{
	"GET /api/docs":   true,
	"GET /api/docs/*": true,
}

// TestOpenAPIMatchesRouter fails when a route in the router is missing from
// schemas/openapi.yaml, or the document describes a route the router lacks.
func TestOpenAPIMatchesRouter(t *testing.T) {
	t.Parallel()
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(schemas.OpenAPI, &doc))
	require.Equal(t, "3.1.0", doc.OpenAPI)

	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, v := range ops {
			op, isOp := v.(map[string]any)
			if !isOp || method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
			require.NotEmpty(t, op["responses"], "%s %s has no responses", method, path)
			require.NotEmpty(t, op["operationId"], "%s %s has no operationId", method, path)
			if strings.HasPrefix(path, "/api/") && !strings.HasPrefix(path, "/api/docs") {
				require.Contains(t, op, "security", "%s %s must state its security requirement", method, path)
			}
		}
	}

	routed := map[string]bool{}
	mux := setup(t).mux
	require.NoError(t, chi.Walk(mux, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(route, "/")
		if route == "" {
			route = "/"
		}
		if key := method + " " + route; !undocumented[key] {
			routed[key] = true
		}
		return nil
	}))

	require.Empty(t, diff(routed, documented), "routes missing from schemas/openapi.yaml")
	require.Empty(t, diff(documented, routed), "routes in schemas/openapi.yaml the router does not serve")
}

func diff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
