package token

import "strings"

// Bearer extracts the token of an "Authorization: Bearer <token>" header (the scheme in any
// case, RFC 7235). ok is false for another scheme or an empty token.
func Bearer(header string) (raw string, ok bool) {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	raw = strings.TrimSpace(header[len(prefix):])
	return raw, raw != ""
}
