package labbench

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// Population describes a generated lease database: addresses spread over
// one pool and delegated prefixes over another, every lease of its own
// client (DUID-LLT, 14 octets, as perfdhcp sends).
type Population struct {
	Addresses, Prefixes int
	Link                string
	AddrName, PDName    string // configured prefix names
	AddrPool            netip.Prefix
	PDPool              netip.Prefix
	PDLen               int
	Valid               time.Duration
}

// chunk is how many leases one generating commit writes.
const chunk = 50_000

// Generate writes the population into a lease database at path (created
// if needed) without fsync, and returns how many leases it holds.
func Generate(ctx context.Context, path string, p Population, now time.Time) (int, error) {
	if p.Prefixes > 0 && (p.PDLen <= p.PDPool.Bits() || p.PDLen > 64 || p.PDLen-p.PDPool.Bits() > 32 ||
		1<<(p.PDLen-p.PDPool.Bits()) < p.Prefixes) {
		return 0, fmt.Errorf("generate leases: %d /%d prefixes do not fit in %v", p.Prefixes, p.PDLen, p.PDPool)
	}
	s, err := lease.Open(path, lease.Options{NoSync: true})
	if err != nil {
		return 0, fmt.Errorf("generate leases: %w", err)
	}
	total := p.Addresses + p.Prefixes
	batch := make([]lease.Lease, 0, chunk)
	for i := 0; i < total; i++ {
		batch = append(batch, p.lease(i, now))
		if len(batch) == chunk || i == total-1 {
			if err := s.Put(ctx, batch...); err != nil {
				s.Close()
				return 0, fmt.Errorf("generate leases: write %d: %w", i+1, err)
			}
			batch = batch[:0]
		}
	}
	n := s.Len()
	if err := s.Close(); err != nil {
		return 0, fmt.Errorf("generate leases: close: %w", err)
	}
	return n, nil
}

// lease returns the i-th lease: the first Addresses are addresses, the
// rest delegated prefixes.
func (p Population) lease(i int, now time.Time) lease.Lease {
	l := lease.Lease{
		DUID: duid(i), IAID: 1, Link: p.Link, State: lease.Leased,
		Preferred: p.Valid, Valid: p.Valid, Start: now, Expires: now.Add(p.Valid), Updated: now,
	}
	if i < p.Addresses {
		l.Kind, l.PrefixName, l.Prefix = lease.NA, p.AddrName, scatterAddr(p.AddrPool, i)
	} else {
		l.Kind, l.PrefixName, l.Prefix = lease.PD, p.PDName, nthPrefix(p.PDPool, p.PDLen, i-p.Addresses)
	}
	return l
}

// duid returns a DUID-LLT (type 1, Ethernet, a fixed time, a MAC made of n).
func duid(n int) []byte {
	d := []byte{0, 1, 0, 1, 0x2f, 0x1a, 0x33, 0x00, 0x52, 0x54, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(d[10:], uint32(n))
	return d
}

// scatterAddr spreads address i over the interface-identifier half of a
// /64 pool (multiplying by an odd constant is a bijection on 64 bits).
func scatterAddr(pool netip.Prefix, i int) netip.Prefix {
	a := pool.Addr().As16()
	binary.BigEndian.PutUint64(a[8:], uint64(i+1)*0x9e3779b97f4a7c15)
	return netip.PrefixFrom(netip.AddrFrom16(a), 128)
}

// nthPrefix returns the j-th prefix of length bits (at most 64) inside pool.
func nthPrefix(pool netip.Prefix, bits, j int) netip.Prefix {
	a := pool.Addr().As16()
	hi := binary.BigEndian.Uint64(a[:8])
	hi |= uint64(j) << (64 - bits)
	binary.BigEndian.PutUint64(a[:8], hi)
	return netip.PrefixFrom(netip.AddrFrom16(a), bits)
}
