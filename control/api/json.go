package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/saasgate/saasgate/control/errs"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// decodeOptional is decode for routes whose body may be absent (empty, whatever the headers
// say): dst is then left as it is.
func decodeOptional(w http.ResponseWriter, r *http.Request, dst any) error {
	err := decode(w, r, dst)
	if e, ok := errs.As(err); ok && errors.Is(e.Err, io.EOF) {
		return nil
	}
	return err
}

// decode reads exactly one JSON object into dst: at most 1 MiB, no unknown fields, every
// field of its declared type (so no MongoDB operator can ride in a string field). The
// Content-Type is not checked: the body must parse as JSON whatever it claims to be, and
// `curl -d` sends a form type by default.
func decode(w http.ResponseWriter, r *http.Request, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return badJSON(err)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return errs.E(errs.KindBadRequest, "bad_request", "The body must hold a single JSON object.")
	}
	return nil
}

func badJSON(err error) error {
	var (
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
		message string
	)
	switch {
	case errors.As(err, &tooBig):
		message = fmt.Sprintf("The body is larger than %d bytes.", MaxBodyBytes)
	case errors.As(err, &syntax):
		message = fmt.Sprintf("Malformed JSON at byte %d.", syntax.Offset)
	case errors.As(err, &typ):
		message = fmt.Sprintf("Field %q must be a %s.", typ.Field, typ.Type)
	case errors.Is(err, io.EOF):
		message = "The body is empty; a JSON object is required."
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		message = "Unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + "."
	default:
		message = "The body is not a valid JSON object."
	}
	return &errs.Error{Kind: errs.KindBadRequest, Code: "bad_request", Message: message, Err: err}
}

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
