package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The CORS answer of a listed origin. The API authenticates with a bearer token in
// Authorization, never with cookies, so a browser needs no credentials mode: no
// Access-Control-Allow-Credentials is sent, and with it no way to pair credentials with `*`.
const (
	corsAllowMethods  = "GET, POST, PATCH, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, X-Tenant-ID"
	corsExposeHeaders = "WWW-Authenticate, Retry-After, RateLimit, RateLimit-Policy"
	corsMaxAge        = 10 * 60 // seconds: browsers cap it lower anyway (Chromium at 2 h)
)

// validOrigin accepts an origin exactly as a browser sends it in the Origin header:
// http(s)://host[:port], lower case, no path, query, fragment or user info, and not `*`.
func validOrigin(origin string) error {
	if origin != strings.ToLower(origin) {
		return fmt.Errorf("cors origin %q: write it in lower case, as browsers send it", origin)
	}
	u, err := url.Parse(origin)
	if err != nil {
		return fmt.Errorf("cors origin %q: %v", origin, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("cors origin %q: want http:// or https:// and a host (no wildcard)", origin)
	}
	if u.Host == "" || strings.Contains(u.Host, "*") {
		return fmt.Errorf("cors origin %q: want an explicit host, no wildcard", origin)
	}
	if u.Scheme+"://"+u.Host != origin {
		return fmt.Errorf("cors origin %q: want scheme://host[:port] only, no path, query or user info", origin)
	}
	return nil
}

// cors answers for the origins of one saas_api site.
type cors struct{ origins map[string]bool }

func newCORS(origins []string) *cors {
	if len(origins) == 0 {
		return nil
	}
	c := &cors{origins: make(map[string]bool, len(origins))}
	for _, o := range origins {
		c.origins[o] = true
	}
	return c
}

// handle sets the CORS headers of a request from a listed origin and reports whether the
// request was a preflight it answered. An origin not listed gets no CORS header, so the
// browser keeps the response from its page.
func (c *cors) handle(w http.ResponseWriter, r *http.Request) (answered bool) {
	if c == nil {
		return false
	}
	h := w.Header()
	// The answer depends on Origin whatever it is: a cache must not serve one origin's to another.
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if !c.origins[origin] {
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		return false
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
	w.WriteHeader(http.StatusNoContent)
	return true
}

// setSecurityHeaders marks every API response: never sniffed into another type, no Referer
// sent from it, and never stored by a cache, since many carry tokens or secrets (login,
// refresh, MFA, signup, webhook secrets) and a per-route list would miss the next one.
func setSecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}
