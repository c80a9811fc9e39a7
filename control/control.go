// Package control is hook6's control API: HTTP and JSON over a unix socket
// that only root can open. The daemon serves it with NewServer over a
// Backend; hook6ctl and tests talk to it with NewClient.
//
// Routes:
//
//	GET    /v1/status                   Status
//	GET    /v1/leases?prefix=P&duid=D   []Lease (both filters optional)
//	GET    /v1/leases/{addr-or-prefix}  Lease (URL-escaped; 404 if none)
//	DELETE /v1/leases?within=P          {"deleted": n} (::/0 deletes all)
//	POST   /v1/reload                   {"reloaded": true}, or 422 with the config errors
//	GET    /v1/stats                    nested counters
//
// Errors are JSON {"error": "..."} with 400 for bad input, 404 for what is
// not there, 422 for a refused configuration and 500 for backend failures.
// Other packages add routes with Server.Handle.
package control

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// Backend is what the control API reads and acts on; the daemon implements
// it. Implementations must be safe for concurrent use.
type Backend interface {
	// Status is a summary of the running server.
	Status() Status
	// Leases returns the leases matching f.
	Leases(f LeaseFilter) ([]Lease, error)
	// Lease returns the lease of exactly p (an address as a /128, or a
	// delegated prefix).
	Lease(p netip.Prefix) (Lease, bool)
	// DeleteLeases removes every lease inside within (::/0 for all) and
	// returns how many it removed.
	DeleteLeases(ctx context.Context, within netip.Prefix) (int, error)
	// Reload re-reads the configuration. A refused configuration's error
	// text holds one "file:line: field: message" per line.
	Reload() error
	// Stats returns nested counters, one top-level key per section
	// (packets, leases, extensions, failover, ...).
	Stats() map[string]any
}

// Status summarises a running server.
type Status struct {
	Version       string   `json:"version"`
	UptimeSeconds int64    `json:"uptime-seconds"`
	ServerDUID    string   `json:"server-duid"` // hex with colons, see FormatDUID
	ConfigFile    string   `json:"config-file"`
	Interfaces    []string `json:"interfaces"`
	Links         int      `json:"links"`
	Leases        int      `json:"leases"`
	Failover      string   `json:"failover,omitempty"` // failover state; empty without a partner
}

// Lease is one lease as the control API shows it.
type Lease struct {
	Prefix     string    `json:"prefix"` // address as a /128, or delegated prefix
	Kind       string    `json:"kind"`   // na | pd
	DUID       string    `json:"duid"`   // hex with colons
	IAID       uint32    `json:"iaid"`
	State      string    `json:"state"`
	Link       string    `json:"link"`
	PrefixName string    `json:"prefix-name"`
	Preferred  uint32    `json:"preferred"` // seconds
	Valid      uint32    `json:"valid"`     // seconds
	Start      time.Time `json:"start"`
	Expires    time.Time `json:"expires"`
}

// LeaseOf converts a stored lease to its control API form.
func LeaseOf(l lease.Lease) Lease {
	return Lease{
		Prefix:     l.Prefix.String(),
		Kind:       l.Kind.String(),
		DUID:       FormatDUID(l.DUID),
		IAID:       l.IAID,
		State:      l.State.String(),
		Link:       l.Link,
		PrefixName: l.PrefixName,
		Preferred:  seconds(l.Preferred),
		Valid:      seconds(l.Valid),
		Start:      l.Start,
		Expires:    l.Expires,
	}
}

func seconds(d time.Duration) uint32 {
	s := d / time.Second
	if s < 0 {
		return 0
	}
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}

// LeaseFilter selects leases. The zero value selects all.
type LeaseFilter struct {
	Prefix netip.Prefix // leases inside this prefix; zero = any
	DUID   []byte       // leases of this client; nil = any
}

// Matches reports whether a lease of prefix p held by duid passes f.
func (f LeaseFilter) Matches(p netip.Prefix, duid []byte) bool {
	if f.Prefix.IsValid() && !Within(f.Prefix, p) {
		return false
	}
	return f.DUID == nil || string(f.DUID) == string(duid)
}

// Within reports whether p lies inside outer (p is outer or more specific).
func Within(outer, p netip.Prefix) bool {
	return p.Bits() >= outer.Bits() && outer.Contains(p.Addr())
}

// FormatDUID writes a DUID as lower-case hex bytes separated by colons.
func FormatDUID(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 3*len(b)-1)
	for i, c := range b {
		if i > 0 {
			s = append(s, ':')
		}
		s = append(s, digits[c>>4], digits[c&0xf])
	}
	return string(s)
}

// ParseDUID reads a DUID written as hex, with or without colons (or dashes)
// between the bytes.
func ParseDUID(s string) ([]byte, error) {
	h := strings.NewReplacer(":", "", "-", "").Replace(strings.TrimSpace(s))
	if h == "" {
		return nil, fmt.Errorf("parsing DUID %q: empty", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("parsing DUID %q: not hex bytes", s)
	}
	return b, nil
}

// ParsePrefix reads an address (as a /128) or a prefix; host bits of a
// prefix are cleared. Only IPv6 is accepted.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		q, err := netip.ParsePrefix(s)
		if err != nil {
			// Drop netip's echo of the input: `netip.ParsePrefix("x"): why`.
			why := err.Error()
			if i := strings.Index(why, "): "); i >= 0 {
				why = why[i+3:]
			}
			return netip.Prefix{}, fmt.Errorf("bad prefix %q: %s", s, why)
		}
		p = q.Masked()
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IPv6 address or prefix", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if !p.Addr().Is6() || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv6 address or prefix", s)
	}
	return p, nil
}
