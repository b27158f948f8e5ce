package web

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestBlocked classifies addresses; nothing here is dialled.
func TestBlocked(t *testing.T) {
	tests := []struct {
		addr    string
		blocked bool
		reason  string // a part of the reason, for blocked addresses
	}{
		// IPv4 loopback, unspecified, "this network".
		{"127.0.0.1", true, "loopback"},
		{"127.255.255.254", true, "loopback"},
		{"0.0.0.0", true, "unspecified"},
		{"0.1.2.3", true, "this network"},
		// RFC 1918.
		{"10.0.0.1", true, "private"},
		{"10.255.255.255", true, "private"},
		{"172.16.0.1", true, "private"},
		{"172.31.255.254", true, "private"},
		{"172.15.255.255", false, ""},
		{"172.32.0.1", false, ""},
		{"192.168.0.1", true, "private"},
		{"192.168.255.255", true, "private"},
		// CGNAT.
		{"100.64.0.1", true, "carrier-grade NAT"},
		{"100.127.255.255", true, "carrier-grade NAT"},
		{"100.63.255.255", false, ""},
		{"100.128.0.0", false, ""},
		// Link-local, cloud metadata.
		{"169.254.169.254", true, "link-local"},
		{"169.254.0.1", true, "link-local"},
		// Multicast, broadcast, reserved, documentation, benchmarking.
		{"224.0.0.1", true, "multicast"},
		{"239.255.255.250", true, "multicast"},
		{"255.255.255.255", true, "broadcast"},
		{"240.0.0.1", true, "reserved"},
		{"192.0.2.10", true, "documentation"},
		{"198.51.100.7", true, "documentation"},
		{"203.0.113.9", true, "documentation"},
		{"198.18.0.1", true, "benchmarking"},
		{"192.0.0.8", true, "IETF"},
		// Public IPv4.
		{"8.8.8.8", false, ""},
		{"1.1.1.1", false, ""},
		{"93.184.215.14", false, ""},
		{"11.0.0.1", false, ""},
		{"192.169.0.1", false, ""},
		// IPv6.
		{"::", true, "unspecified"},
		{"::1", true, "loopback"},
		{"fc00::1", true, "unique local"},
		{"fd12:3456:789a::1", true, "unique local"},
		{"fe80::1", true, "link-local"},
		{"fe80::1%eth0", true, "link-local"},
		{"febf:ffff::1", true, "link-local"},
		{"fec0::1", true, "site-local"},
		{"ff02::1", true, "multicast"},
		{"ff05::2", true, "multicast"},
		{"2001:db8::1", true, "documentation"},
		{"100::1", true, "discard"},
		{"::10.0.0.1", true, "IPv4-compatible"},
		{"2606:4700:4700::1111", false, ""},
		{"2001:4860:4860::8888", false, ""},
		// IPv4 inside IPv6.
		{"::ffff:10.0.0.1", true, "IPv4-mapped form of a private network"},
		{"::ffff:127.0.0.1", true, "IPv4-mapped form of loopback"},
		{"::ffff:169.254.169.254", true, "IPv4-mapped form of link-local"},
		{"::ffff:0.0.0.0", true, "IPv4-mapped form of the unspecified"},
		{"::ffff:8.8.8.8", false, ""},
		{"64:ff9b::10.0.0.1", true, "NAT64 form of a private network"},
		{"64:ff9b::7f00:1", true, "NAT64 form of loopback"},
		{"64:ff9b::8.8.8.8", false, ""},
		{"2002:c0a8:0101::1", true, "6to4 form of a private network"}, // 192.168.1.1
		{"2002:7f00:1::1", true, "6to4 form of loopback"},
		{"2002:0808:0808::1", false, ""}, // 8.8.8.8
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.addr)
		reason, blocked := Blocked(ip)
		if blocked != tt.blocked {
			t.Errorf("Blocked(%s) = %v (%q), want %v", tt.addr, blocked, reason, tt.blocked)
			continue
		}
		if blocked && !strings.Contains(reason, tt.reason) {
			t.Errorf("Blocked(%s) reason %q, want it to mention %q", tt.addr, reason, tt.reason)
		}
		if !blocked && reason != "" {
			t.Errorf("Blocked(%s) = not blocked with reason %q", tt.addr, reason)
		}
	}
	if _, blocked := Blocked(netip.Addr{}); !blocked {
		t.Error("the zero Addr is not blocked")
	}
}

func TestBlockedAddressError(t *testing.T) {
	err := error(&BlockedAddressError{Host: "rebind.test", Addr: netip.MustParseAddr("10.0.0.1"), Reason: "a private network (RFC 1918)"})
	if !errors.Is(err, ErrBlockedAddress) {
		t.Error("BlockedAddressError does not match ErrBlockedAddress")
	}
	for _, want := range []string{"rebind.test", "10.0.0.1", "private network"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
