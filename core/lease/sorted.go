package lease

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sort"
)

// entry is one prefix in address order, pointing at its record slot.
type entry struct {
	hi, lo uint64
	slot   uint32
	bits   uint8
}

func entryOf(addr [16]byte, bits uint8, slot uint32) entry {
	return entry{
		hi:   binary.BigEndian.Uint64(addr[:8]),
		lo:   binary.BigEndian.Uint64(addr[8:]),
		bits: bits,
		slot: slot,
	}
}

// cmp orders by address, then by prefix length.
func (e entry) cmp(f entry) int {
	switch {
	case e.hi != f.hi:
		return cmpU64(e.hi, f.hi)
	case e.lo != f.lo:
		return cmpU64(e.lo, f.lo)
	}
	return int(e.bits) - int(f.bits)
}

func cmpU64(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

// Chunk sizes: an insert moves at most chunkMax entries (12 KiB); a split
// also moves the list of chunk headers (24 bytes per chunk, ~60 KiB at
// 1e6 leases), at most once per chunkMax/2 inserts. Entries appended in
// order (loading at open) fill chunks to chunkFill only, so that later
// inserts rarely split.
const (
	chunkMax  = 512
	chunkFill = 384
)

// sortedIndex keeps prefixes ordered by address in a list of sorted
// chunks: O(log n) lookups, cheap inserts, and range scans for the
// prefixes inside a given prefix.
type sortedIndex struct {
	chunks [][]entry
}

// chunkFor returns the first chunk whose last entry is not below e (the
// last chunk if e is above everything). There is at least one chunk.
func (x *sortedIndex) chunkFor(e entry) int {
	i := sort.Search(len(x.chunks), func(i int) bool {
		c := x.chunks[i]
		return c[len(c)-1].cmp(e) >= 0
	})
	return min(i, len(x.chunks)-1)
}

// insert adds e, whose key must not be present.
func (x *sortedIndex) insert(e entry) {
	last := len(x.chunks) - 1
	if last < 0 || len(x.chunks[last]) >= chunkFill && x.chunks[last][len(x.chunks[last])-1].cmp(e) < 0 {
		c := make([]entry, 1, chunkMax)
		c[0] = e
		x.chunks = append(x.chunks, c)
		return
	}
	ci := x.chunkFor(e)
	c := x.chunks[ci]
	j := sort.Search(len(c), func(j int) bool { return c[j].cmp(e) >= 0 })
	c = slices.Insert(c, j, e)
	if len(c) <= chunkMax {
		x.chunks[ci] = c
		return
	}
	half := len(c) / 2
	right := make([]entry, len(c)-half, chunkMax)
	copy(right, c[half:])
	x.chunks[ci] = c[:half]
	x.chunks = slices.Insert(x.chunks, ci+1, right)
}

// remove deletes the entry with e's key, if present.
func (x *sortedIndex) remove(e entry) {
	if len(x.chunks) == 0 {
		return
	}
	ci := x.chunkFor(e)
	c := x.chunks[ci]
	j := sort.Search(len(c), func(j int) bool { return c[j].cmp(e) >= 0 })
	if j == len(c) || c[j].cmp(e) != 0 {
		return
	}
	c = slices.Delete(c, j, j+1)
	switch {
	case len(c) == 0:
		x.chunks = slices.Delete(x.chunks, ci, ci+1)
	case len(c) < chunkMax/4 && ci+1 < len(x.chunks) && len(c)+len(x.chunks[ci+1]) <= chunkFill:
		x.chunks[ci] = append(c, x.chunks[ci+1]...)
		x.chunks = slices.Delete(x.chunks, ci+1, ci+2)
	default:
		x.chunks[ci] = c
	}
}

// scan calls fn for every entry from the first not below from, in order,
// until fn returns false.
func (x *sortedIndex) scan(from entry, fn func(entry) bool) {
	if len(x.chunks) == 0 {
		return
	}
	ci := x.chunkFor(from)
	c := x.chunks[ci]
	j := sort.Search(len(c), func(j int) bool { return c[j].cmp(from) >= 0 })
	for ; ci < len(x.chunks); ci, j = ci+1, 0 {
		for _, e := range x.chunks[ci][j:] {
			if !fn(e) {
				return
			}
		}
	}
}

// inside calls fn for every entry whose first address lies in p.
func (x *sortedIndex) inside(p netip.Prefix, fn func(entry) bool) {
	first := p.Masked().Addr().As16()
	lo := entryOf(first, 0, 0)
	hi := lastAddr(p)
	x.scan(lo, func(e entry) bool {
		if e.hi > hi.hi || e.hi == hi.hi && e.lo > hi.lo {
			return false
		}
		return fn(e)
	})
}

// lastAddr returns p's last address as an entry key.
func lastAddr(p netip.Prefix) entry {
	e := entryOf(p.Masked().Addr().As16(), 0, 0)
	bits := p.Bits()
	switch {
	case bits <= 64:
		e.hi |= hostMask(bits)
		e.lo = ^uint64(0)
	default:
		e.lo |= hostMask(bits - 64)
	}
	return e
}

// hostMask has the low 64-n bits set.
func hostMask(n int) uint64 {
	if n >= 64 {
		return 0
	}
	return ^uint64(0) >> n
}
