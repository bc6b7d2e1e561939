package tenant

import "strings"

// FromHost returns the tenant label of host under baseDomain: the left-most label of
// "<label>.<...>.<baseDomain>", with any port removed. ok is false when host is not under
// baseDomain (or is baseDomain itself). Matching ignores ASCII case; the label is returned
// lower-cased only when it had to be (the common lower-case host costs no allocation).
func FromHost(host, baseDomain string) (label string, ok bool) {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if len(host) <= len(baseDomain)+1 || !strings.EqualFold(host[len(host)-len(baseDomain):], baseDomain) ||
		host[len(host)-len(baseDomain)-1] != '.' {
		return "", false
	}
	rest := host[:len(host)-len(baseDomain)-1]
	if i := strings.IndexByte(rest, '.'); i >= 0 {
		rest = rest[:i]
	}
	if rest == "" {
		return "", false
	}
	upper := false
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case c >= 0x80, c == ':':
			// Not a DNS label: no tenant is named so. A colon here is one of several in a host
			// with a port ("a:b.base:1"), whose label would not survive the port's removal.
			return "", false
		case c >= 'A' && c <= 'Z':
			upper = true
		}
	}
	if upper {
		return strings.ToLower(rest), true
	}
	return rest, true
}
