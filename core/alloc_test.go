package core

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hook6/hook6/core/lease"
	"github.com/hook6/hook6/hooks"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

func algConfig(algs, extra string) string { return algConfig2(algs, algs, extra) }

func algConfig2(na, pd, extra string) string {
	return fmt.Sprintf(`
server: {interfaces: [eth1], state-dir: /tmp/unused}
policies: {default: {preferred-lifetime: 1h, valid-lifetime: 2h, allow-rapid-commit: true}}
links: [{name: lan, interface: eth1}]
prefixes:
  - {name: a, link: lan, address: 2001:db8:1::/64, range: 2001:db8:1::/65, dhcp-type: dhcp, allocation-algorithms: %s}
  - {name: p, link: lan, address: 2001:db8:8000::/40, dhcp-type: prefix-delegation, prefix-length: 56, allocation-algorithms: %s}
%s`, na, pd, extra)
}

// rapid binds with one Rapid Commit Solicit and returns the reply.
func (ts *testServer) rapid(t *testing.T, n byte, src netip.AddrPort, opts ...dhcpv6.Option) *dhcpv6.Message {
	t.Helper()
	m := newMsg(dhcpv6.MessageTypeSolicit, n, append(opts, rapidCommit())...)
	out := ts.Handle(context.Background(), &Packet{Data: m.ToBytes(), Source: src, Interface: "eth1"})
	d, err := dhcpv6.FromBytes(out)
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	return message(t, d)
}

func TestAlgorithmReservation(t *testing.T) {
	duid := fmt.Sprintf("%x", clientDUID(5).ToBytes())
	ts := newTestServer(t, algConfig("[reservation]", fmt.Sprintf(`reservations:
  - {duid: "%s", address: 2001:db8:1::55}
  - {duid: "%s", prefix: "2001:db8:8042::/56"}
`, duid, duid)))
	rep := ts.rapid(t, 5, clientLL, iaNA(1), iaPD(2))
	as, _ := addrs(rep)
	ps, _ := prefixes(rep)
	if len(as) != 1 || !as[0].IPv6Addr.Equal(net.ParseIP("2001:db8:1::55")) {
		t.Errorf("reserved address not given: %v", rep.Summary())
	}
	if len(ps) != 1 || ps[0].Prefix.String() != "2001:db8:8042::/56" {
		t.Errorf("reserved prefix not given: %v", rep.Summary())
	}
	// Another client with only the reservation algorithm gets nothing, and
	// never the reserved lease.
	rep = ts.rapid(t, 6, clientLL, iaNA(1))
	if as, st := addrs(rep); len(as) != 0 || st.StatusCode != iana.StatusNoAddrsAvail {
		t.Errorf("unreserved client: %v", rep.Summary())
	}
}

func TestAlgorithmClientRequest(t *testing.T) {
	ts := newTestServer(t, algConfig("[client-request, random]", ""))
	rep := ts.rapid(t, 1, clientLL, iaNA(1, "2001:db8:1::abcd"), iaPD(2, "2001:db8:8042::/56"))
	if as, _ := addrs(rep); len(as) != 1 || !as[0].IPv6Addr.Equal(net.ParseIP("2001:db8:1::abcd")) {
		t.Errorf("hint in range not honoured: %v", rep.Summary())
	}
	if ps, _ := prefixes(rep); len(ps) != 1 || ps[0].Prefix.String() != "2001:db8:8042::/56" {
		t.Errorf("prefix hint not honoured: %v", rep.Summary())
	}
	// The same hint from another client is taken: it falls through to random.
	rep = ts.rapid(t, 2, clientLL, iaNA(1, "2001:db8:1::abcd"))
	as, _ := addrs(rep)
	if len(as) != 1 || as[0].IPv6Addr.Equal(net.ParseIP("2001:db8:1::abcd")) || !rangeNA.Contains(mustAddr(t, as[0].IPv6Addr)) {
		t.Errorf("taken hint: %v", rep.Summary())
	}
	// A hint outside the range (upper half of the /64) is not honoured.
	rep = ts.rapid(t, 3, clientLL, iaNA(1, "2001:db8:1:0:8000::1"))
	if as, _ := addrs(rep); len(as) != 1 || !rangeNA.Contains(mustAddr(t, as[0].IPv6Addr)) {
		t.Errorf("hint outside range: %v", rep.Summary())
	}
}

func TestAlgorithmInterfaceIdentifier(t *testing.T) {
	cfg := `
server: {interfaces: [eth1], state-dir: /tmp/unused}
policies: {default: {preferred-lifetime: 1h, valid-lifetime: 2h, allow-rapid-commit: true}}
links: [{name: lan, interface: eth1}]
prefixes:
  - {name: a, link: lan, address: 2001:db8:1::/64, dhcp-type: dhcp, allocation-algorithms: [interface-identifier]}
`
	ts := newTestServer(t, cfg)
	// Direct client: the IID of its link-local source address.
	rep := ts.rapid(t, 1, clientLL, iaNA(1))
	if as, _ := addrs(rep); len(as) != 1 || !as[0].IPv6Addr.Equal(net.ParseIP("2001:db8:1::211:22ff:fe33:4455")) {
		t.Fatalf("from link-local: %v", rep.Summary())
	}
	// A second server computes the same address for the same client.
	ts2 := newTestServer(t, cfg)
	rep = ts2.rapid(t, 1, clientLL, iaNA(1))
	if as, _ := addrs(rep); len(as) != 1 || !as[0].IPv6Addr.Equal(net.ParseIP("2001:db8:1::211:22ff:fe33:4455")) {
		t.Fatalf("second server: %v", rep.Summary())
	}
	// Relayed: option 79 (client link-layer address) wins over peer-address.
	relay := func(n byte, mac net.HardwareAddr) []byte {
		r := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayForward, LinkAddr: net.ParseIP("2001:db8:1::1"),
			PeerAddr: net.ParseIP("fe80::aa:bbff:fecc:dd01")}
		if mac != nil {
			r.Options.Add(dhcpv6.OptClientLinkLayerAddress(iana.HWTypeEthernet, mac))
		}
		r.Options.Add(dhcpv6.OptRelayMessage(newMsg(dhcpv6.MessageTypeSolicit, n, iaNA(1), rapidCommit())))
		return r.ToBytes()
	}
	for _, c := range []struct {
		n    byte
		mac  net.HardwareAddr
		want string
	}{
		{2, net.HardwareAddr{0x00, 0x50, 0x56, 0x01, 0x02, 0x03}, "2001:db8:1::250:56ff:fe01:203"},
		{3, nil, "2001:db8:1::aa:bbff:fecc:dd01"},
	} {
		out := ts.Handle(context.Background(), &Packet{Data: relay(c.n, c.mac), Source: netip.MustParseAddrPort("[2001:db8:1::1]:547")})
		d, err := dhcpv6.FromBytes(out)
		if err != nil {
			t.Fatal(err)
		}
		m := d.(*dhcpv6.RelayMessage).Options.RelayMessage().(*dhcpv6.Message)
		if as, _ := addrs(m); len(as) != 1 || !as[0].IPv6Addr.Equal(net.ParseIP(c.want)) {
			t.Errorf("relayed client %d: want %s, got %v", c.n, c.want, m.Summary())
		}
	}
}

func TestAlgorithmRandomStaysInRangeWithoutCollisions(t *testing.T) {
	ts := newTestServer(t, algConfig("[random]", ""))
	seen := map[netip.Addr]bool{}
	for n := 0; n < 200; n++ {
		rep := ts.rapid(t, byte(n), netip.MustParseAddrPort(fmt.Sprintf("[fe80::%x]:546", n+1)), iaNA(uint32(1000+n)))
		as, _ := addrs(rep)
		if len(as) != 1 {
			t.Fatalf("client %d: %v", n, rep.Summary())
		}
		a := mustAddr(t, as[0].IPv6Addr)
		if !rangeNA.Contains(a) || seen[a] {
			t.Fatalf("client %d got %v (in range %v, seen %v)", n, a, rangeNA.Contains(a), seen[a])
		}
		seen[a] = true
	}
}

func TestAlgorithmBestFitPacksPrefixes(t *testing.T) {
	ts := newTestServer(t, algConfig2("[random]", "[best-fit]", ""))
	for n := byte(0); n < 3; n++ {
		rep := ts.rapid(t, n, clientLL, iaPD(1))
		ps, _ := prefixes(rep)
		want := fmt.Sprintf("2001:db8:8000:%x00::/56", n)
		if n == 0 {
			want = "2001:db8:8000::/56"
		}
		if len(ps) != 1 || ps[0].Prefix.String() != want {
			t.Fatalf("client %d: want %s got %v", n, want, rep.Summary())
		}
	}
	if got := ts.store.Len(); got != 3 {
		t.Errorf("store holds %d", got)
	}
}

// fakeRunner is a unit-test Runner that answers generate-lease from a table
// and can refuse candidates at check-lease-acceptable.
type fakeRunner struct {
	table  map[string]string // DUID hex → lease
	refuse netip.Prefix
}

func (f *fakeRunner) Has(p hooks.Point) bool {
	return p == hooks.GenerateLease || p == hooks.CheckLeaseAcceptable
}

func (f *fakeRunner) Run(c *hooks.Context) error {
	switch c.Point {
	case hooks.GenerateLease:
		v, ok := f.table[c.Env.Value(hooks.KeyClientDUID)]
		if !ok {
			return c.SkipLease()
		}
		if err := c.SetLeaseString(v); err != nil {
			c.Log.Warn("refused", "err", err)
		}
	case hooks.CheckLeaseAcceptable:
		if c.Allocation.Candidate == f.refuse {
			c.Allocation.Acceptable = false
		}
	}
	return nil
}

func TestAlgorithmExtension(t *testing.T) {
	ts := newTestServer(t, algConfig("[extension, random]", `extensions:
  - {name: gen, builtin: env-lease, points: [generate-lease, check-lease-acceptable], init-args: {key: lease}}
`))
	hex := func(n byte) string { return fmt.Sprintf("%x", clientDUID(n).ToBytes()) }
	ts.SetRunner(&fakeRunner{table: map[string]string{
		hex(1): "2001:db8:1::1:1",
		hex(2): "2001:db8:77::1", // outside the prefix: refused, falls through to random
	}, refuse: netip.MustParsePrefix("2001:db8:1::1:1/128")})
	// Client 1's generated address is refused by check-lease-acceptable.
	rep := ts.rapid(t, 1, clientLL, iaNA(1))
	if as, _ := addrs(rep); len(as) != 1 || as[0].IPv6Addr.Equal(net.ParseIP("2001:db8:1::1:1")) {
		t.Errorf("unacceptable lease given: %v", rep.Summary())
	}
	rep = ts.rapid(t, 2, clientLL, iaNA(1))
	if as, _ := addrs(rep); len(as) != 1 || !rangeNA.Contains(mustAddr(t, as[0].IPv6Addr)) {
		t.Errorf("out-of-prefix answer: %v", rep.Summary())
	}
	// No table entry: skip-lease gives no lease at all (no fall-through).
	rep = ts.rapid(t, 3, clientLL, iaNA(1))
	if as, st := addrs(rep); len(as) != 0 || st == nil || st.StatusCode != iana.StatusNoAddrsAvail {
		t.Errorf("skip-lease: %v", rep.Summary())
	}
	ts.SetRunner(&fakeRunner{table: map[string]string{hex(4): "2001:db8:1::4:4"}})
	rep = ts.rapid(t, 4, clientLL, iaNA(1))
	if as, _ := addrs(rep); len(as) != 1 || !as[0].IPv6Addr.Equal(net.ParseIP("2001:db8:1::4:4")) {
		t.Errorf("generated lease not given: %v", rep.Summary())
	}
	if _, ok := ts.store.Get(netip.MustParsePrefix("2001:db8:1::4:4/128")); !ok {
		t.Error("generated lease not stored")
	}
}

func TestMaxLeasesPerBindingTrimsOnRenew(t *testing.T) {
	ts := newTestServer(t, `
server: {interfaces: [eth1], state-dir: /tmp/unused}
policies: {default: {preferred-lifetime: 1h, valid-lifetime: 2h, max-leases-per-binding: 1}}
links: [{name: lan, interface: eth1}]
prefixes: [{name: a, link: lan, address: 2001:db8:1::/64, dhcp-type: dhcp}]
`)
	duid := clientDUID(1).ToBytes()
	// Two leases for one binding, as a merge of two servers' databases leaves.
	for _, a := range []string{"2001:db8:1::10", "2001:db8:1::20"} {
		l := lease.Lease{Prefix: netip.MustParsePrefix(a + "/128"), Kind: lease.NA, DUID: duid, IAID: 1, Link: "lan",
			PrefixName: "a", State: lease.Leased, Valid: 7200e9, Preferred: 3600e9, Start: ts.now, Expires: ts.now.Add(7200e9)}
		if err := ts.store.Put(context.Background(), l); err != nil {
			t.Fatal(err)
		}
	}
	rep := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeRenew, 1, serverID(), iaNA(1, "2001:db8:1::10", "2001:db8:1::20"))))
	as, _ := addrs(rep)
	live, dead := 0, 0
	for _, a := range as {
		if a.ValidLifetime > 0 {
			live++
		} else {
			dead++
		}
	}
	if live != 1 || dead != 1 {
		t.Fatalf("want one lease kept and one sent with lifetime 0: %v", rep.Summary())
	}
	if n := len(activeOf(ts, duid)); n != 1 {
		t.Errorf("binding holds %d active leases after trim", n)
	}
}

func activeOf(ts *testServer, duid []byte) []lease.Lease {
	var out []lease.Lease
	for _, l := range ts.store.ByDUID(duid) {
		if l.State == lease.Leased && l.Active(ts.now) {
			out = append(out, l)
		}
	}
	return out
}

func TestRenewRevokesLeaseNoLongerAcceptable(t *testing.T) {
	ts := newTestServer(t, algConfig("[random]", ""))
	old := ts.bindAddr(t, 1)
	ts.SetRunner(&fakeRunner{refuse: netip.PrefixFrom(old, 128)})
	rep := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeRenew, 1, serverID(), iaNA(1, old.String()))))
	as, _ := addrs(rep)
	var revoked, fresh bool
	for _, a := range as {
		switch {
		case mustAddr(t, a.IPv6Addr) == old:
			revoked = a.ValidLifetime == 0
		case a.ValidLifetime > 0:
			fresh = true
		}
	}
	if !revoked || !fresh {
		t.Fatalf("want the refused lease with lifetime 0 and a new one: %v", rep.Summary())
	}
	if l, _ := ts.store.Get(netip.PrefixFrom(old, 128)); l.State != lease.Released {
		t.Errorf("refused lease state %v", l.State)
	}
}

// A full delegation pool is not scanned for every Solicit; a prefix freed
// meanwhile is found once the full mark has passed.
func TestBestFitFullPoolRecovers(t *testing.T) {
	ts2 := newTestServer(t, `
server: {interfaces: [eth1], state-dir: /tmp/unused}
policies: {default: {preferred-lifetime: 1h, valid-lifetime: 2h, allow-rapid-commit: true}}
links: [{name: lan, interface: eth1}]
prefixes:
  - {name: p, link: lan, address: 2001:db8:8000::/55, dhcp-type: prefix-delegation, prefix-length: 56, allocation-algorithms: [best-fit]}
`)
	var held []string
	for n := byte(1); n <= 2; n++ {
		ps, _ := prefixes(ts2.rapid(t, n, clientLL, iaPD(1)))
		if len(ps) != 1 {
			t.Fatalf("client %d got no prefix", n)
		}
		held = append(held, ps[0].Prefix.String())
	}
	if _, st := prefixes(ts2.rapid(t, 3, clientLL, iaPD(1))); st == nil || st.StatusCode != iana.StatusNoPrefixAvail {
		t.Fatalf("full pool: status %v", st)
	}
	rel := newMsg(dhcpv6.MessageTypeRelease, 1, serverID(), iaPD(1, held[0]))
	if d := ts2.exchange(t, rel); d == nil {
		t.Fatal("release not answered")
	}
	ts2.now = ts2.now.Add(exhaustedFor + time.Second)
	ps, _ := prefixes(ts2.rapid(t, 3, clientLL, iaPD(1)))
	if len(ps) != 1 || ps[0].Prefix.String() != held[0] {
		t.Fatalf("freed prefix %s not found after the full mark: %v", held[0], ps)
	}
}

// BenchmarkSolicitFullPDPool: Solicits for a delegation pool that is full
// cost one scan per exhaustedFor, not one each.
func BenchmarkSolicitFullPDPool(b *testing.B) {
	ts := newTestServer(b, `
server: {interfaces: [eth1], state-dir: /tmp/unused}
policies: {default: {preferred-lifetime: 1h, valid-lifetime: 2h}}
links: [{name: lan, interface: eth1}]
prefixes:
  - {name: p, link: lan, address: 2001:db8:8000::/48, dhcp-type: prefix-delegation, prefix-length: 56, allocation-algorithms: [best-fit]}
`)
	ctx := context.Background()
	var i uint32
	for range 256 {
		i++
		ts.Handle(ctx, &Packet{Data: benchMsg(dhcpv6.MessageTypeSolicit, i, iaPD(1)), Source: clientLL, Interface: "eth1"})
	}
	b.ReportAllocs()
	for b.Loop() {
		i++
		ts.Handle(ctx, &Packet{Data: benchMsg(dhcpv6.MessageTypeSolicit, i, iaPD(1)), Source: clientLL, Interface: "eth1"})
	}
}
