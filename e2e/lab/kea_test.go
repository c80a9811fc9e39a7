package lab

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// The Kea helper (the reference server of the benchmarks) starts a working
// kea-dhcp6: a Solicit on its link is answered with an address of its pool.
func TestKea6Serves(t *testing.T) {
	l := New(t)
	srv, cli := l.Namespace("kea"), l.Namespace("cli")
	l.Link(srv, "srv0", cli, "cli0")
	srv.AddAddr("srv0", netip.MustParsePrefix("2001:db8:1::1/64"))
	srv.MustLinkLocal("srv0")
	cli.MustLinkLocal("cli0")
	l.StartKea6(srv, Kea6Config{
		Interfaces: []string{"srv0"},
		Threads:    2,
		Subnets: []Kea6Subnet{{ID: 1, Subnet: "2001:db8:1::/64", Interface: "srv0", Pools: []string{"2001:db8:1::100-2001:db8:1::1ff"},
			PDPools: []Kea6PDPool{{Prefix: "2001:db8:8000::", PrefixLen: 40, DelegatedLen: 56}}}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	adv, err := cli.Client6("cli0").Solicit(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	ia := adv.Options.OneIANA()
	if ia == nil || ia.Options.OneAddress() == nil {
		t.Fatalf("Kea's Advertise has no address: %s", adv.Summary())
	}
	a, _ := netip.AddrFromSlice(ia.Options.OneAddress().IPv6Addr)
	if a.Compare(netip.MustParseAddr("2001:db8:1::100")) < 0 || a.Compare(netip.MustParseAddr("2001:db8:1::1ff")) > 0 {
		t.Errorf("Kea offered %v, outside its pool", a)
	}
	if pd := adv.Options.OneIAPD(); pd == nil || len(pd.Options.Prefixes()) != 1 {
		t.Errorf("Kea's Advertise has no delegated prefix: %s", adv.Summary())
	}
}
