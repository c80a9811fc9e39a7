package failover

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// Proportional allocation (§4.2.2). Each delegation pool is cut into
// blocks (at most 2^maxBlockBits of them); a block is a "delegable prefix"
// of the RFC, owned by the primary unless the primary gave it to the
// secondary with a BNDUPD carrying the block as an OPTION_IAPREFIX with
// binding-status FREE-BACKUP. A server delegates new prefixes only from
// blocks it owns. A delegated prefix that is released or expires stays in
// its block, so it returns to the block's owner; the primary keeps the
// split at backupShare of each pool's blocks, giving blocks on POOLREQ and
// taking unused ones back with FREE.
const (
	maxBlockBits = 6
	// backupShareDen: the secondary is given one block in backupShareDen
	// (at least one when the pool has two blocks or more).
	backupShareDen = 10
)

// blockBits is how many bits below the pool its blocks are.
func blockBits(pool netip.Prefix, length int) int {
	return max(0, min(maxBlockBits, length-pool.Bits()))
}

// blocksOf lists the blocks of a delegation pool.
func blocksOf(pool netip.Prefix, length int) []netip.Prefix {
	n := blockBits(pool, length)
	out := make([]netip.Prefix, 0, 1<<n)
	for i := range 1 << n {
		out = append(out, lease.SubPrefix(pool, pool.Bits()+n, uint64(i)))
	}
	return out
}

// pools tracks who owns each block.
type pools struct {
	role Role

	mu     sync.RWMutex
	owner  map[pkey]Role // blocks not listed belong to the primary
	giving map[pkey]bool // blocks the primary is handing over: it no longer allocates from them
	full   map[pkey]fullMark
}

type fullMark struct {
	at   time.Time
	full bool
}

func newPools(role Role, owners map[pkey]Role) *pools {
	return &pools{role: role, owner: owners, giving: map[pkey]bool{}, full: map[pkey]fullMark{}}
}

// blockOf returns the block of lo's delegation pools holding p, and the
// pool.
func blockOf(lo *Layout, p netip.Prefix) (block netip.Prefix, pool *Prefix, ok bool) {
	for i := range lo.Prefixes {
		c := &lo.Prefixes[i]
		if c.Kind != lease.PD || !contains(c.Pool, p) {
			continue
		}
		bits := c.Pool.Bits() + blockBits(c.Pool, c.Length)
		if p.Bits() < bits {
			return netip.Prefix{}, c, false
		}
		return netip.PrefixFrom(p.Addr(), bits).Masked(), c, true
	}
	return netip.Prefix{}, nil, false
}

func (ps *pools) setOwner(block netip.Prefix, o Role) {
	ps.mu.Lock()
	ps.owner[keyOf(block)] = o
	delete(ps.giving, keyOf(block))
	ps.mu.Unlock()
}

func (ps *pools) setGiving(block netip.Prefix, on bool) {
	ps.mu.Lock()
	if on {
		ps.giving[keyOf(block)] = true
	} else {
		delete(ps.giving, keyOf(block))
	}
	ps.mu.Unlock()
}

// ownsFree reports whether this server may delegate from block now.
func (ps *pools) ownsFree(block netip.Prefix) bool {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	k := keyOf(block)
	o, ok := ps.owner[k]
	if !ok {
		o = Primary
	}
	return o == ps.role && !ps.giving[k]
}

// ownFull reports whether every block this server owns in pool is full of
// active delegations (so that in PARTNER-DOWN the partner's blocks may be
// used, §8.4.1). The answer is cached for a second.
func (ps *pools) ownFull(store lease.Store, pool *Prefix, now time.Time) bool {
	k := keyOf(pool.Pool)
	ps.mu.RLock()
	m, ok := ps.full[k]
	ps.mu.RUnlock()
	if ok && now.Sub(m.at) < time.Second {
		return m.full
	}
	full := true
	for _, b := range blocksOf(pool.Pool, pool.Length) {
		if !ps.ownsFree(b) {
			continue
		}
		capacity := 1 << max(0, min(62, pool.Length-b.Bits()))
		if activeIn(store, b, now) < capacity {
			full = false
			break
		}
	}
	ps.mu.Lock()
	ps.full[k] = fullMark{at: now, full: full}
	ps.mu.Unlock()
	return full
}

// activeIn counts the active leases inside block.
func activeIn(store lease.Store, block netip.Prefix, now time.Time) int {
	n := 0
	for _, l := range store.Overlapping(block) {
		if l.Active(now) {
			n++
		}
	}
	return n
}

// move is one block to hand over (status FREE-BACKUP: to the secondary;
// FREE: back to the primary).
type move struct {
	block  netip.Prefix
	status uint8
}

// rebalance returns the moves that bring each pool to the split: the
// secondary owning one block in backupShareDen. Blocks given are the
// least used; blocks taken back are unused ones.
func (ps *pools) rebalance(lo *Layout, store lease.Store, now time.Time) []move {
	var out []move
	for i := range lo.Prefixes {
		c := &lo.Prefixes[i]
		if c.Kind != lease.PD {
			continue
		}
		blocks := blocksOf(c.Pool, c.Length)
		want := 0
		if len(blocks) >= 2 {
			want = max(1, len(blocks)/backupShareDen)
		}
		type cand struct {
			b    netip.Prefix
			used int
		}
		var mine, theirs []cand
		ps.mu.RLock()
		for _, b := range blocks {
			k := keyOf(b)
			if ps.giving[k] {
				want-- // on its way to the secondary
				continue
			}
			o, ok := ps.owner[k]
			if !ok {
				o = Primary
			}
			if o == Secondary {
				theirs = append(theirs, cand{b: b})
			} else {
				mine = append(mine, cand{b: b})
			}
		}
		ps.mu.RUnlock()
		switch {
		case len(theirs) < want:
			for j := range mine {
				mine[j].used = activeIn(store, mine[j].b, now)
			}
			sort.SliceStable(mine, func(a, b int) bool { return mine[a].used < mine[b].used })
			for _, m := range mine[:min(len(mine), want-len(theirs))] {
				out = append(out, move{block: m.b, status: bsFreeBackup})
			}
		case len(theirs) > want:
			n := len(theirs) - want
			for _, t := range theirs {
				if n == 0 {
					break
				}
				if activeIn(store, t.b, now) == 0 {
					out = append(out, move{block: t.b, status: bsFree})
					n--
				}
			}
		}
	}
	return out
}

// poolBinding is the bare OPTION_IAPREFIX of a block BNDUPD (§7.4 (2)).
func poolBinding(mv move, base time.Time) Option {
	in := OptionList{OptTime(OptLQBaseTime, base), OptU8(OptBindingStatus, mv.status),
		OptTime(OptStartTimeOfState, base)}
	return leaseOption(mv.block, lease.PD, 0, 0, in)
}
