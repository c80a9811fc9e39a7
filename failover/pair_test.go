package failover

import (
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// A fresh pair: the primary starts in PARTNER-DOWN, the secondary in
// RECOVER; they meet, exchange updates and both reach NORMAL; bindings
// the primary gives reach the secondary's store.
func TestPairReachesNormalAndReplicates(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true})
	p.start()
	p.waitNormal(t, 10*time.Second)
	var got []grant
	for c := range 20 {
		got = append(got, p.pri.bind(c, c%4 == 3))
	}
	for _, g := range got {
		if g.p.Bits() == 128 && g.p.Addr().As16()[15]&1 != 1 {
			t.Errorf("primary leased %s: not an odd address", g.p)
		}
	}
	p.waitSame(t, 5*time.Second)
	if n := p.sec.store.Len(); n != 20 {
		t.Fatalf("secondary holds %d leases, want 20", n)
	}
	st := p.pri.ep.Stats()
	if st["acked"].(uint64) < 20 || st["v6-binding-sent"].(uint64) < 20 {
		t.Errorf("primary stats %v", st)
	}
	if r := p.sec.ep.Stats()["v6-binding-received"].(uint64); r < 20 {
		t.Errorf("secondary received %d bindings", r)
	}
}

// The primary dies without a word; the secondary goes to
// COMMUNICATIONS-INTERRUPTED (answering every client, renewals capped by
// the MCLT), then PARTNER-DOWN on the operator's command (new clients get
// its even addresses); the primary comes back, recovers the secondary's
// bindings, waits the MCLT and both return to NORMAL with equal databases.
func TestPartnerDownAndRecover(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true, viaProxy: true})
	p.start()
	p.waitNormal(t, 10*time.Second)
	if p.sec.ep.Admit("SOLICIT", false) || !p.sec.ep.Admit("RENEW", true) || !p.pri.ep.Admit("SOLICIT", false) {
		t.Fatal("in NORMAL the primary answers everyone and the secondary only messages sent to it")
	}
	old := map[int]grant{}
	for c := range 8 {
		old[c] = p.pri.bind(c, false)
	}
	p.waitSame(t, 5*time.Second)

	// kill -9: the link drops, the primary says nothing.
	p.proxy.setCut(true)
	p.pri.stop()
	waitState(t, p.sec, CommInterrupted, 5*time.Second)
	if !p.sec.ep.Admit("REBIND", false) || !p.sec.ep.Admit("SOLICIT", false) {
		t.Fatal("in COMMUNICATIONS-INTERRUPTED the secondary answers everyone")
	}
	// A client of the primary rebinds with the secondary: same address.
	rb := p.sec.exchange(newMsg(dhcpv6.MessageTypeRebind, 0, iaNA(1, old[0].p.Addr())))
	gs, _ := grants(rb)
	if len(gs) != 1 || gs[0].p != old[0].p || gs[0].valid == 0 {
		t.Fatalf("rebind on the secondary: %v", gs)
	}
	// The operator declares the primary down (later than its last
	// operation: STATE times have a resolution of a second).
	time.Sleep(1100 * time.Millisecond)
	if err := p.sec.ep.SetPartnerDown(time.Time{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, p.sec, PartnerDown, time.Second)
	fresh := map[int]grant{}
	for c := 100; c < 106; c++ {
		g := p.sec.bind(c, false)
		if g.p.Addr().As16()[15]&1 != 0 {
			t.Errorf("secondary in partner-down leased %s: not an even address", g.p)
		}
		fresh[c] = g
	}

	// The primary restarts and the link is back.
	p.proxy.setCut(false)
	p.pri.open(true)
	p.pri.start()
	p.waitNormal(t, 15*time.Second)
	for _, s := range []State{Recover, RecoverWait, RecoverDone} {
		if !passedThrough(p.pri, s) {
			t.Errorf("the primary did not pass through %s: %+v", s, p.pri.ep.Status().History)
		}
	}
	p.waitSame(t, 5*time.Second)
	for c, g := range fresh {
		l, ok := p.pri.store.Get(g.p)
		if !ok || string(l.DUID) != string(clientDUID(c)) {
			t.Errorf("primary lacks the secondary's lease %s of client %d", g.p, c)
		}
	}
	seen := map[netip.Prefix]bool{}
	for _, g := range old {
		seen[g.p] = true
	}
	for _, g := range fresh {
		if seen[g.p] {
			t.Errorf("%s leased twice", g.p)
		}
	}
}

// Both servers were declared partner-down during a partition (an operator
// error) and the same clients renewed with each. When they meet they pass
// through POTENTIAL-CONFLICT (no client served), exchange their updates in
// the order of §8.10 and agree, for each lease, on the newer binding.
func TestPotentialConflictNewerWins(t *testing.T) {
	clock := &testClock{}
	p := newPair(t, pairOpts{noSync: true, viaProxy: true, clock: clock})
	p.start()
	p.waitNormal(t, 10*time.Second)
	a, b := p.pri.bind(1, false), p.pri.bind(2, false)
	p.waitSame(t, 5*time.Second)
	// The first lease is capped at the MCLT (§4.4.1); once the partner has
	// acknowledged, a renewal gets the whole lifetime.
	for c, g := range map[int]grant{1: a, 2: b} {
		rep := p.pri.exchangeAdmitted(newMsg(dhcpv6.MessageTypeRenew, c, p.pri.serverID(), iaNA(1, g.p.Addr())))
		if gs, _ := grants(rep); len(gs) != 1 || gs[0].valid != 2*time.Hour {
			t.Fatalf("renewal after the acknowledgement: %v (first lease %s)", gs, g.valid)
		}
	}
	p.waitSame(t, 5*time.Second)

	p.proxy.setCut(true)
	waitState(t, p.pri, CommInterrupted, 5*time.Second)
	waitState(t, p.sec, CommInterrupted, 5*time.Second)
	for _, n := range []*node{p.pri, p.sec} {
		if err := n.ep.SetPartnerDown(time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	rebind := func(n *node, c int, g grant) {
		t.Helper()
		rep := n.exchangeAdmitted(newMsg(dhcpv6.MessageTypeRebind, c, iaNA(1, g.p.Addr())))
		if gs, _ := grants(rep); len(gs) != 1 || gs[0].p != g.p {
			t.Fatalf("%s: rebind of client %d (%s): %v", n.name, c, g.p, gs)
		}
	}
	rebind(p.sec, 1, a) // older for client 1
	rebind(p.pri, 2, b) // older for client 2
	clock.advance(30 * time.Second)
	rebind(p.pri, 1, a) // newer for client 1: the primary's
	rebind(p.sec, 2, b) // newer for client 2: the secondary's
	wantA, _ := p.pri.store.Get(a.p)
	wantB, _ := p.sec.store.Get(b.p)

	p.proxy.setCut(false)
	p.waitNormal(t, 15*time.Second)
	for _, n := range []*node{p.pri, p.sec} {
		if !passedThrough(n, PotentialConflict) {
			t.Errorf("%s did not pass through potential-conflict: %+v", n.name, n.ep.Status().History)
		}
	}
	if !passedThrough(p.pri, ConflictDone) {
		t.Error("the primary did not pass through conflict-done")
	}
	p.waitSame(t, 5*time.Second)
	for _, n := range []*node{p.pri, p.sec} {
		la, _ := n.store.Get(a.p)
		lb, _ := n.store.Get(b.p)
		if la.Expires.Unix() != wantA.Expires.Unix() || lb.Expires.Unix() != wantB.Expires.Unix() {
			t.Errorf("%s: client 1 expires %v (want %v), client 2 %v (want %v)", n.name,
				la.Expires, wantA.Expires, lb.Expires, wantB.Expires)
		}
	}
}
