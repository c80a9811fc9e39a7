package core

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/hook6/hook6/core/lease"
	"github.com/hook6/hook6/hooks"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// The encoder must write what Message.ToBytes writes, whatever the answer
// holds: odd lifetimes, missing addresses, options it leaves to ToBytes.
func TestEncodeMatchesLibrary(t *testing.T) {
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply, TransactionID: dhcpv6.TransactionID{1, 2, 3}}
	m.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionServerID, OptionData: testDUID})
	m.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
	m.Options.Add(dhcpv6.OptDNS(net.ParseIP("2001:db8::53"), net.ParseIP("192.0.2.1")))
	m.Options.Add(dhcpv6.OptPreference(7))
	na := &dhcpv6.OptIANA{IaId: [4]byte{1, 2, 3, 4}, T1: 1500 * time.Millisecond, T2: 0xffffffff * time.Second}
	na.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("2001:db8::1"), PreferredLifetime: time.Hour, ValidLifetime: 2*time.Hour + 499*time.Millisecond})
	na.Options.Add(&dhcpv6.OptIAAddress{})                                         // no address: zeros
	na.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.IP{1, 2, 3}})                // not an address: zeros
	na.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("192.0.2.7").To4()}) // 4 bytes: mapped
	na.Options.Add(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "none"})
	m.Options.Add(na)
	pd := &dhcpv6.OptIAPD{IaId: [4]byte{0, 0, 0, 2}, T1: time.Minute}
	pd.Options.Add(&dhcpv6.OptIAPrefix{PreferredLifetime: time.Second, ValidLifetime: 3 * time.Second,
		Prefix: &net.IPNet{IP: net.ParseIP("2001:db8:8000::"), Mask: net.CIDRMask(56, 128)}})
	pd.Options.Add(&dhcpv6.OptIAPrefix{}) // no prefix
	pd.Options.Add(&dhcpv6.OptIAPrefix{Prefix: &net.IPNet{IP: net.ParseIP("2001:db8::")}})
	sub := &dhcpv6.OptIAPrefix{Prefix: &net.IPNet{IP: net.ParseIP("2001:db8:9000::"), Mask: net.CIDRMask(60, 128)}}
	sub.Options.Add(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess})
	pd.Options.Add(sub)
	m.Options.Add(pd)
	m.Options.Add(&dhcpv6.OptIANA{}) // empty IA
	m.Options.Add(dhcpv6.OptInformationRefreshTime(6 * time.Hour))

	for depth := 0; depth <= 3; depth++ {
		pc := &pctx{}
		for i := range depth {
			r := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayForward, HopCount: uint8(i),
				LinkAddr: net.ParseIP("2001:db8:ffff::1"), PeerAddr: net.ParseIP("fe80::1")}
			if i%2 == 0 {
				r.Options.Add(dhcpv6.OptInterfaceID([]byte{'p', byte('0' + i)}))
			}
			if i == 2 {
				r.LinkAddr = nil // zeros
			}
			pc.relays = append(pc.relays, r)
		}
		want := pc.wrap(m).ToBytes()
		for range 2 { // again with the buffer reused
			if got := pc.encode(m); !bytes.Equal(got, want) {
				t.Fatalf("%d relays: encoded\n%x\nwant\n%x", depth, got, want)
			}
		}
	}
}

func TestArenaMaskIsCIDRMask(t *testing.T) {
	for ones := -1; ones <= 129; ones++ {
		var a replyArena
		if got, want := a.mask(ones), net.CIDRMask(ones, 128); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
			t.Errorf("mask(%d) = %v, want %v", ones, got, want)
		}
	}
}

// More leases than the arena holds come from the heap, in order.
func TestArenaOverflow(t *testing.T) {
	pc := &pctx{}
	pc.msg = &dhcpv6.Message{}
	r := iaResp{kind: lease.NA, iaid: 1}
	for i := range 20 {
		r.grants = append(r.grants, grant{prefix: netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 1, 15: byte(i)}), 128), valid: time.Hour})
	}
	pd := iaResp{kind: lease.PD, iaid: 2, hasSt: true, msg: "x"}
	for i := range 20 {
		pd.grants = append(pd.grants, grant{prefix: netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 1, 5: byte(i)}), 48), valid: time.Hour})
	}
	m := pc.arena.message(dhcpv6.MessageTypeReply, dhcpv6.TransactionID{})
	pc.addIAs(m, []iaResp{r, pd, r, pd}, time.Minute, 2*time.Minute)
	d, err := dhcpv6.FromBytes(pc.encode(m))
	if err != nil {
		t.Fatal(err)
	}
	got := d.(*dhcpv6.Message)
	if n := len(got.Options.IANA()); n != 2 {
		t.Fatalf("%d IA_NA", n)
	}
	for _, ia := range got.Options.IANA() {
		as := ia.Options.Addresses()
		if len(as) != 20 || ia.Options.Status() != nil {
			t.Fatalf("IA_NA %v", ia)
		}
		for i, a := range as {
			if !a.IPv6Addr.Equal(net.IP(r.grants[i].prefix.Addr().AsSlice())) {
				t.Fatalf("address %d is %v", i, a.IPv6Addr)
			}
		}
	}
	for _, ia := range got.Options.IAPD() {
		ps := ia.Options.Prefixes()
		if len(ps) != 20 || ia.Options.Status() == nil {
			t.Fatalf("IA_PD %v", ia)
		}
		for i, p := range ps {
			if p.Prefix.String() != pd.grants[i].prefix.String() {
				t.Fatalf("prefix %d is %v", i, p.Prefix)
			}
		}
	}
}

func TestHeldListKeepsOrder(t *testing.T) {
	p := func(i byte) netip.Prefix { return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 1, 15: i}), 128) }
	var h heldList
	list := func() []netip.Prefix {
		var out []netip.Prefix
		for i := range h.n {
			out = append(out, h.at(i))
		}
		return out
	}
	for i := range byte(5) {
		h.add(p(i))
	}
	h.remove(p(2))
	h.remove(p(0))
	h.remove(p(9))
	if want := []netip.Prefix{p(1), p(3), p(4)}; !slices.Equal(list(), want) {
		t.Fatalf("got %v, want %v", list(), want)
	}
	h.remove(p(1))
	h.remove(p(4))
	h.remove(p(3))
	if h.n != 0 || len(list()) != 0 {
		t.Fatalf("left %v", list())
	}
	h.add(p(7))
	if want := []netip.Prefix{p(7)}; !slices.Equal(list(), want) {
		t.Fatalf("got %v", list())
	}
}

// viewRunner appends to the first option's data of the answer, as a
// careless extension might, then records what pre-packet-encode shows.
type viewRunner struct{ seen []hooks.Option }

func (v *viewRunner) Has(p hooks.Point) bool { return p == hooks.PrePacketEncode }

func (v *viewRunner) Run(c *hooks.Context) error {
	c.Response.Options[0].Data = append(c.Response.Options[0].Data, 0xff, 0xff)
	v.seen = v.seen[:0]
	for _, o := range c.Response.Options {
		v.seen = append(v.seen, hooks.Option{Code: o.Code, Data: bytes.Clone(o.Data)})
	}
	return nil
}

// TestPrePacketEncodeSeesTheAnswersOptions: the Response an extension
// gets lists every option of the answer with its data as the answer
// carries it; an append to one option's data reaches neither the next
// option nor the answer.
func TestPrePacketEncodeSeesTheAnswersOptions(t *testing.T) {
	ts := newTestServer(t, testConfig)
	v := &viewRunner{}
	ts.SetRunner(v)
	adv := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeSolicit, 1, iaNA(1), iaPD(2), dhcpv6.OptElapsedTime(0))))
	opts := adv.Options.Options
	if len(v.seen) != len(opts) || len(opts) < 4 {
		t.Fatalf("extension saw %d options, the Advertise has %d", len(v.seen), len(opts))
	}
	for i, o := range opts {
		want := o.ToBytes()
		if i == 0 {
			want = append(want, 0xff, 0xff)
		}
		if v.seen[i].Code != uint16(o.Code()) || !bytes.Equal(v.seen[i].Data, want) {
			t.Errorf("option %d: saw %d %x, want %d %x", i, v.seen[i].Code, v.seen[i].Data, o.Code(), want)
		}
	}
}
