// Package lease is hook6's lease model and its durable store: leases of
// addresses (IA_NA) and delegated prefixes (IA_PD), indexed in memory by
// binding and by prefix, committed to disk before the server answers.
package lease

import (
	"bytes"
	"context"
	"net/netip"
	"time"
)

// Kind tells address leases from delegated prefixes.
type Kind uint8

// Lease kinds.
const (
	NA Kind = 1 // an address (Prefix is a /128)
	PD Kind = 2 // a delegated prefix
)

func (k Kind) String() string {
	switch k {
	case NA:
		return "na"
	case PD:
		return "pd"
	}
	return "unknown"
}

// State is a lease's state.
type State uint8

// Lease states.
const (
	Leased   State = 1 // held by the binding until Expires
	Released State = 2 // given back by the client; free for reuse
	Declined State = 3 // declined by the client: quarantined until Expires
	Expired  State = 4 // lifetime passed; free for reuse
)

func (s State) String() string {
	switch s {
	case Leased:
		return "leased"
	case Released:
		return "released"
	case Declined:
		return "declined"
	case Expired:
		return "expired"
	}
	return "unknown"
}

// Lease is one address or delegated prefix and the binding holding it.
type Lease struct {
	Prefix     netip.Prefix // the address as a /128, or the delegated prefix
	Kind       Kind
	DUID       []byte
	IAID       uint32
	Link       string // link name
	PrefixName string // configured prefix it came from
	State      State
	Preferred  time.Duration // lifetimes granted
	Valid      time.Duration
	Start      time.Time // when last granted or renewed (CLTT)
	Expires    time.Time // Start + Valid (for Declined: end of quarantine)
	// Updated is when the lease last changed (failover conflict resolution:
	// the newer wins).
	Updated time.Time
}

// Active reports whether the lease holds its prefix at t: leased and not
// expired, or declined and still in quarantine.
func (l *Lease) Active(t time.Time) bool {
	return (l.State == Leased || l.State == Declined) && t.Before(l.Expires)
}

// Binding is the key of a binding's leases: client DUID, IAID and kind.
type Binding struct {
	DUID string // raw DUID bytes as a string (map key)
	IAID uint32
	Kind Kind
}

// BindingOf returns the binding key of l.
func BindingOf(l *Lease) Binding { return Binding{DUID: string(l.DUID), IAID: l.IAID, Kind: l.Kind} }

// SameBinding reports whether l belongs to duid/iaid/kind.
func (l *Lease) SameBinding(duid []byte, iaid uint32, k Kind) bool {
	return l.IAID == iaid && l.Kind == k && bytes.Equal(l.DUID, duid)
}

// Store keeps leases durable and indexed. Implementations are safe for
// concurrent use.
type Store interface {
	// Get returns the lease of exactly prefix p.
	Get(p netip.Prefix) (Lease, bool)
	// Overlapping returns the leases whose prefix overlaps p (for PD
	// collision checks and lease delete PREFIX).
	Overlapping(p netip.Prefix) []Lease
	// ByBinding returns the leases of one binding.
	ByBinding(b Binding) []Lease
	// ByDUID returns every lease of a client.
	ByDUID(duid []byte) []Lease
	// Put writes leases (insert or replace by Prefix). It returns once they
	// are durable on disk; concurrent Puts are batched into one commit.
	Put(ctx context.Context, ls ...Lease) error
	// Delete removes the leases of these prefixes, durably.
	Delete(ctx context.Context, ps ...netip.Prefix) error
	// Range calls fn for every lease until fn returns false. fn must not
	// call the store.
	Range(fn func(Lease) bool)
	// Len is the number of leases held.
	Len() int
	// Close flushes and closes the store.
	Close() error
}
