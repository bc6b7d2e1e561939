package notify

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"

	"github.com/saasgate/saasgate/control/errs"
)

// blockedRanges are the addresses a webhook may not reach: the gateway's own host and
// networks an outsider should not be able to probe through it.
var blockedRanges = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",          // unspecified, "this network"
		"127.0.0.0/8",        // loopback
		"10.0.0.0/8",         // RFC 1918
		"172.16.0.0/12",      // RFC 1918
		"192.168.0.0/16",     // RFC 1918
		"169.254.0.0/16",     // link-local, cloud metadata
		"100.64.0.0/10",      // CGNAT
		"224.0.0.0/4",        // multicast
		"255.255.255.255/32", // broadcast
		"::/128",             // unspecified
		"::1/128",            // loopback
		"fe80::/10",          // link-local
		"fc00::/7",           // unique local
		"ff00::/8",           // multicast
		"64:ff9b::/96",       // NAT64, which embeds any IPv4 address
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Guard refuses private, loopback and other internal addresses, except the ranges the
// operator allows.
type Guard struct {
	allow []netip.Prefix
}

// NewGuard builds a guard that lets the CIDR ranges in allow through.
func NewGuard(allow []string) (*Guard, error) {
	g := &Guard{}
	for _, s := range allow {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("notify: allow_private %q: %w", s, err)
		}
		g.allow = append(g.allow, p.Masked())
	}
	return g, nil
}

// Allowed reports whether ip may be reached. IPv4-mapped IPv6 addresses are judged as the
// IPv4 address they carry, so ::ffff:127.0.0.1 is loopback.
func (g *Guard) Allowed(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	for _, p := range g.allow {
		if p.Contains(ip) {
			return true
		}
	}
	if !ip.IsValid() {
		return false
	}
	for _, p := range blockedRanges {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// Control is a net.Dialer Control hook: it runs on the address actually dialled, after DNS,
// so a name that resolved to a public address at registration and to a private one now is
// still refused.
func (g *Guard) Control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	if !g.Allowed(ip) {
		return fmt.Errorf("notify: refusing to connect to %s: a private or internal address", ip)
	}
	return nil
}

// CheckURL validates an endpoint URL at registration: http or https, a host, and every
// address the host resolves to allowed.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil || len(raw) > 2048 {
		return errs.E(errs.KindInvalid, "invalid_webhook_url", "The endpoint URL must be an http or https URL with a host and no credentials.")
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil || len(addrs) == 0 {
		return errs.Ef(errs.KindInvalid, "invalid_webhook_url", "The endpoint's host %q does not resolve.", host)
	}
	for _, ip := range addrs {
		if !g.Allowed(ip) {
			return errs.Ef(errs.KindInvalid, "invalid_webhook_url", "The endpoint's host %q resolves to a private or internal address (%s).", host, ip)
		}
	}
	return nil
}
