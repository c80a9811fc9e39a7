package e2e

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// Two nested Relay-forw layers sent by unicast from a relay socket: the
// server picks the link by the innermost relay's link-address, answers
// with Relay-repl layers that mirror them, and echoes each layer's
// Interface-ID in that layer.
func TestNestedRelayOnTheWire(t *testing.T) {
	remote := netip.MustParsePrefix("2001:db8:2::/64")
	x := newDirect(t, func(c *lab.Config) {
		c.Links = append(c.Links, lab.Link{Name: "remote"})
		c.Prefixes = append(c.Prefixes, lab.Prefix{Name: "remote-addr", Link: "remote", Address: remote.String(), DHCPType: "dhcp", Policy: "default"})
	})
	ctx := timeout(t, 30*time.Second)
	x.cli.AddAddr(cliIf, netip.MustParsePrefix("2001:db8:1::2/64"))
	relay, err := x.cli.ListenUDP(&net.UDPAddr{IP: net.ParseIP("2001:db8:1::2"), Port: dhcpv6.DefaultServerPort})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	sol, err := dhcpv6.NewSolicit(net.HardwareAddr{2, 0, 0, 0, 0, 7})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := dhcpv6.EncapsulateRelay(sol, dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:2::1"), net.ParseIP("fe80::7"))
	if err != nil {
		t.Fatal(err)
	}
	inner.AddOption(dhcpv6.OptInterfaceID([]byte("port-7")))
	inner.AddOption(&dhcpv6.OptRemoteID{EnterpriseNumber: 4491, RemoteID: []byte("subscriber-1")})
	outer, err := dhcpv6.EncapsulateRelay(inner, dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:1::2"), net.ParseIP("2001:db8:2::1"))
	if err != nil {
		t.Fatal(err)
	}
	outer.AddOption(dhcpv6.OptInterfaceID([]byte("uplink-0")))

	server := &net.UDPAddr{IP: net.ParseIP("2001:db8:1::1"), Port: dhcpv6.DefaultServerPort}
	var answer []byte
	for answer == nil {
		if _, err := relay.WriteToUDP(outer.ToBytes(), server); err != nil {
			t.Fatal(err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 4096)
		n, _, err := relay.ReadFromUDP(buf)
		if err == nil {
			answer = buf[:n]
		} else if ctx.Err() != nil {
			t.Fatalf("no Relay-repl: %v", err)
		}
	}

	d, err := dhcpv6.FromBytes(answer)
	if err != nil {
		t.Fatal(err)
	}
	top, ok := d.(*dhcpv6.RelayMessage)
	if !ok || top.MessageType != dhcpv6.MessageTypeRelayReply || top.HopCount != 1 {
		t.Fatalf("answer %s, want a Relay-repl with hop count 1", d.Summary())
	}
	if !bytes.Equal(top.Options.InterfaceID(), []byte("uplink-0")) || !top.LinkAddr.Equal(outer.LinkAddr) || !top.PeerAddr.Equal(outer.PeerAddr) {
		t.Errorf("outer Relay-repl %s: want interface-id uplink-0 and the Relay-forw's addresses", top.Summary())
	}
	mid, ok := top.Options.RelayMessage().(*dhcpv6.RelayMessage)
	if !ok || mid.MessageType != dhcpv6.MessageTypeRelayReply {
		t.Fatalf("inside: %v, want a Relay-repl", top.Options.RelayMessage())
	}
	if !bytes.Equal(mid.Options.InterfaceID(), []byte("port-7")) || !mid.LinkAddr.Equal(inner.LinkAddr) || !mid.PeerAddr.Equal(inner.PeerAddr) {
		t.Errorf("inner Relay-repl %s: want interface-id port-7 and the Relay-forw's addresses", mid.Summary())
	}
	adv, ok := mid.Options.RelayMessage().(*dhcpv6.Message)
	if !ok || adv.MessageType != dhcpv6.MessageTypeAdvertise || adv.TransactionID != sol.TransactionID {
		t.Fatalf("innermost: %v, want the Advertise of transaction %v", mid.Options.RelayMessage(), sol.TransactionID)
	}
	ia := adv.Options.OneIANA()
	if ia == nil || ia.Options.OneAddress() == nil {
		t.Fatalf("Advertise without an address: %s", adv.Summary())
	}
	if a, _ := netip.AddrFromSlice(ia.Options.OneAddress().IPv6Addr); !remote.Contains(a) {
		t.Errorf("relayed client offered %v, want an address of the innermost relay's link %v", a, remote)
	}
}

// A Solicit with Rapid Commit is answered by a Reply that commits the
// lease at once (the policy allows it).
func TestRapidCommit(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 30*time.Second)
	c := x.cli.Client6(cliIf)
	sol, err := dhcpv6.NewSolicit(c.HardwareAddr(), dhcpv6.WithRapidCommit)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Exchange(ctx, sol)
	if err != nil {
		t.Fatal(err)
	}
	if r.MessageType != dhcpv6.MessageTypeReply || r.GetOneOption(dhcpv6.OptionRapidCommit) == nil {
		t.Fatalf("answer %s, want a Reply with Rapid Commit", r.Summary())
	}
	a := offered(t, r)
	if l := leaseOf(t, x.d, hostPrefix(a)); l.State != "leased" {
		t.Errorf("lease of %v after Rapid Commit: %q", a, l.State)
	}
}

// A declined address is quarantined: its lease says so, and another
// client asking for it by hint gets a different one.
func TestDeclineQuarantines(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 30*time.Second)
	c := x.cli.Client6(cliIf)
	first := net.HardwareAddr{2, 0, 0, 0, 1, 1}
	reply := requestAddress(t, c, first, nil)
	a := offered(t, reply)

	dec, err := dhcpv6.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	dec.MessageType = dhcpv6.MessageTypeDecline
	dec.AddOption(dhcpv6.OptClientID(reply.Options.ClientID()))
	dec.AddOption(dhcpv6.OptServerID(reply.Options.ServerID()))
	dec.AddOption(dhcpv6.OptElapsedTime(0))
	ia := &dhcpv6.OptIANA{IaId: reply.Options.OneIANA().IaId}
	ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: a.AsSlice()})
	dec.AddOption(ia)
	r, err := c.Exchange(ctx, dec)
	if err != nil {
		t.Fatal(err)
	}
	if st := r.Options.Status(); r.MessageType != dhcpv6.MessageTypeReply || (st != nil && st.StatusCode != iana.StatusSuccess) {
		t.Fatalf("answer to Decline: %s", r.Summary())
	}
	if l := leaseOf(t, x.d, hostPrefix(a)); l.State != "declined" {
		t.Errorf("lease of %v after Decline: %q, want declined", a, l.State)
	}

	other := requestAddress(t, c, net.HardwareAddr{2, 0, 0, 0, 2, 2}, &a)
	if b := offered(t, other); b == a {
		t.Errorf("declined address %v handed to another client", a)
	}
}

// requestAddress runs Solicit-Advertise-Request-Reply for a client with
// link-layer address mac, asking for hint when not nil, and returns the
// Reply.
func requestAddress(t *testing.T, c *lab.Client6, mac net.HardwareAddr, hint *netip.Addr) *dhcpv6.Message {
	t.Helper()
	ctx := timeout(t, 15*time.Second)
	var mods []dhcpv6.Modifier
	if hint != nil {
		mods = append(mods, dhcpv6.WithIANA(dhcpv6.OptIAAddress{IPv6Addr: hint.AsSlice()}))
	}
	sol, err := dhcpv6.NewSolicit(mac, mods...)
	if err != nil {
		t.Fatal(err)
	}
	adv, err := c.Exchange(ctx, sol)
	if err != nil {
		t.Fatal(err)
	}
	req, err := dhcpv6.NewRequestFromAdvertise(adv)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Exchange(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if rep.MessageType != dhcpv6.MessageTypeReply {
		t.Fatalf("answer to Request: %s", rep.Summary())
	}
	return rep
}

// offered is the address of the single IA_NA of m.
func offered(t *testing.T, m *dhcpv6.Message) netip.Addr {
	t.Helper()
	ia := m.Options.OneIANA()
	if ia == nil || ia.Options.OneAddress() == nil {
		t.Fatalf("no address in %s", m.Summary())
	}
	a, _ := netip.AddrFromSlice(ia.Options.OneAddress().IPv6Addr)
	if !lanRange.Contains(a) {
		t.Fatalf("address %v outside the range %v", a, lanRange)
	}
	return a
}

// Several IAs in one message: two IA_NA and an IA_PD committed at once
// (Rapid Commit), each with its own lease, T1/T2 equal across them.
func TestSeveralIAsInOneMessage(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 30*time.Second)
	c := x.cli.Client6(cliIf)
	sol, err := dhcpv6.NewSolicit(net.HardwareAddr{2, 0, 0, 0, 3, 3}, dhcpv6.WithRapidCommit, dhcpv6.WithIAPD([4]byte{0, 0, 0, 9}))
	if err != nil {
		t.Fatal(err)
	}
	sol.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 7}})
	r, err := c.Exchange(ctx, sol)
	if err != nil {
		t.Fatal(err)
	}
	nas, pds := r.Options.IANA(), r.Options.IAPD()
	if r.MessageType != dhcpv6.MessageTypeReply || len(nas) != 2 || len(pds) != 1 {
		t.Fatalf("answer %s, want a Reply with two IA_NA and one IA_PD", r.Summary())
	}
	seen := map[netip.Prefix]bool{}
	t1, t2 := nas[0].T1, nas[0].T2
	for _, ia := range nas {
		if ia.T1 != t1 || ia.T2 != t2 {
			t.Errorf("IA_NA %x T1/T2 %v/%v, want %v/%v like the others", ia.IaId, ia.T1, ia.T2, t1, t2)
		}
		a := ia.Options.OneAddress()
		if a == nil {
			t.Fatalf("IA_NA %x without an address: %s", ia.IaId, r.Summary())
		}
		ip, _ := netip.AddrFromSlice(a.IPv6Addr)
		seen[hostPrefix(ip)] = true
	}
	if pds[0].T1 != t1 || pds[0].T2 != t2 || t1 > t2 {
		t.Errorf("IA_PD T1/T2 %v/%v, IA_NA %v/%v: want equal, T1 <= T2", pds[0].T1, pds[0].T2, t1, t2)
	}
	p := pds[0].Options.Prefixes()
	if len(p) != 1 || p[0].Prefix == nil {
		t.Fatalf("IA_PD without a prefix: %s", r.Summary())
	}
	pp, _ := netip.AddrFromSlice(p[0].Prefix.IP)
	ones, _ := p[0].Prefix.Mask.Size()
	seen[netip.PrefixFrom(pp, ones)] = true
	if len(seen) != 3 {
		t.Fatalf("leases granted %v, want three distinct", seen)
	}
	for pfx := range seen {
		if l := leaseOf(t, x.d, pfx); l.State != "leased" {
			t.Errorf("lease of %v: %q", pfx, l.State)
		}
	}
}
