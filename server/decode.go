package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// decodeJSON reads exactly one JSON value from the request body into dst. An
// unknown field, a value of the wrong type, malformed JSON, an empty body or
// data after the value is a VALIDATION_ERROR naming what is wrong; a body over
// the size limit is PAYLOAD_TOO_LARGE.
func decodeJSON(r *http.Request, dst any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return decodeError(err)
		}
		return fieldError("body", "must hold a single JSON value; found data after it")
	}
	return nil
}

func decodeError(err error) error {
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		tooLarge  *http.MaxBytesError
		fieldName string
	)
	switch {
	case errors.Is(err, io.EOF):
		return fieldError("body", "must not be empty")
	case errors.As(err, &tooLarge):
		return &Error{Code: CodePayloadTooLarge, Message: fmt.Sprintf("request body exceeds %d bytes", tooLarge.Limit),
			Details: map[string]any{"limit_bytes": tooLarge.Limit}}
	case errors.As(err, &syntax):
		return fieldError("body", fmt.Sprintf("malformed JSON at byte %d", syntax.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fieldError("body", "malformed JSON: unexpected end of input")
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return fieldError(field, fmt.Sprintf("must be %s, not %s", article(typeErr.Type.Kind().String()), typeErr.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		fieldName = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldError(fieldName, "unknown field")
	default:
		return fieldError("body", "invalid JSON: "+err.Error())
	}
}

// article renders a Go kind the way a JSON client thinks of it.
func article(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	default:
		return "a " + kind
	}
}
