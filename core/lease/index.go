package lease

import (
	"errors"
	"math"
	"net/netip"
	"time"
)

// none marks the end of a slot list.
const none = ^uint32(0)

// slotRec is one lease in memory: 80 bytes and no pointers, so a million
// leases cost the garbage collector nothing to scan. DUIDs and names are
// interned; the binding and DUID indexes are lists threaded through the
// records (next), headed in small maps.
type slotRec struct {
	addr      [16]byte
	start     int64
	expires   int64
	updated   int64
	preferred int64
	valid     int64
	duid      uint32 // index into index.duids
	iaid      uint32
	nextB     uint32 // next slot of the same binding
	nextD     uint32 // next slot of the same DUID, or next free slot
	link      uint16 // index into index.names
	name      uint16
	bits      uint8
	kind      Kind // 0: free slot
	state     State
}

// duidEntry is an interned DUID, the head of its slot list and the number
// of leases holding it.
type duidEntry struct {
	s    string
	head uint32
	refs uint32
}

type bindKey struct {
	duid uint32
	iaid uint32
	kind Kind
}

// index holds every lease in memory. It is not safe for concurrent use;
// BoltStore guards it.
type index struct {
	recs     []slotRec
	free     []uint32
	byPrefix map[[prefixKeyLen]byte]uint32
	sorted   sortedIndex
	lenCount [129]uint32 // leases per prefix length
	bindings map[bindKey]uint32
	duids    []duidEntry
	duidIdx  map[string]uint32
	freeDUID []uint32
	names    []string
	nameIdx  map[string]uint16
	counts   [PD + 1][Expired + 1]int
	n        int
}

// errTooManyNames is returned when more distinct link and prefix names
// are used than a record's 16-bit name index can hold.
var errTooManyNames = errors.New("more than 65535 distinct link and prefix names")

func newIndex(sizeHint int) *index {
	return &index{
		recs:     make([]slotRec, 0, sizeHint),
		byPrefix: make(map[[prefixKeyLen]byte]uint32, sizeHint),
		bindings: make(map[bindKey]uint32),
		duidIdx:  make(map[string]uint32),
		nameIdx:  make(map[string]uint16),
	}
}

// nameID returns the interned id of name, adding it if needed.
func (x *index) nameID(name []byte) (uint16, error) {
	if id, ok := x.nameIdx[string(name)]; ok {
		return id, nil
	}
	if len(x.names) > math.MaxUint16 {
		return 0, errTooManyNames
	}
	id := uint16(len(x.names))
	s := string(name)
	x.names = append(x.names, s)
	x.nameIdx[s] = id
	return id, nil
}

// hasNames reports whether both names are already interned.
func (x *index) hasNames(link, name []byte) (uint16, uint16, bool) {
	l, ok1 := x.nameIdx[string(link)]
	n, ok2 := x.nameIdx[string(name)]
	return l, n, ok1 && ok2
}

// put inserts or replaces the lease of r's prefix; link and name are
// interned ids.
func (x *index) put(r *record, link, name uint16) {
	k := r.key()
	id := x.refDUID(r.duid) // before unlinking: a renewal keeps its DUID string
	slot, ok := x.byPrefix[k]
	if ok {
		x.unlink(slot)
	} else {
		slot = x.alloc()
		x.byPrefix[k] = slot
		x.sorted.insert(entryOf(r.addr, r.bits, slot))
		x.lenCount[r.bits]++
		x.n++
	}
	x.recs[slot] = slotRec{
		addr: r.addr, bits: r.bits, kind: r.kind, state: r.state,
		start: r.start, expires: r.expires, updated: r.updated,
		preferred: r.preferred, valid: r.valid,
		duid: id, iaid: r.iaid, link: link, name: name,
	}
	x.link(slot)
}

// remove deletes the lease of prefix key k, if any.
func (x *index) remove(k [prefixKeyLen]byte) {
	slot, ok := x.byPrefix[k]
	if !ok {
		return
	}
	x.unlink(slot)
	rc := &x.recs[slot]
	delete(x.byPrefix, k)
	x.sorted.remove(entryOf(rc.addr, rc.bits, slot))
	x.lenCount[rc.bits]--
	x.n--
	*rc = slotRec{}
	x.free = append(x.free, slot)
}

func (x *index) alloc() uint32 {
	if n := len(x.free); n > 0 {
		slot := x.free[n-1]
		x.free = x.free[:n-1]
		return slot
	}
	x.recs = append(x.recs, slotRec{})
	return uint32(len(x.recs) - 1)
}

// link threads slot into its binding and DUID lists and counts it.
func (x *index) link(slot uint32) {
	rc := &x.recs[slot]
	bk := bindKey{rc.duid, rc.iaid, rc.kind}
	rc.nextB = none
	if head, ok := x.bindings[bk]; ok {
		rc.nextB = head
	}
	x.bindings[bk] = slot
	d := &x.duids[rc.duid]
	rc.nextD, d.head = d.head, slot
	x.counts[rc.kind][rc.state]++
}

// unlink takes slot out of its binding and DUID lists, drops its DUID
// reference and uncounts it.
func (x *index) unlink(slot uint32) {
	rc := &x.recs[slot]
	bk := bindKey{rc.duid, rc.iaid, rc.kind}
	if head := x.bindings[bk]; head == slot {
		if rc.nextB == none {
			delete(x.bindings, bk)
		} else {
			x.bindings[bk] = rc.nextB
		}
	} else {
		x.cut(head, slot, func(r *slotRec) *uint32 { return &r.nextB })
	}
	d := &x.duids[rc.duid]
	if d.head == slot {
		d.head = rc.nextD
	} else {
		x.cut(d.head, slot, func(r *slotRec) *uint32 { return &r.nextD })
	}
	x.counts[rc.kind][rc.state]--
	x.derefDUID(rc.duid)
}

// cut removes slot from the list starting at head, linked by next.
func (x *index) cut(head, slot uint32, next func(*slotRec) *uint32) {
	for i := head; i != none; {
		p := next(&x.recs[i])
		if *p == slot {
			*p = *next(&x.recs[slot])
			return
		}
		i = *p
	}
}

// refDUID interns duid and takes a reference to it.
func (x *index) refDUID(duid []byte) uint32 {
	id, ok := x.duidIdx[string(duid)]
	if !ok {
		s := string(duid)
		if n := len(x.freeDUID); n > 0 {
			id = x.freeDUID[n-1]
			x.freeDUID = x.freeDUID[:n-1]
		} else {
			id = uint32(len(x.duids))
			x.duids = append(x.duids, duidEntry{})
		}
		x.duids[id] = duidEntry{s: s, head: none}
		x.duidIdx[s] = id
	}
	x.duids[id].refs++
	return id
}

func (x *index) derefDUID(id uint32) {
	d := &x.duids[id]
	if d.refs--; d.refs > 0 {
		return
	}
	delete(x.duidIdx, d.s)
	*d = duidEntry{head: none}
	x.freeDUID = append(x.freeDUID, id)
}

// lease rebuilds the Lease held in slot.
func (x *index) lease(slot uint32) Lease {
	rc := &x.recs[slot]
	return Lease{
		Prefix:     netip.PrefixFrom(netip.AddrFrom16(rc.addr), int(rc.bits)),
		Kind:       rc.kind,
		DUID:       []byte(x.duids[rc.duid].s),
		IAID:       rc.iaid,
		Link:       x.names[rc.link],
		PrefixName: x.names[rc.name],
		State:      rc.state,
		Preferred:  time.Duration(rc.preferred),
		Valid:      time.Duration(rc.valid),
		Start:      timeOf(rc.start),
		Expires:    timeOf(rc.expires),
		Updated:    timeOf(rc.updated),
	}
}

func keyOf(p netip.Prefix) [prefixKeyLen]byte {
	var k [prefixKeyLen]byte
	a := p.Addr().As16()
	copy(k[:16], a[:])
	k[16] = uint8(p.Bits())
	return k
}

func (x *index) get(p netip.Prefix) (Lease, bool) {
	slot, ok := x.byPrefix[keyOf(p)]
	if !ok {
		return Lease{}, false
	}
	return x.lease(slot), true
}

// overlapping finds the stored prefixes that contain p by looking up p
// masked to each prefix length in use (at most 128 map lookups), and
// those inside p, whose first address lies in p, by a range scan.
func (x *index) overlapping(p netip.Prefix) []Lease {
	p = p.Masked()
	var out []Lease
	first := p.Addr()
	for bits := 0; bits < p.Bits(); bits++ {
		if x.lenCount[bits] == 0 {
			continue
		}
		outer := netip.PrefixFrom(first, bits).Masked()
		if outer.Addr() == first {
			continue // starts where p starts: the range scan finds it
		}
		if slot, ok := x.byPrefix[keyOf(outer)]; ok {
			out = append(out, x.lease(slot))
		}
	}
	x.sorted.inside(p, func(e entry) bool {
		out = append(out, x.lease(e.slot))
		return true
	})
	return out
}

func (x *index) byBinding(b Binding) []Lease {
	id, ok := x.duidIdx[b.DUID]
	if !ok {
		return nil
	}
	head, ok := x.bindings[bindKey{id, b.IAID, b.Kind}]
	if !ok {
		return nil
	}
	var out []Lease
	for i := head; i != none; i = x.recs[i].nextB {
		out = append(out, x.lease(i))
	}
	return out
}

func (x *index) byDUID(duid []byte) []Lease {
	id, ok := x.duidIdx[string(duid)]
	if !ok {
		return nil
	}
	var out []Lease
	for i := x.duids[id].head; i != none; i = x.recs[i].nextD {
		out = append(out, x.lease(i))
	}
	return out
}

// expired returns the leases whose Expires is before now (Unix nanos).
func (x *index) expired(now int64) []Lease {
	var out []Lease
	for i := range x.recs {
		if rc := &x.recs[i]; rc.kind != 0 && rc.expires < now {
			out = append(out, x.lease(uint32(i)))
		}
	}
	return out
}

func (x *index) each(fn func(Lease) bool) {
	x.sorted.scan(entry{}, func(e entry) bool { return fn(x.lease(e.slot)) })
}
