package failover

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// deleteWithin is the daemon's hookctl lease delete: the engine removes
// every lease inside p, then the endpoint sends those removed as RESET.
func (n *node) deleteWithin(p netip.Prefix) int {
	n.t.Helper()
	var last []lease.Lease
	n.store.Range(func(l lease.Lease) bool {
		if p.Bits() <= l.Prefix.Bits() && p.Contains(l.Prefix.Addr()) {
			last = append(last, l)
		}
		return true
	})
	k, err := n.srv.DeleteWithin(context.Background(), p)
	if err != nil {
		n.t.Fatal(err)
	}
	var gone []lease.Lease
	for _, l := range last {
		if _, ok := n.store.Get(l.Prefix); !ok {
			gone = append(gone, l)
		}
	}
	if err := n.ep.Reset(gone); err != nil {
		n.t.Fatal(err)
	}
	return k
}

func has(s lease.Store, p netip.Prefix) bool {
	_, ok := s.Get(p)
	return ok
}

// An operator's delete on either server removes the lease from the
// partner too (RESET); once the partner has acknowledged, the address is
// available again on the server that owns its half.
func TestOperatorDeleteReplicated(t *testing.T) {
	clock := &testClock{}
	p := newPair(t, pairOpts{noSync: true, clock: clock})
	p.start()
	p.waitNormal(t, 10*time.Second)
	g := map[int]grant{}
	for c := range 6 {
		g[c] = p.pri.bind(c, c == 5)
	}
	p.waitSame(t, 5*time.Second)

	// On the primary, which granted them: an address and the prefix.
	if n := p.pri.deleteWithin(g[0].p); n != 1 {
		t.Fatalf("deleted %d leases, want 1", n)
	}
	p.pri.deleteWithin(g[5].p)
	waitFor(t, 5*time.Second, "the secondary to drop the deleted leases", func() bool {
		return !has(p.sec.store, g[0].p) && !has(p.sec.store, g[5].p)
	})
	p.waitSame(t, 5*time.Second)
	waitFor(t, 5*time.Second, "the primary to see the removal acknowledged", func() bool {
		_, known := p.pri.ep.rep.acks.get(keyOf(g[0].p))
		return !known
	})
	if !p.pri.ep.Filter(g[0].p, lease.NA) {
		t.Error("a deleted address whose removal the partner acknowledged is not available to its owner")
	}
	if _, ok := p.pri.ep.rep.tomb(keyOf(g[0].p)); ok {
		t.Error("the primary keeps the tomb of an acknowledged removal")
	}

	// On the secondary, of leases the primary granted: the RESET is later
	// than the primary's binding (Figure 4 "accept"), so the primary drops
	// them too.
	clock.advance(10 * time.Second)
	p.sec.deleteWithin(g[1].p)
	p.sec.deleteWithin(g[2].p)
	waitFor(t, 5*time.Second, "the primary to drop the leases deleted on the secondary", func() bool {
		return !has(p.pri.store, g[1].p) && !has(p.pri.store, g[2].p)
	})
	p.waitSame(t, 5*time.Second)
	if n := p.pri.store.Len(); n != 2 {
		t.Errorf("the primary holds %d leases, want 2", n)
	}
	if got := p.sec.ep.Stats()["rejected-by-partner"].(uint64); got != 0 {
		t.Errorf("the partner rejected %d updates", got)
	}
}

// A delete while the partner cannot be reached waits in the journal (a
// restart does not lose it) and reaches the partner once they talk again;
// meanwhile the address is not given to anyone.
func TestOperatorDeleteWhilePartnerUnreachable(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true, viaProxy: true})
	p.start()
	p.waitNormal(t, 10*time.Second)
	g := map[int]grant{}
	for c := range 4 {
		g[c] = p.pri.bind(c, false)
	}
	p.waitSame(t, 5*time.Second)

	p.proxy.setCut(true)
	waitState(t, p.pri, CommInterrupted, 5*time.Second)
	p.pri.deleteWithin(g[0].p)
	p.pri.deleteWithin(g[1].p)
	if p.pri.ep.Filter(g[0].p, lease.NA) {
		t.Error("a deleted address the partner still holds is available")
	}
	p.pri.restart(true)
	if p.pri.ep.Filter(g[0].p, lease.NA) {
		t.Error("after a restart, a deleted address the partner still holds is available")
	}
	if !has(p.sec.store, g[0].p) {
		t.Fatal("the secondary lost the lease while the link was cut")
	}

	p.proxy.setCut(false)
	p.waitNormal(t, 15*time.Second)
	waitFor(t, 5*time.Second, "the secondary to drop the leases deleted meanwhile", func() bool {
		return !has(p.sec.store, g[0].p) && !has(p.sec.store, g[1].p)
	})
	p.waitSame(t, 5*time.Second)
	if !has(p.sec.store, g[2].p) || !has(p.sec.store, g[3].p) {
		t.Error("the secondary lost leases that were not deleted")
	}
	waitFor(t, 5*time.Second, "the deleted address to be available again", func() bool {
		return p.pri.ep.Filter(g[0].p, lease.NA)
	})
}

// A RESET the partner answers from its UPDREQ (RECOVER): a secondary
// that was down when the operator deleted leases on the primary gets the
// removal when it comes back.
func TestOperatorDeleteReachesRecoveringPartner(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true})
	p.start()
	p.waitNormal(t, 10*time.Second)
	g := map[int]grant{}
	for c := range 3 {
		g[c] = p.pri.bind(c, c == 2)
	}
	p.waitSame(t, 5*time.Second)
	p.sec.stop()
	waitState(t, p.pri, CommInterrupted, 5*time.Second)
	p.pri.deleteWithin(netip.MustParsePrefix("::/0"))
	if n := p.pri.store.Len(); n != 0 {
		t.Fatalf("the primary still holds %d leases", n)
	}
	p.sec.open(true)
	p.sec.start()
	p.waitNormal(t, 15*time.Second)
	waitFor(t, 5*time.Second, "the secondary to drop every lease", func() bool { return p.sec.store.Len() == 0 })
	if n := len(p.pri.ep.rep.acks.keys()); n != 0 {
		t.Errorf("the primary still believes the partner holds %d leases", n)
	}
}

// A lease deleted while an update of it is in flight: the partner
// acknowledges that version, then gets the RESET.
func TestOperatorDeleteDuringFlight(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true, viaProxy: true})
	p.start()
	p.waitNormal(t, 10*time.Second)
	p.proxy.setCut(true)
	waitState(t, p.pri, CommInterrupted, 5*time.Second)
	g := p.pri.bind(1, false) // never acknowledged: the partner does not hold it
	p.pri.deleteWithin(g.p)
	if _, ok := p.pri.ep.rep.tomb(keyOf(g.p)); !ok {
		t.Fatal("no tomb for the deleted lease")
	}
	p.proxy.setCut(false)
	p.waitNormal(t, 15*time.Second)
	time.Sleep(200 * time.Millisecond)
	p.waitSame(t, 5*time.Second)
	if has(p.sec.store, g.p) {
		t.Error("the secondary holds a lease deleted before it was sent")
	}
	waitFor(t, 5*time.Second, "the tomb of a lease the partner never held to go", func() bool {
		_, ok := p.pri.ep.rep.tomb(keyOf(g.p))
		return !ok
	})
}
