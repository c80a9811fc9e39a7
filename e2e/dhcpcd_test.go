package e2e

import (
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// dhcpcd asking for an IA_NA and an IA_PD in one exchange gets both, the
// server records both under the client's DUID, and dhcpcd's Release on
// stop gives both back.
func TestDhcpcdAddressAndPrefix(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 60*time.Second)
	dc := x.lab.Dhcpcd(x.cli, cliIf, lab.DhcpcdOptions{NA: true, PD: true, Release: true})
	dc.Start()

	ev, _, err := dc.WaitEvent(ctx, 0, "BOUND6", nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := ev.DhcpcdAddress("new")
	if !ok || !lanRange.Contains(addr) {
		t.Fatalf("dhcpcd bound address %q, want one inside %v", ev.Vars["new_dhcp6_ia_na1_ia_addr1"], lanRange)
	}
	p, ok := ev.DhcpcdPrefix("new")
	if !ok || p.Bits() != 56 || !lanPD.Contains(p.Addr()) {
		t.Fatalf("dhcpcd delegated prefix %q/%q, want a /56 inside %v",
			ev.Vars["new_dhcp6_ia_pd1_prefix1"], ev.Vars["new_dhcp6_ia_pd1_prefix1_length"], lanPD)
	}
	duid := normDUID(ev.Vars["new_dhcp6_client_id"])
	mine := leases(t, x.d, "--duid", duid)
	if len(mine) != 2 {
		t.Fatalf("leases of DUID %s: %+v, want an address and a prefix", duid, mine)
	}
	for _, l := range mine {
		want := map[string]string{"na": hostPrefix(addr).String(), "pd": p.String()}[l.Kind]
		if l.Prefix.String() != want || l.State != "leased" {
			t.Errorf("lease %v kind %q state %q, want %s leased", l.Prefix, l.Kind, l.State, want)
		}
	}

	if err := dc.Process().Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pfx := range []string{hostPrefix(addr).String(), p.String()} {
		waitLease(t, ctx, x.d, mustPrefix(t, pfx), func(l lab.Lease, found bool) bool { return !found || l.State == "released" })
	}
}
