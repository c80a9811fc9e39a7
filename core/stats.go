package core

import (
	"sync/atomic"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// Drop reasons, as counted and reported.
const (
	DropMalformed    = "malformed"       // does not decode
	DropNotForServer = "not-for-server"  // Advertise, Reply, Reconfigure, Relay-repl
	DropUnknownType  = "unknown-type"    // message type a server does not handle
	DropInvalid      = "invalid"         // fails RFC 8415 §16 validation
	DropNotOurs      = "other-server"    // Server ID names another server
	DropUnicast      = "unicast"         // Solicit/Confirm/Rebind/Info-request sent by unicast
	DropNoLink       = "no-link"         // no configured link for the client
	DropExtension    = "extension"       // an extension set drop or failed with failure mode drop
	DropStore        = "store-error"     // the lease could not be made durable
	DropNoAnswer     = "nothing-to-send" // e.g. Confirm that cannot be judged, Rebind with nothing to say
	DropHopLimit     = "hop-limit"       // too many relay layers
	DropOverload     = "overload"        // receive queue full, or waited too long in it
	DropNotAdmitted  = "not-admitted"    // the failover state does not let this server answer it
)

var dropReasons = []string{DropMalformed, DropNotForServer, DropUnknownType, DropInvalid, DropNotOurs,
	DropUnicast, DropNoLink, DropExtension, DropStore, DropNoAnswer, DropHopLimit, DropOverload, DropNotAdmitted}

// Stats are the engine's counters. All fields are updated atomically.
type Stats struct {
	received  atomic.Uint64
	sent      atomic.Uint64
	reclaimed atomic.Uint64
	committed atomic.Uint64
	rxType    [256]atomic.Uint64
	txType    [256]atomic.Uint64
	drops     map[string]*atomic.Uint64
}

func newStats() *Stats {
	s := &Stats{drops: make(map[string]*atomic.Uint64, len(dropReasons))}
	for _, r := range dropReasons {
		s.drops[r] = new(atomic.Uint64)
	}
	return s
}

// Drop counts a dropped packet.
func (s *Stats) Drop(reason string) {
	if c := s.drops[reason]; c != nil {
		c.Add(1)
	}
}

// Dropped returns the count of drops for reason.
func (s *Stats) Dropped(reason string) uint64 {
	if c := s.drops[reason]; c != nil {
		return c.Load()
	}
	return 0
}

// Snapshot returns the counters as a nested map for the control API.
func (s *Stats) Snapshot() map[string]any {
	drops := map[string]uint64{}
	var total uint64
	for r, c := range s.drops {
		drops[r] = c.Load()
		total += drops[r]
	}
	rx, tx := map[string]uint64{}, map[string]uint64{}
	for i := range s.rxType {
		if v := s.rxType[i].Load(); v > 0 {
			rx[dhcpv6.MessageType(i).String()] = v
		}
		if v := s.txType[i].Load(); v > 0 {
			tx[dhcpv6.MessageType(i).String()] = v
		}
	}
	return map[string]any{
		"received":         s.received.Load(),
		"sent":             s.sent.Load(),
		"dropped":          total,
		"dropped-by":       drops,
		"received-by-type": rx,
		"sent-by-type":     tx,
		"leases-committed": s.committed.Load(),
		"leases-reclaimed": s.reclaimed.Load(),
	}
}

// Received is the number of packets received.
func (s *Stats) Received() uint64 { return s.received.Load() }

// Sent is the number of packets sent.
func (s *Stats) Sent() uint64 { return s.sent.Load() }

// DropTotals returns drops by reason.
func (s *Stats) DropTotals() map[string]uint64 {
	out := make(map[string]uint64, len(s.drops))
	for r, c := range s.drops {
		out[r] = c.Load()
	}
	return out
}
