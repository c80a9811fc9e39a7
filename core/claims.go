package core

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// claims holds addresses and prefixes promised to a binding but not (yet)
// committed: those offered in an Advertise, and those being committed by a
// Request in flight. Claiming is atomic with the check against the store,
// so two clients are never given the same lease.
type claims struct {
	mu        sync.Mutex
	lastSweep time.Time
	held      map[netip.Prefix]claim
	byB       map[lease.Binding]heldList
	store     lease.Store
	now       func() time.Time
	max       int
}

type claim struct {
	binding lease.Binding
	until   time.Time
}

// heldList is a binding's claims in the order they were taken. The first
// is held inline, as a binding mostly claims one lease: claiming for a
// new binding then allocates nothing.
type heldList struct {
	n     int
	first netip.Prefix
	more  []netip.Prefix
}

func (h *heldList) add(p netip.Prefix) {
	if h.n == 0 {
		h.first = p
	} else {
		h.more = append(h.more, p)
	}
	h.n++
}

// remove drops p (a binding holds a prefix at most once), keeping the
// order of the others.
func (h *heldList) remove(p netip.Prefix) {
	if h.n == 0 {
		return
	}
	if h.first == p {
		if len(h.more) > 0 {
			h.first = h.more[0]
			h.more = slices.Delete(h.more, 0, 1)
		} else {
			h.first = netip.Prefix{}
		}
		h.n--
		return
	}
	if i := slices.Index(h.more, p); i >= 0 {
		h.more = slices.Delete(h.more, i, i+1)
		h.n--
	}
}

func (h *heldList) at(i int) netip.Prefix {
	if i == 0 {
		return h.first
	}
	return h.more[i-1]
}

func newClaims(store lease.Store, now func() time.Time, max int) *claims {
	return &claims{held: make(map[netip.Prefix]claim), byB: make(map[lease.Binding]heldList), store: store, now: now, max: max}
}

// take claims p for b for ttl when no other binding holds it (in the store
// or as a claim). It reports whether p is now b's. Offers (an Advertise's
// leases) are bounded: when the table is full, an offer is still made but
// not promised, so a flood of Solicits can neither grow memory without
// bound nor slow allocation down. Claims of a commit in flight are always
// recorded (there are at most as many as packets being handled).
func (c *claims) take(p netip.Prefix, b lease.Binding, ttl time.Duration, offer bool) bool {
	now := c.now()
	for _, l := range c.store.Overlapping(p) {
		if l.Active(now) && lease.BindingOf(&l) != b {
			return false
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.held[p]
	if ok && cl.binding != b && now.Before(cl.until) {
		return false
	}
	if ok && cl.binding != b {
		c.unindexLocked(p, cl.binding)
	}
	if offer && len(c.held) >= c.max {
		if now.Sub(c.lastSweep) > time.Second {
			c.sweepLocked(now)
		}
		if len(c.held) >= c.max {
			return true
		}
	}
	if !ok || cl.binding != b {
		h := c.byB[b]
		h.add(p)
		c.byB[b] = h
	}
	c.held[p] = claim{binding: b, until: now.Add(ttl)}
	return true
}

// free reports whether p is free for b (nothing recorded): the cheap test
// allocation makes before asking extensions about a candidate.
func (c *claims) free(p netip.Prefix, b lease.Binding) bool {
	now := c.now()
	for _, l := range c.store.Overlapping(p) {
		if l.Active(now) && lease.BindingOf(&l) != b {
			return false
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.held[p]
	return !ok || cl.binding == b || !now.Before(cl.until)
}

// heldBy appends the unexpired claims of b (an Advertise's offer that a
// Request should confirm) to out.
func (c *claims) heldBy(b lease.Binding, out []netip.Prefix) []netip.Prefix {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.byB[b]
	for i := range h.n {
		p := h.at(i)
		if cl := c.held[p]; now.Before(cl.until) {
			out = append(out, p)
		}
	}
	return out
}

func (c *claims) unindexLocked(p netip.Prefix, b lease.Binding) {
	h := c.byB[b]
	h.remove(p)
	if h.n == 0 {
		delete(c.byB, b)
	} else {
		c.byB[b] = h
	}
}

// release drops claims once their leases are committed or given up.
func (c *claims) release(ps ...netip.Prefix) {
	c.mu.Lock()
	for _, p := range ps {
		if cl, ok := c.held[p]; ok {
			delete(c.held, p)
			c.unindexLocked(p, cl.binding)
		}
	}
	c.mu.Unlock()
}

func (c *claims) sweep() {
	c.mu.Lock()
	c.sweepLocked(c.now())
	c.mu.Unlock()
}

func (c *claims) sweepLocked(now time.Time) {
	c.lastSweep = now
	for p, cl := range c.held {
		if !now.Before(cl.until) {
			delete(c.held, p)
			c.unindexLocked(p, cl.binding)
		}
	}
}
