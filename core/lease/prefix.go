package lease

import (
	"encoding/binary"
	"net/netip"
)

// SubPrefix returns the i-th prefix of length bits inside p (counting from
// p's first address): the prefix arithmetic allocation and failover's pool
// split share. i must be below 2^(bits - p.Bits()).
func SubPrefix(p netip.Prefix, bits int, i uint64) netip.Prefix {
	b := p.Masked().Addr().As16()
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	shift := uint(128 - bits)
	if shift >= 64 {
		hi += i << (shift - 64)
	} else {
		add := i << shift
		nlo := lo + add
		if nlo < lo {
			hi++
		}
		lo = nlo
		if shift > 0 {
			hi += i >> (64 - shift)
		}
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.PrefixFrom(netip.AddrFrom16(b), bits)
}
