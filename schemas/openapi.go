package schemas

import _ "embed"

// OpenAPI is the API's OpenAPI 3.1 document, served at /api/docs/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
