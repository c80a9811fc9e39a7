package e2e

import (
	"net/netip"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// dhclient -6 -N binds an address of the range, renews the same address at
// T1, and releases it; the server's lease list follows every step.
func TestDhclientAddressBindRenewRelease(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 60*time.Second)
	dh := x.lab.Dhclient(x.cli, cliIf)
	mode := lab.DhclientMode{NA: true}
	dh.Start(mode)

	addr, bound, err := dh.WaitAddress(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	if !lanRange.Contains(addr) {
		t.Fatalf("bound %v, outside the range %v", addr, lanRange)
	}
	ev := dh.Events()[bound]
	if got := ev.Vars["new_renew"]; got != "4" {
		t.Errorf("T1 = %q, want the policy's 4", got)
	}
	if got := ev.Vars["new_preferred_life"]; got != "20" {
		t.Errorf("preferred lifetime = %q, want 20", got)
	}
	l := leaseOf(t, x.d, hostPrefix(addr))
	if l.Kind != "na" || l.State != "leased" {
		t.Errorf("lease of %v: kind %q state %q, want na leased", addr, l.Kind, l.State)
	}
	if got, want := normDUID(l.DUID), normDUID(ev.Vars["new_dhcp6_client_id"]); got != want {
		t.Errorf("lease DUID %s, want the client's %s", got, want)
	}
	start := l.Raw["start"]

	renewed, _, err := dh.WaitAddress(ctx, bound+1, "RENEW6")
	if err != nil {
		t.Fatal(err)
	}
	if renewed != addr {
		t.Fatalf("renewed %v, want the bound %v", renewed, addr)
	}
	waitLease(t, ctx, x.d, hostPrefix(addr), func(l lab.Lease, found bool) bool {
		return found && l.State == "leased" && l.Raw["start"] != start
	})

	if _, err := dh.Release(ctx, mode); err != nil {
		t.Fatal(err)
	}
	if _, _, err := dh.WaitEvent(ctx, 0, "RELEASE6", nil); err != nil {
		t.Fatal(err)
	}
	waitLease(t, ctx, x.d, hostPrefix(addr), func(l lab.Lease, found bool) bool {
		return !found || l.State == "released"
	})
}

// dhclient -6 -P gets a /56 inside the delegation prefix, renews and
// releases it.
func TestDhclientPrefixDelegation(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 60*time.Second)
	dh := x.lab.Dhclient(x.cli, cliIf)
	mode := lab.DhclientMode{PD: true}
	dh.Start(mode)

	p, bound, err := dh.WaitPrefix(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	if p.Bits() != 56 || !lanPD.Contains(p.Addr()) {
		t.Fatalf("delegated %v, want a /56 inside %v", p, lanPD)
	}
	l := leaseOf(t, x.d, p)
	if l.Kind != "pd" || l.State != "leased" {
		t.Errorf("lease of %v: kind %q state %q, want pd leased", p, l.Kind, l.State)
	}
	renewed, _, err := dh.WaitPrefix(ctx, bound+1, "RENEW6")
	if err != nil {
		t.Fatal(err)
	}
	if renewed != p {
		t.Fatalf("renewed %v, want the delegated %v", renewed, p)
	}
	if _, err := dh.Release(ctx, mode); err != nil {
		t.Fatal(err)
	}
	waitLease(t, ctx, x.d, p, func(l lab.Lease, found bool) bool { return !found || l.State == "released" })
	if n := len(leases(t, x.d, "--prefix", netip.MustParsePrefix("2001:db8:1::/64").String())); n != 0 {
		t.Errorf("%d address leases for a client that asked only for a prefix", n)
	}
}
