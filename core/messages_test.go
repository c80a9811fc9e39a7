package core

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hook6/hook6/core/lease"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

var (
	rangeNA = netip.MustParsePrefix("2001:db8:1::/65")
	poolPD  = netip.MustParsePrefix("2001:db8:8000::/40")
)

func TestSolicitAdvertisesAddressAndPrefix(t *testing.T) {
	ts := newTestServer(t, testConfig)
	adv := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeSolicit, 1, iaNA(1), iaPD(2))))
	if adv.MessageType != dhcpv6.MessageTypeAdvertise {
		t.Fatalf("got %v", adv.MessageType)
	}
	if adv.TransactionID != (dhcpv6.TransactionID{1, 2, 1}) {
		t.Errorf("transaction id not echoed")
	}
	if got := rawOption(adv.Options.Options, dhcpv6.OptionServerID); string(got) != string(testDUID) {
		t.Errorf("server id %x", got)
	}
	if got := rawOption(adv.Options.Options, dhcpv6.OptionClientID); string(got) != string(clientDUID(1).ToBytes()) {
		t.Errorf("client id not echoed exactly: %x", got)
	}
	if adv.Options.Preference() != 255 {
		t.Errorf("preference %d", adv.Options.Preference())
	}
	if dns := adv.Options.DNS(); len(dns) != 1 || !dns[0].Equal(net.ParseIP("2001:db8::53")) {
		t.Errorf("dns %v", dns)
	}
	as, st := addrs(adv)
	if st != nil || len(as) != 1 || !rangeNA.Contains(mustAddr(t, as[0].IPv6Addr)) {
		t.Fatalf("IA_NA: %v %v", as, st)
	}
	if as[0].PreferredLifetime != time.Hour || as[0].ValidLifetime != 2*time.Hour {
		t.Errorf("lifetimes %v/%v", as[0].PreferredLifetime, as[0].ValidLifetime)
	}
	ps, st := prefixes(adv)
	if st != nil || len(ps) != 1 {
		t.Fatalf("IA_PD: %v %v", ps, st)
	}
	if ones, _ := ps[0].Prefix.Mask.Size(); ones != 56 || !poolPD.Contains(mustAddr(t, ps[0].Prefix.IP)) {
		t.Errorf("delegated %v", ps[0].Prefix)
	}
	na, pd := adv.Options.OneIANA(), adv.Options.OneIAPD()
	if na.T1 != pd.T1 || na.T2 != pd.T2 || na.T1 > na.T2 || na.T1 != 30*time.Minute || na.T2 != 48*time.Minute {
		t.Errorf("T1/T2 NA %v/%v PD %v/%v", na.T1, na.T2, pd.T1, pd.T2)
	}
	if ts.store.Len() != 0 {
		t.Errorf("an Advertise must not commit; store holds %d", ts.store.Len())
	}
}

func TestRequestCommitsTheAdvertisedLease(t *testing.T) {
	ts := newTestServer(t, testConfig)
	adv := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeSolicit, 1, iaNA(1), iaPD(2))))
	offeredA, _ := addrs(adv)
	offeredP, _ := prefixes(adv)
	// A Request without hints still gets what was offered.
	rep := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeRequest, 1, serverID(), iaNA(1), iaPD(2))))
	if rep.MessageType != dhcpv6.MessageTypeReply {
		t.Fatalf("got %v", rep.MessageType)
	}
	as, _ := addrs(rep)
	ps, _ := prefixes(rep)
	if len(as) != 1 || !as[0].IPv6Addr.Equal(offeredA[0].IPv6Addr) {
		t.Fatalf("request got %v, offered %v", as, offeredA)
	}
	if len(ps) != 1 || ps[0].Prefix.String() != offeredP[0].Prefix.String() {
		t.Fatalf("request got %v, offered %v", ps, offeredP)
	}
	l, ok := ts.store.Get(netip.PrefixFrom(mustAddr(t, as[0].IPv6Addr), 128))
	if !ok || l.State != lease.Leased || l.IAID != 1 || string(l.DUID) != string(clientDUID(1).ToBytes()) {
		t.Fatalf("stored lease %+v %v", l, ok)
	}
	if !l.Expires.Equal(ts.now.Add(2 * time.Hour)) {
		t.Errorf("expires %v", l.Expires)
	}
	// The same Request again regenerates the same binding.
	again := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeRequest, 1, serverID(), iaNA(1))))
	if as2, _ := addrs(again); len(as2) != 1 || !as2[0].IPv6Addr.Equal(as[0].IPv6Addr) {
		t.Errorf("repeated request got %v", as2)
	}
	if ts.store.Len() != 2 {
		t.Errorf("store holds %d leases, want 2", ts.store.Len())
	}
}

func TestRapidCommit(t *testing.T) {
	ts := newTestServer(t, testConfig)
	rep := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeSolicit, 1, iaNA(1), rapidCommit())))
	if rep.MessageType != dhcpv6.MessageTypeReply || rep.GetOneOption(dhcpv6.OptionRapidCommit) == nil {
		t.Fatalf("want Reply with Rapid Commit, got %v", rep.Summary())
	}
	as, _ := addrs(rep)
	if _, ok := ts.store.Get(netip.PrefixFrom(mustAddr(t, as[0].IPv6Addr), 128)); !ok {
		t.Error("rapid commit lease not stored before the reply")
	}

	off := newTestServer(t, `
server: {interfaces: [eth1], state-dir: /tmp/unused}
policies: {default: {preferred-lifetime: 1h, valid-lifetime: 2h, allow-rapid-commit: false}}
links: [{name: lan, interface: eth1}]
prefixes: [{name: a, link: lan, address: 2001:db8:1::/64, dhcp-type: dhcp}]
`)
	adv := message(t, off.exchange(t, newMsg(dhcpv6.MessageTypeSolicit, 1, iaNA(1), rapidCommit())))
	if adv.MessageType != dhcpv6.MessageTypeAdvertise || adv.GetOneOption(dhcpv6.OptionRapidCommit) != nil {
		t.Errorf("rapid commit not allowed: want a plain Advertise, got %v", adv.Summary())
	}
}

func TestRenewExtendsAndRebind(t *testing.T) {
	ts := newTestServer(t, testConfig)
	a := ts.bindAddr(t, 1)
	ts.now = ts.now.Add(40 * time.Minute)
	rep := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeRenew, 1, serverID(), iaNA(1, a.String()))))
	as, st := addrs(rep)
	if st != nil || len(as) != 1 || mustAddr(t, as[0].IPv6Addr) != a || as[0].ValidLifetime != 2*time.Hour {
		t.Fatalf("renew: %v", rep.Summary())
	}
	l, _ := ts.store.Get(netip.PrefixFrom(a, 128))
	if !l.Expires.Equal(ts.now.Add(2 * time.Hour)) {
		t.Errorf("renew did not extend the stored lease: %v", l.Expires)
	}
	// Rebind of a known binding extends it too.
	rb := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeRebind, 1, iaNA(1, a.String()))))
	if as, _ := addrs(rb); len(as) != 1 || mustAddr(t, as[0].IPv6Addr) != a {
		t.Fatalf("rebind: %v", rb.Summary())
	}
	// An address that is not on the link comes back with lifetimes 0.
	rb = message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeRebind, 1, iaNA(1, a.String(), "2001:db8:99::1"))))
	as, _ = addrs(rb)
	var zero bool
	for _, x := range as {
		if x.IPv6Addr.Equal(net.ParseIP("2001:db8:99::1")) {
			zero = x.ValidLifetime == 0 && x.PreferredLifetime == 0
		}
	}
	if !zero {
		t.Errorf("off-link address not returned with lifetime 0: %v", rb.Summary())
	}
}

func TestRenewUnknownBindingCreatesOne(t *testing.T) {
	ts := newTestServer(t, testConfig)
	rep := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeRenew, 7, serverID(), iaNA(3))))
	as, st := addrs(rep)
	if st != nil || len(as) != 1 {
		t.Fatalf("renew of unknown IA: %v", rep.Summary())
	}
}

func TestReleaseFreesAndNoBinding(t *testing.T) {
	ts := newTestServer(t, testConfig)
	a := ts.bindAddr(t, 1)
	rep := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeRelease, 1, serverID(), iaNA(1, a.String()), iaNA(9, "2001:db8:1::77"))))
	if st := rep.Options.Status(); st == nil || st.StatusCode != iana.StatusSuccess {
		t.Fatalf("release status %v", st)
	}
	var noBinding bool
	for _, ia := range rep.Options.IANA() {
		if iaidOf(ia.IaId) == 9 {
			noBinding = ia.Options.Status() != nil && ia.Options.Status().StatusCode == iana.StatusNoBinding
		}
		if iaidOf(ia.IaId) == 1 {
			t.Errorf("released IA must not be listed")
		}
	}
	if !noBinding {
		t.Errorf("unknown IA not answered with NoBinding: %v", rep.Summary())
	}
	l, _ := ts.store.Get(netip.PrefixFrom(a, 128))
	if l.State != lease.Released || l.Active(ts.now) {
		t.Errorf("lease after release: %+v", l)
	}
}

func TestDeclineQuarantines(t *testing.T) {
	ts := newTestServer(t, `
server: {interfaces: [eth1], state-dir: /tmp/unused}
policies: {default: {preferred-lifetime: 1h, valid-lifetime: 2h}}
links: [{name: lan, interface: eth1}]
prefixes: [{name: a, link: lan, address: 2001:db8:1::/64, range: 2001:db8:1::/126, dhcp-type: dhcp, allocation-algorithms: [random]}]
`)
	// /126 holds ::0 (reserved IID) and ::1..::3.
	got := map[netip.Addr]bool{}
	for n := byte(1); n <= 3; n++ {
		got[ts.bindAddr(t, n)] = true
	}
	if len(got) != 3 {
		t.Fatalf("three clients got %v", got)
	}
	holder := ts.store.ByBinding(lease.Binding{DUID: string(clientDUID(1).ToBytes()), IAID: 1, Kind: lease.NA})[0]
	declined := holder.Prefix.Addr()
	rep := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeDecline, 1, serverID(), iaNA(1, declined.String()))))
	if st := rep.Options.Status(); st == nil || st.StatusCode != iana.StatusSuccess {
		t.Fatalf("decline: %v", rep.Summary())
	}
	l, _ := ts.store.Get(netip.PrefixFrom(declined, 128))
	if l.State != lease.Declined || !l.Active(ts.now) {
		t.Fatalf("declined lease %+v", l)
	}
	// The pool is now exhausted for a new client: the declined address is quarantined.
	adv := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeSolicit, 4, iaNA(1))))
	if as, st := addrs(adv); len(as) != 0 || st == nil || st.StatusCode != iana.StatusNoAddrsAvail {
		t.Fatalf("declined address handed out again: %v", adv.Summary())
	}
	// Once its valid lifetime has passed, it is reclaimed and free again.
	ts.now = ts.now.Add(2*time.Hour + time.Second)
	ts.reclaimOnce(context.Background())
	adv = message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeSolicit, 4, iaNA(1))))
	if as, _ := addrs(adv); len(as) != 1 {
		t.Fatalf("after quarantine: %v", adv.Summary())
	}
}

func TestNoAddrsAndNoPrefixAvail(t *testing.T) {
	ts := newTestServer(t, `
server: {interfaces: [eth1], state-dir: /tmp/unused}
policies: {default: {preferred-lifetime: 1h, valid-lifetime: 2h}}
links: [{name: lan, interface: eth1}]
prefixes:
  - {name: a, link: lan, address: 2001:db8:1::/64, range: 2001:db8:1::/127, dhcp-type: dhcp}
  - {name: p, link: lan, address: 2001:db8:8000::/55, dhcp-type: prefix-delegation, prefix-length: 56}
`)
	ts.bindAddr(t, 1) // takes ::1, the only non-reserved address
	for n := byte(2); n <= 3; n++ {
		rep := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeSolicit, n, iaPD(1), rapidCommit())))
		_ = rep
		ts.exchange(t, newMsg(dhcpv6.MessageTypeRequest, n, serverID(), iaPD(1)))
	}
	rep := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeRequest, 9, serverID(), iaNA(1), iaPD(2))))
	if _, st := addrs(rep); st == nil || st.StatusCode != iana.StatusNoAddrsAvail {
		t.Errorf("IA_NA status %v", st)
	}
	if _, st := prefixes(rep); st == nil || st.StatusCode != iana.StatusNoPrefixAvail {
		t.Errorf("IA_PD status %v", st)
	}
	if na, pd := rep.Options.OneIANA(), rep.Options.OneIAPD(); na.T1 != pd.T1 || na.T2 != pd.T2 {
		t.Errorf("T1/T2 differ across IAs")
	}
}

func TestRequestOffLinkHintIsNotOnLink(t *testing.T) {
	ts := newTestServer(t, testConfig)
	rep := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeRequest, 1, serverID(), iaNA(1, "2001:db8:77::5"))))
	if _, st := addrs(rep); st == nil || st.StatusCode != iana.StatusNotOnLink {
		t.Fatalf("want NotOnLink, got %v", rep.Summary())
	}
}

func TestConfirm(t *testing.T) {
	ts := newTestServer(t, testConfig)
	rep := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeConfirm, 1, iaNA(1, "2001:db8:1::1234"))))
	if st := rep.Options.Status(); st == nil || st.StatusCode != iana.StatusSuccess {
		t.Errorf("on-link confirm: %v", rep.Summary())
	}
	rep = message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeConfirm, 1, iaNA(1, "2001:db8:1::1234", "2001:db8:5::1"))))
	if st := rep.Options.Status(); st == nil || st.StatusCode != iana.StatusNotOnLink {
		t.Errorf("off-link confirm: %v", rep.Summary())
	}
	if d := ts.exchange(t, newMsg(dhcpv6.MessageTypeConfirm, 1, iaNA(1))); d != nil {
		t.Errorf("confirm without addresses must get no reply, got %v", d.Summary())
	}
	out := ts.Handle(context.Background(), &Packet{Data: newMsg(dhcpv6.MessageTypeConfirm, 1, iaNA(1, "2001:db8:1::1")).ToBytes(), Source: clientLL, Interface: "eth9"})
	if out != nil {
		t.Error("confirm from an unknown link must get no reply")
	}
}

func TestInformationRequest(t *testing.T) {
	ts := newTestServer(t, testConfig)
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeInformationRequest, TransactionID: dhcpv6.TransactionID{9, 9, 9}}
	rep := message(t, ts.exchange(t, m))
	if rep.MessageType != dhcpv6.MessageTypeReply || rep.Options.ClientID() != nil || len(rep.Options.DNS()) != 1 {
		t.Fatalf("info-request reply: %v", rep.Summary())
	}
	if d := ts.exchange(t, newMsg(dhcpv6.MessageTypeInformationRequest, 1, iaNA(1))); d != nil {
		t.Error("information-request with an IA must be discarded")
	}
}

func TestDiscardRules(t *testing.T) {
	ts := newTestServer(t, testConfig)
	other := &dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionServerID, OptionData: []byte{0, 3, 0, 1, 1, 2, 3, 4, 5, 6}}
	noClient := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeSolicit, Options: dhcpv6.MessageOptions{}}
	cases := []struct {
		name   string
		m      dhcpv6.DHCPv6
		reason string
	}{
		{"solicit without client id", noClient, DropInvalid},
		{"solicit with server id", newMsg(dhcpv6.MessageTypeSolicit, 1, serverID(), iaNA(1)), DropInvalid},
		{"request without server id", newMsg(dhcpv6.MessageTypeRequest, 1, iaNA(1)), DropInvalid},
		{"request for another server", newMsg(dhcpv6.MessageTypeRequest, 1, other, iaNA(1)), DropNotOurs},
		{"renew for another server", newMsg(dhcpv6.MessageTypeRenew, 1, other, iaNA(1)), DropNotOurs},
		{"release without server id", newMsg(dhcpv6.MessageTypeRelease, 1, iaNA(1)), DropInvalid},
		{"decline for another server", newMsg(dhcpv6.MessageTypeDecline, 1, other, iaNA(1)), DropNotOurs},
		{"confirm with server id", newMsg(dhcpv6.MessageTypeConfirm, 1, serverID(), iaNA(1, "2001:db8:1::1")), DropInvalid},
		{"rebind with server id", newMsg(dhcpv6.MessageTypeRebind, 1, serverID(), iaNA(1)), DropInvalid},
		{"advertise", newMsg(dhcpv6.MessageTypeAdvertise, 1, serverID()), DropNotForServer},
		{"reply", newMsg(dhcpv6.MessageTypeReply, 1, serverID()), DropNotForServer},
		{"reconfigure", newMsg(dhcpv6.MessageTypeReconfigure, 1, serverID()), DropNotForServer},
		{"unknown type", newMsg(dhcpv6.MessageType(200), 1), DropUnknownType},
		{"relay-repl", &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayReply, LinkAddr: net.IPv6zero, PeerAddr: net.IPv6zero}, DropNotForServer},
	}
	for _, c := range cases {
		before := ts.stats.Dropped(c.reason)
		if d := ts.exchange(t, c.m); d != nil {
			t.Errorf("%s: answered %v", c.name, d.Summary())
		}
		if ts.stats.Dropped(c.reason) != before+1 {
			t.Errorf("%s: not counted as %s", c.name, c.reason)
		}
	}
	// Solicit, Confirm, Rebind and Information-request sent by unicast are discarded.
	out := ts.Handle(context.Background(), &Packet{Data: newMsg(dhcpv6.MessageTypeSolicit, 1, iaNA(1)).ToBytes(), Source: clientLL, Interface: "eth1", Unicast: true})
	if out != nil || ts.stats.Dropped(DropUnicast) != 1 {
		t.Error("unicast solicit not discarded")
	}
	// Garbage and truncated packets are counted and dropped.
	for _, b := range [][]byte{{}, {1}, {1, 2, 3, 4, 0, 1, 0, 50, 1}, {12, 0}} {
		if ts.Handle(context.Background(), &Packet{Data: b, Source: clientLL, Interface: "eth1"}) != nil {
			t.Errorf("garbage %x answered", b)
		}
	}
	if ts.stats.Dropped(DropMalformed) != 4 {
		t.Errorf("malformed drops %d", ts.stats.Dropped(DropMalformed))
	}
	// Unknown options are ignored, not fatal.
	m := newMsg(dhcpv6.MessageTypeSolicit, 1, iaNA(1), &dhcpv6.OptionGeneric{OptionCode: 65000, OptionData: []byte{1, 2, 3}})
	if d := ts.exchange(t, m); d == nil {
		t.Error("solicit with an unknown option not answered")
	}
}

func TestRelayedNestedAnsweredOnRelayLink(t *testing.T) {
	ts := newTestServer(t, testConfig)
	sol := newMsg(dhcpv6.MessageTypeSolicit, 1, iaNA(1))
	inner := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayForward, HopCount: 0,
		LinkAddr: net.ParseIP("2001:db8:2::1"), PeerAddr: net.ParseIP("fe80::211:22ff:fe33:4401")}
	inner.Options.Add(dhcpv6.OptInterfaceID([]byte("port-7")))
	inner.Options.Add(dhcpv6.OptRelayMessage(sol))
	outer := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayForward, HopCount: 1,
		LinkAddr: net.IPv6zero, PeerAddr: net.ParseIP("2001:db8:2::1")}
	outer.Options.Add(dhcpv6.OptInterfaceID([]byte("uplink")))
	outer.Options.Add(dhcpv6.OptRelayMessage(inner))
	out := ts.Handle(context.Background(), &Packet{Data: outer.ToBytes(), Source: netip.MustParseAddrPort("[2001:db8:f::2]:547")})
	d, err := dhcpv6.FromBytes(out)
	if err != nil {
		t.Fatal(err)
	}
	r1, ok := d.(*dhcpv6.RelayMessage)
	if !ok || r1.MessageType != dhcpv6.MessageTypeRelayReply || r1.HopCount != 1 || string(r1.Options.InterfaceID()) != "uplink" {
		t.Fatalf("outer layer %v", d.Summary())
	}
	r2, ok := r1.Options.RelayMessage().(*dhcpv6.RelayMessage)
	if !ok || !r2.LinkAddr.Equal(net.ParseIP("2001:db8:2::1")) || string(r2.Options.InterfaceID()) != "port-7" {
		t.Fatalf("inner layer %v", r1.Options.RelayMessage())
	}
	adv, ok := r2.Options.RelayMessage().(*dhcpv6.Message)
	if !ok || adv.MessageType != dhcpv6.MessageTypeAdvertise {
		t.Fatalf("message %v", r2.Options.RelayMessage())
	}
	as, _ := addrs(adv)
	if len(as) != 1 || !netip.MustParsePrefix("2001:db8:2::/64").Contains(mustAddr(t, as[0].IPv6Addr)) {
		t.Fatalf("relayed client got %v, want an address of the relay's link", as)
	}
	// A relay with no link-address is matched by its interface-id.
	byID := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayForward, LinkAddr: net.IPv6zero,
		PeerAddr: net.ParseIP("fe80::1")}
	byID.Options.Add(dhcpv6.OptInterfaceID([]byte("far-port")))
	byID.Options.Add(dhcpv6.OptRelayMessage(newMsg(dhcpv6.MessageTypeSolicit, 2, iaNA(1))))
	out = ts.Handle(context.Background(), &Packet{Data: byID.ToBytes(), Source: netip.MustParseAddrPort("[2001:db8:f::2]:547")})
	if out == nil {
		t.Fatal("relay matched by interface-id not answered")
	}
	// Too many relay layers are dropped.
	var m dhcpv6.DHCPv6 = sol
	for i := 0; i < 12; i++ {
		r := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayForward, HopCount: uint8(i), LinkAddr: net.ParseIP("2001:db8:2::1"), PeerAddr: net.IPv6zero}
		r.Options.Add(dhcpv6.OptRelayMessage(m))
		m = r
	}
	if ts.Handle(context.Background(), &Packet{Data: m.ToBytes(), Source: netip.MustParseAddrPort("[2001:db8:f::2]:547")}) != nil {
		t.Error("12 relay layers answered")
	}
}
