package e2e

import (
	"net/netip"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// WIDE dhcp6c gets an address and a delegated /56, configures the address
// on its interface and numbers a downstream interface from the prefix; on
// stop it releases both.
func TestWideDhcp6c(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 60*time.Second)
	x.lab.Link(x.cli, "lan0", x.cli, "lan0peer")
	dc := x.lab.Dhcp6c(x.cli, cliIf, lab.Dhcp6cOptions{NA: true, PrefixInterface: "lan0", SLALen: 8})
	dc.Start()

	addr, err := x.cli.WaitGlobalAddr(ctx, cliIf, func(p netip.Prefix) bool { return lanAddr.Contains(p.Addr()) })
	if err != nil {
		t.Fatal(err)
	}
	if !lanRange.Contains(addr.Addr()) {
		t.Errorf("dhcp6c configured %v, outside the range %v", addr, lanRange)
	}
	down, err := x.cli.WaitGlobalAddr(ctx, "lan0", func(p netip.Prefix) bool { return lanPD.Contains(p.Addr()) })
	if err != nil {
		t.Fatal(err)
	}
	na := leaseOf(t, x.d, hostPrefix(addr.Addr()))
	var pd lab.Lease
	for _, l := range leases(t, x.d, "--duid", normDUID(na.DUID)) {
		if l.Kind == "pd" {
			pd = l
		}
	}
	if pd.Prefix.Bits() != 56 || !pd.Prefix.Contains(down.Addr()) || pd.State != "leased" {
		t.Fatalf("delegated lease %+v, want a leased /56 holding lan0's %v", pd, down)
	}

	if err := dc.Process().Stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{na.Prefix, pd.Prefix} {
		waitLease(t, ctx, x.d, p, func(l lab.Lease, found bool) bool { return !found || l.State == "released" })
	}
}
