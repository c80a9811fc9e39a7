package e2e

import (
	"net/netip"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// perfdhcp -6 runs Solicit-Advertise-Request-Reply exchanges for thousands
// of distinct clients: they complete, every lease granted is in the store
// and unique, and the server keeps serving afterwards.
func TestPerfdhcpExchanges(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 60*time.Second)
	res, err := x.cli.Perfdhcp(ctx, lab.PerfOptions{Iface: cliIf, Rate: 500, Clients: 1000000, Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("perfdhcp: %.0f exchanges/s; %+v", res.Rate, res.Exchanges)
	sa, rr := res.Exchanges["SOLICIT-ADVERTISE"], res.Exchanges["REQUEST-REPLY"]
	if sa.Sent < 1000 || rr.Sent < 1000 {
		t.Fatalf("perfdhcp sent %d Solicits and %d Requests, want at least 1000 of each:\n%s", sa.Sent, rr.Sent, res.Output)
	}
	for name, e := range res.Exchanges {
		if e.DropsRatio > 1 {
			t.Errorf("%s: %d of %d dropped (%.2f%%), want under 1%%", name, e.Drops, e.Sent, e.DropsRatio)
		}
		if e.RejectedLeases != 0 || e.NonUnique != 0 {
			t.Errorf("%s: %d rejected leases, %d non-unique addresses, want none", name, e.RejectedLeases, e.NonUnique)
		}
	}
	if res.Malformed != 0 {
		t.Errorf("perfdhcp saw %d malformed packets", res.Malformed)
	}
	got := 0
	for _, l := range leases(t, x.d, "--prefix", lanAddr.String()) {
		if l.State == "leased" && l.Kind == "na" && lanRange.Contains(l.Prefix.Addr()) {
			got++
		}
	}
	if got < rr.Received {
		t.Errorf("%d leased addresses in the store after %d Replies to distinct clients", got, rr.Received)
	}
	if x.d.Process().Exited() {
		t.Fatalf("hook6d exited under load: %v", x.d.Process().Err())
	}
	c := x.cli.Client6(cliIf)
	if _, err := c.Solicit(ctx, false); err != nil {
		t.Fatalf("no answer after the load: %v", err)
	}
}

// perfdhcp -e address-and-prefix: every client gets an address and a /56,
// no prefix is delegated twice.
func TestPerfdhcpAddressAndPrefix(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 60*time.Second)
	res, err := x.cli.Perfdhcp(ctx, lab.PerfOptions{Iface: cliIf, Rate: 300, Clients: 1000000, Duration: 3 * time.Second,
		Extra: []string{"-e", "address-and-prefix"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("perfdhcp: %.0f exchanges/s; %+v", res.Rate, res.Exchanges)
	rr := res.Exchanges["REQUEST-REPLY"]
	if rr.Received < 500 || rr.DropsRatio > 1 || rr.RejectedLeases != 0 || rr.NonUnique != 0 {
		t.Fatalf("REQUEST-REPLY %+v: want 500+ Replies, under 1%% drops, none rejected or repeated", rr)
	}
	prefixes := map[netip.Prefix]bool{}
	addrs := 0
	for _, l := range leases(t, x.d) {
		switch {
		case l.State != "leased":
		case l.Kind == "pd" && l.Prefix.Bits() == 56 && lanPD.Contains(l.Prefix.Addr()):
			if prefixes[l.Prefix] {
				t.Errorf("prefix %v delegated twice", l.Prefix)
			}
			prefixes[l.Prefix] = true
		case l.Kind == "na" && lanRange.Contains(l.Prefix.Addr()):
			addrs++
		}
	}
	if len(prefixes) < rr.Received || addrs < rr.Received {
		t.Errorf("%d prefixes and %d addresses leased after %d Replies to distinct clients", len(prefixes), addrs, rr.Received)
	}
}
