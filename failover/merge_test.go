package failover

import (
	"strings"
	"testing"
	"time"

	"github.com/hook6/hook6/core/lease"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// The reference's "Upgrading Two Independent Partners": two servers that
// split a /64 into /65 ranges become a pair (ranges removed,
// max-leases-per-binding 1). The update exchange merges both databases;
// every client keeps its address when it renews with the server it knows;
// a client that held a lease on each server keeps one, and the other is
// given lifetime 0 at its next contact.
func TestMergeOfSplitRangeServers(t *testing.T) {
	eraA := strings.Replace(pairConfig, "address: 2001:db8:1::/64, dhcp-type: dhcp",
		"address: 2001:db8:1::/64, range: 2001:db8:1::/65, dhcp-type: dhcp", 1)
	eraB := strings.Replace(pairConfig, "address: 2001:db8:1::/64, dhcp-type: dhcp",
		"address: 2001:db8:1::/64, range: 2001:db8:1:0:8000::/65, dhcp-type: dhcp", 1)
	eraA = strings.Replace(eraA, "max-leases-per-binding: 1", "max-leases-per-binding: 0", 1)
	eraB = strings.Replace(eraB, "max-leases-per-binding: 1", "max-leases-per-binding: 0", 1)
	var onA, onB map[int]grant
	p := newPair(t, pairOpts{noSync: true, prepare: func(priDir, secDir string) {
		onA = splitEra(t, priDir, "primary", eraA, []int{1, 2, 3, 4, 5, 6, 21, 22, 23})
		onB = splitEra(t, secDir, "secondary", eraB, []int{11, 12, 13, 14, 15, 16, 21, 22, 23})
	}})
	p.start()
	p.waitNormal(t, 10*time.Second)
	p.waitSame(t, 10*time.Second)
	if n := p.pri.store.Len(); n != 18 {
		t.Fatalf("merged database holds %d leases, want 18", n)
	}
	for _, c := range []int{21, 22, 23} {
		b := lease.Binding{DUID: string(clientDUID(c)), IAID: 1, Kind: lease.NA}
		if n := len(p.sec.store.ByBinding(b)); n != 2 {
			t.Errorf("client %d has %d leases on the secondary, want 2 (one from each era server)", c, n)
		}
	}
	renew := func(n *node, c int, hints ...grant) []grant {
		t.Helper()
		var ia = iaNA(1)
		for _, h := range hints {
			ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: h.p.Addr().AsSlice()})
		}
		rep := n.exchangeAdmitted(newMsg(dhcpv6.MessageTypeRenew, c, n.serverID(), ia))
		if rep == nil {
			t.Fatalf("%s did not answer client %d's Renew", n.name, c)
		}
		gs, _ := grants(rep)
		return gs
	}
	for c, g := range onA {
		if c > 20 {
			continue
		}
		if gs := renew(p.pri, c, g); len(gs) != 1 || gs[0].p != g.p || gs[0].valid == 0 {
			t.Errorf("client %d renewing %s with the primary got %v", c, g.p, gs)
		}
	}
	for c, g := range onB {
		if c > 20 {
			continue
		}
		if gs := renew(p.sec, c, g); len(gs) != 1 || gs[0].p != g.p || gs[0].valid == 0 {
			t.Errorf("client %d renewing %s with the secondary got %v", c, g.p, gs)
		}
	}
	for _, c := range []int{21, 22, 23} {
		gs := renew(p.pri, c, onA[c], onB[c])
		live, dead := 0, 0
		for _, g := range gs {
			if g.valid > 0 {
				live++
			} else {
				dead++
			}
		}
		if live != 1 || dead != 1 {
			t.Errorf("client %d with two leases renewed into %v: want one kept, one with lifetime 0", c, gs)
		}
	}
	p.waitSame(t, 5*time.Second)
	for _, c := range []int{21, 22, 23} {
		b := lease.Binding{DUID: string(clientDUID(c)), IAID: 1, Kind: lease.NA}
		held := 0
		for _, l := range p.sec.store.ByBinding(b) {
			if l.State == lease.Leased {
				held++
			}
		}
		if held != 1 {
			t.Errorf("client %d still holds %d leases on the secondary", c, held)
		}
	}
}
