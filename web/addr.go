package web

import (
	"errors"
	"fmt"
	"net/netip"
)

// addrRange is a range of addresses fetch_webpage refuses, with a name
// for the error the model sees.
type addrRange struct {
	prefix netip.Prefix
	name   string
}

// blockedRanges are the address ranges that are not public unicast: the
// machine itself, private and shared networks, link-local, multicast and
// reserved space. The first match names an address; the more specific
// ranges come first.
var blockedRanges = func() []addrRange {
	ranges := []struct{ prefix, name string }{
		// IPv4.
		{"0.0.0.0/32", "the unspecified address"},
		{"0.0.0.0/8", `"this network" (RFC 791)`},
		{"10.0.0.0/8", "a private network (RFC 1918)"},
		{"100.64.0.0/10", "carrier-grade NAT shared space (RFC 6598)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local (where cloud metadata services live)"},
		{"172.16.0.0/12", "a private network (RFC 1918)"},
		{"192.0.0.0/24", "IETF protocol assignments (RFC 6890)"},
		{"192.0.2.0/24", "documentation (TEST-NET-1)"},
		{"192.88.99.0/24", "6to4 relay anycast (RFC 7526)"},
		{"192.168.0.0/16", "a private network (RFC 1918)"},
		{"198.18.0.0/15", "benchmarking (RFC 2544)"},
		{"198.51.100.0/24", "documentation (TEST-NET-2)"},
		{"203.0.113.0/24", "documentation (TEST-NET-3)"},
		{"224.0.0.0/4", "multicast"},
		{"255.255.255.255/32", "broadcast"},
		{"240.0.0.0/4", "reserved (RFC 1112)"},
		// IPv6.
		{"::/128", "the unspecified address"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible (deprecated, RFC 4291)"},
		{"64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"},
		{"100::/64", "discard-only (RFC 6666)"},
		{"2001:db8::/32", "documentation (RFC 3849)"},
		{"fc00::/7", "a unique local network (RFC 4193)"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local (deprecated, RFC 3879)"},
		{"ff00::/8", "multicast"},
	}
	out := make([]addrRange, len(ranges))
	for i, r := range ranges {
		out[i] = addrRange{netip.MustParsePrefix(r.prefix), r.name}
	}
	return out
}()

// Prefixes whose addresses carry an IPv4 address: the IPv4 address decides.
var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: the last 32 bits
	sixToFour   = netip.MustParsePrefix("2002::/16")    // RFC 3056: bits 16 to 47
)

// Blocked reports whether ip is an address fetch_webpage refuses to
// connect to when private addresses are not allowed, and if so why: the
// range it is in. Public unicast addresses are not blocked; everything
// else is: loopback, private (RFC 1918, IPv6 unique local), carrier-grade
// NAT, link-local, unspecified, multicast, broadcast, documentation,
// benchmarking and reserved ranges. An IPv6 address that embeds an IPv4
// one (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) is
// judged by the IPv4 address it carries. The zero Addr is blocked.
//
// Blocked is a pure function: it looks at the address and nothing else.
func Blocked(ip netip.Addr) (reason string, blocked bool) {
	if !ip.IsValid() {
		return "an invalid address", true
	}
	ip = ip.WithZone("")
	if ip.Is4In6() {
		if reason, blocked := Blocked(ip.Unmap()); blocked {
			return "the IPv4-mapped form of " + reason, true
		}
		return "", false
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64Prefix.Contains(ip):
			v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
			if reason, blocked := Blocked(v4); blocked {
				return "the NAT64 form of " + reason, true
			}
			return "", false
		case sixToFour.Contains(ip):
			v4 := netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
			if reason, blocked := Blocked(v4); blocked {
				return "the 6to4 form of " + reason, true
			}
		}
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(ip) {
			return r.name, true
		}
	}
	return "", false
}

// ErrBlockedAddress is what a BlockedAddressError matches with errors.Is.
var ErrBlockedAddress = errors.New("web: address not allowed")

// BlockedAddressError is a refusal to connect: the host resolved (or was)
// an address that Blocked refuses, and private addresses are not allowed.
type BlockedAddressError struct {
	// Host is the host name of the URL ("" when it was an address).
	Host string
	// Addr is the refused address.
	Addr netip.Addr
	// Reason is the range Addr is in (Blocked's reason).
	Reason string
}

// Error says which address was refused and why.
func (e *BlockedAddressError) Error() string {
	if e.Host != "" && e.Host != e.Addr.String() {
		return fmt.Sprintf("%s resolves to %s, which is %s: fetch_webpage only reaches public addresses", e.Host, e.Addr, e.Reason)
	}
	return fmt.Sprintf("%s is %s: fetch_webpage only reaches public addresses", e.Addr, e.Reason)
}

// Is matches ErrBlockedAddress.
func (e *BlockedAddressError) Is(target error) bool { return target == ErrBlockedAddress }
