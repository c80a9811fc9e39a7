package core

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/hook6/hook6/core/lease"
	"github.com/hook6/hook6/hooks"
)

// Allocation algorithm names as they appear in the config.
const (
	algReservation   = "reservation"
	algClientRequest = "client-request"
	algExtension     = "extension"
	algInterfaceID   = "interface-identifier"
	algRandom        = "random"
	algBestFit       = "best-fit"
)

// randomTries bounds the collision retries of the random algorithm.
const randomTries = 32

// bestFitScan bounds how many slots one best-fit allocation examines.
const bestFitScan = 1 << 20

// exhaustedFor is how long a pool a best-fit scan found full is not
// scanned again (leases freed meanwhile wait at most that long).
const exhaustedFor = time.Second

// allocResult is what allocation gives for one IA.
type allocResult struct {
	lease  netip.Prefix
	prefix *prefix
	skip   bool // an extension asked for no lease (skip-lease)
}

// allocate finds a new lease for ia on the packet's link, trying each
// candidate prefix's algorithms in their configured order, and claims it
// for ttl. A zero result means nothing is available.
func (pc *pctx) allocate(ia *iaReq, ttl time.Duration) allocResult {
	for _, p := range pc.candidatePrefixes(ia) {
		for _, alg := range p.algs {
			cand, skip := pc.runAlgorithm(alg, p, ia, ttl)
			if skip {
				return allocResult{skip: true}
			}
			if cand.IsValid() {
				return allocResult{lease: cand, prefix: p}
			}
		}
	}
	return allocResult{}
}

// candidatePrefixes lists the link's prefixes that can serve ia; for PD a
// prefix whose delegated length matches the client's length hint comes first.
func (pc *pctx) candidatePrefixes(ia *iaReq) []*prefix {
	if ia.kind == lease.NA {
		return pc.link.na
	}
	want := 0
	for _, h := range ia.hints {
		want = h.Bits()
	}
	if want == 0 || len(pc.link.pd) < 2 {
		return pc.link.pd
	}
	out := pc.prefs[:0]
	for _, p := range pc.link.pd {
		if p.length == want {
			out = append(out, p)
		}
	}
	for _, p := range pc.link.pd {
		if p.length != want {
			out = append(out, p)
		}
	}
	pc.prefs = out
	return out
}

func (pc *pctx) runAlgorithm(alg string, p *prefix, ia *iaReq, ttl time.Duration) (netip.Prefix, bool) {
	switch alg {
	case algReservation:
		return pc.tryEach(p, ia, ttl, pc.reservedCandidates(p), false), false
	case algClientRequest:
		return pc.tryEach(p, ia, ttl, pc.hintCandidates(p, ia), true), false
	case algExtension:
		return pc.extensionLease(p, ia, ttl)
	case algInterfaceID:
		if c, ok := pc.interfaceIDCandidate(p); ok {
			return pc.tryEach(p, ia, ttl, pc.candidates(c), false), false
		}
	case algRandom:
		return pc.randomLease(p, ia, ttl), false
	case algBestFit:
		return pc.bestFitLease(p, ia, ttl), false
	}
	return netip.Prefix{}, false
}

// candidates returns cs in the packet context's candidate scratch: lists
// of candidates are one algorithm's, tried before the next is made.
func (pc *pctx) candidates(cs ...netip.Prefix) []netip.Prefix {
	pc.cands = append(pc.cands[:0], cs...)
	return pc.cands
}

// tryEach claims the first acceptable candidate; filtered says whether the
// allocation filter (failover's split) applies to these candidates.
func (pc *pctx) tryEach(p *prefix, ia *iaReq, ttl time.Duration, cands []netip.Prefix, filtered bool) netip.Prefix {
	for _, c := range cands {
		if pc.claim(p, ia, c, ttl, filtered) {
			return c
		}
	}
	return netip.Prefix{}
}

// claim checks a candidate against the pool, reservations, the failover
// filter (when filtered) and check-lease-acceptable, and claims it for the
// binding.
func (pc *pctx) claim(p *prefix, ia *iaReq, c netip.Prefix, ttl time.Duration, filtered bool) bool {
	if c.Bits() != p.length || c.Masked() != c || !p.pool.Contains(c.Addr()) {
		return false
	}
	if p.kind == lease.NA && reservedIID(c.Addr()) {
		return false
	}
	if pc.st.reservedByOther(c, pc.duid) {
		return false
	}
	if f := pc.s.opts.Filter; filtered && f != nil && !f(c, p.kind) {
		return false
	}
	// With check-lease-acceptable attached, taken candidates are skipped
	// before extensions are asked about them (take checks again anyway).
	if pc.has(hooks.CheckLeaseAcceptable) && (!pc.s.claims.free(c, ia.binding) || !pc.acceptable(p, ia, c)) {
		return false
	}
	if !pc.s.claims.take(c, ia.binding, ttl, pc.offering) {
		return false
	}
	pc.claimed = append(pc.claimed, c)
	return true
}

func (pc *pctx) reservedCandidates(p *prefix) []netip.Prefix {
	out := pc.cands[:0]
	for _, r := range pc.st.reserved[pc.duidKey] {
		if r.Link != "" && r.Link != pc.link.name {
			continue
		}
		switch {
		case p.kind == lease.NA && r.Address.IsValid():
			out = append(out, netip.PrefixFrom(r.Address, 128))
		case p.kind == lease.PD && r.Prefix.IsValid():
			out = append(out, r.Prefix.Masked())
		}
	}
	pc.cands = out
	return out
}

func (pc *pctx) hintCandidates(p *prefix, ia *iaReq) []netip.Prefix {
	out := pc.cands[:0]
	for _, h := range ia.hints {
		if h.Addr().IsUnspecified() {
			continue // a length-only hint (RFC 8168)
		}
		if p.kind == lease.PD && h.Bits() != p.length {
			h = netip.PrefixFrom(h.Addr(), p.length).Masked()
		}
		out = append(out, h)
	}
	pc.cands = out
	return out
}

// interfaceIDCandidate builds the address from the prefix's upper 64 bits
// and the client's modified EUI-64 interface identifier, taken from option
// 79, the innermost relay's peer-address, or the link-local source address.
// Two servers given the same client compute the same address.
func (pc *pctx) interfaceIDCandidate(p *prefix) (netip.Prefix, bool) {
	if p.kind != lease.NA || p.address.Bits() > 64 {
		return netip.Prefix{}, false
	}
	iid, ok := pc.clientIID()
	if !ok {
		return netip.Prefix{}, false
	}
	b := p.address.Addr().As16()
	copy(b[8:], iid[:])
	return netip.PrefixFrom(netip.AddrFrom16(b), 128), true
}

// clientIID returns the client's modified EUI-64 interface identifier.
func (pc *pctx) clientIID() ([8]byte, bool) {
	if n := len(pc.relays); n > 0 {
		inner := pc.relays[n-1]
		if mac := clientLinkLayer(inner); len(mac) == 6 {
			return eui64(mac), true
		}
		if a, ok := netip.AddrFromSlice(inner.PeerAddr); ok && a.Unmap().IsLinkLocalUnicast() {
			return lowIID(a.Unmap()), true
		}
		return [8]byte{}, false
	}
	if a := pc.src.Addr(); a.IsLinkLocalUnicast() {
		return lowIID(a), true
	}
	return [8]byte{}, false
}

func lowIID(a netip.Addr) [8]byte {
	var iid [8]byte
	b := a.As16()
	copy(iid[:], b[8:])
	return iid
}

// eui64 is RFC 4291's modified EUI-64 of a 48-bit MAC.
func eui64(mac []byte) [8]byte {
	return [8]byte{mac[0] ^ 0x02, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]}
}

// randomLease draws up to 62 random bits inside the pool, collision-checked.
func (pc *pctx) randomLease(p *prefix, ia *iaReq, ttl time.Duration) netip.Prefix {
	bits := p.length - p.pool.Bits()
	if bits <= 0 {
		return pc.tryEach(p, ia, ttl, pc.candidates(netip.PrefixFrom(p.pool.Addr(), p.length)), true)
	}
	for range randomTries {
		c := slotAt(p, randomOffset(bits))
		if pc.claim(p, ia, c, ttl, true) {
			return c
		}
	}
	return netip.Prefix{}
}

func randomOffset(bits int) uint64 {
	if bits > 62 {
		bits = 62
	}
	return rand.Uint64() & (1<<uint(bits) - 1)
}

// bestFitLease scans the pool's slots from a moving cursor and takes the
// first free one, so delegations pack from the start of the pool. A scan
// that finds nothing marks the pool full for exhaustedFor, so a flood of
// Solicits for a full pool costs one scan per interval, not one each.
func (pc *pctx) bestFitLease(p *prefix, ia *iaReq, ttl time.Duration) netip.Prefix {
	if pc.now.UnixNano() < p.fullUntil.Load() {
		return netip.Prefix{}
	}
	bits := p.length - p.pool.Bits()
	if bits < 0 {
		return netip.Prefix{}
	}
	if bits > 62 {
		bits = 62
	}
	slots := uint64(1) << uint(bits)
	n := min(slots, bestFitScan)
	start := p.cursor.Load()
	for i := range n {
		off := (start + i) % slots
		c := slotAt(p, off)
		if pc.claim(p, ia, c, ttl, true) {
			p.cursor.Store(off + 1)
			return c
		}
	}
	p.fullUntil.Store(pc.now.Add(exhaustedFor).UnixNano())
	return netip.Prefix{}
}

// slotAt returns the off-th prefix of p's length inside p's pool.
func slotAt(p *prefix, off uint64) netip.Prefix { return lease.SubPrefix(p.pool, p.length, off) }

// reservedIID reports the interface identifiers RFC 5453 reserves: the
// subnet-router anycast (all zero) and the subnet anycast block.
func reservedIID(a netip.Addr) bool {
	b := a.As16()
	iid := binary.BigEndian.Uint64(b[8:])
	return iid == 0 || iid >= 0xfdffffffffffff80
}

// extensionLease runs generate-lease for ia and claims the extension's
// answer. skip is true when an extension set skip-lease.
func (pc *pctx) extensionLease(p *prefix, ia *iaReq, ttl time.Duration) (netip.Prefix, bool) {
	if !pc.has(hooks.GenerateLease) {
		return netip.Prefix{}, false
	}
	c := pc.hookContext(hooks.GenerateLease)
	c.Allocation = &hooks.Allocation{IA: ia.view(), PrefixName: p.name, From: p.pool, Length: p.length}
	if !pc.run(c) {
		return netip.Prefix{}, true
	}
	if pc.env.IsTrue(hooks.KeySkipLease) {
		_ = pc.env.Delete(hooks.KeySkipLease)
		return netip.Prefix{}, true
	}
	cand := c.Allocation.Candidate
	if !cand.IsValid() {
		return netip.Prefix{}, false
	}
	if !pc.claim(p, ia, cand, ttl, false) {
		pc.log().Warn("generate-lease answer refused: not free or not acceptable", "lease", cand, "prefix", p.name)
		return netip.Prefix{}, false
	}
	return cand, false
}

// acceptable runs check-lease-acceptable for a candidate.
func (pc *pctx) acceptable(p *prefix, ia *iaReq, cand netip.Prefix) bool {
	if !pc.has(hooks.CheckLeaseAcceptable) {
		return true
	}
	c := pc.hookContext(hooks.CheckLeaseAcceptable)
	c.Allocation = &hooks.Allocation{IA: ia.view(), PrefixName: p.name, From: p.pool, Length: p.length,
		Candidate: cand, Acceptable: true}
	if !pc.run(c) {
		return false
	}
	return c.Allocation.Acceptable
}
