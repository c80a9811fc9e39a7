package failover

import (
	"net/netip"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// Prefix is one configured prefix as failover needs to know it: where a
// lease received from the partner belongs, the lifetime the server wants
// to give (the "desired lifetime" of §4.4), and, for delegation, the pool
// split between the partners.
type Prefix struct {
	Name    string
	Link    string
	Kind    lease.Kind
	Address netip.Prefix // the configured prefix
	Pool    netip.Prefix // where allocation draws from (the range, else Address)
	Length  int          // delegated prefix length (PD)
	Valid   time.Duration
}

// Layout is the configured prefixes.
type Layout struct {
	Prefixes []Prefix
	// Reserved are the addresses (as /128) and delegated prefixes that
	// reservations tie to one client: either server may give them to
	// that client, whatever half of the space they lie in.
	Reserved map[netip.Prefix]bool
}

// locate returns the configured prefix a lease of p belongs to: the one
// whose pool holds it, else the one whose address does.
func (lo *Layout) locate(p netip.Prefix, k lease.Kind) (*Prefix, bool) {
	var best *Prefix
	for i := range lo.Prefixes {
		c := &lo.Prefixes[i]
		if c.Kind != k || !contains(c.Address, p) {
			continue
		}
		if contains(c.Pool, p) {
			return c, true
		}
		if best == nil {
			best = c
		}
	}
	return best, best != nil
}

// desired is the valid lifetime the configuration gives leases of name,
// zero when unknown.
func (lo *Layout) desired(name string) time.Duration {
	for i := range lo.Prefixes {
		if lo.Prefixes[i].Name == name {
			return lo.Prefixes[i].Valid
		}
	}
	return 0
}

// contains reports whether outer holds all of p.
func contains(outer, p netip.Prefix) bool {
	return outer.IsValid() && p.Bits() >= outer.Bits() && outer.Contains(p.Addr())
}
