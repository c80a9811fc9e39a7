package lease

import "hash/maphash"

// duidTable interns client DUIDs. It is keyed by a 64-bit hash of the
// DUID rather than by the string, so that a lookup touches no string
// memory until it has a candidate, and a slot costs 16 bytes instead of
// 24. DUIDs whose hash another DUID already holds go to an overflow map.
type duidTable struct {
	seed     maphash.Seed
	byHash   map[uint64]uint32
	overflow map[string]uint32
	ents     []duidEntry
	free     []uint32
	mask     uint64 // all ones; tests narrow it to force collisions
}

// duidEntry is an interned DUID, the head of its slot list and the number
// of leases holding it.
type duidEntry struct {
	s    string
	head uint32
	refs uint32
}

func newDUIDTable() duidTable {
	return duidTable{
		seed:     maphash.MakeSeed(),
		byHash:   make(map[uint64]uint32),
		overflow: make(map[string]uint32),
		mask:     ^uint64(0),
	}
}

func (t *duidTable) hash(s string) uint64 { return maphash.String(t.seed, s) & t.mask }

// find returns the id of duid if it is interned.
func (t *duidTable) find(duid string) (uint32, bool) {
	if id, ok := t.byHash[t.hash(duid)]; ok && t.ents[id].s == duid {
		return id, true
	}
	if len(t.overflow) == 0 {
		return 0, false
	}
	id, ok := t.overflow[duid]
	return id, ok
}

// ref interns duid if needed and takes a reference to it.
func (t *duidTable) ref(duid []byte) uint32 {
	id, ok := t.find(string(duid))
	if !ok {
		s := string(duid)
		if n := len(t.free); n > 0 {
			id, t.free = t.free[n-1], t.free[:n-1]
		} else {
			id = uint32(len(t.ents))
			t.ents = append(t.ents, duidEntry{})
		}
		t.ents[id] = duidEntry{s: s, head: none}
		if h := t.hash(s); t.taken(h) {
			t.overflow[s] = id
		} else {
			t.byHash[h] = id
		}
	}
	t.ents[id].refs++
	return id
}

func (t *duidTable) taken(h uint64) bool {
	_, ok := t.byHash[h]
	return ok
}

func (t *duidTable) holds(h uint64, id uint32) bool {
	cur, ok := t.byHash[h]
	return ok && cur == id
}

// deref drops a reference, forgetting the DUID with its last lease.
func (t *duidTable) deref(id uint32) {
	e := &t.ents[id]
	if e.refs--; e.refs > 0 {
		return
	}
	if h := t.hash(e.s); t.holds(h, id) {
		delete(t.byHash, h)
	} else {
		delete(t.overflow, e.s)
	}
	*e = duidEntry{head: none}
	t.free = append(t.free, id)
}

// len is the number of interned DUIDs.
func (t *duidTable) len() int { return len(t.byHash) + len(t.overflow) }
