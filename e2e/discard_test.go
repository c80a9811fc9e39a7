package e2e

import (
	"encoding/hex"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// The discard rules of RFC 8415 §16 on the wire: each message below gets
// no answer and is counted under its drop reason, while a valid Solicit
// sent after them is answered.
func TestDiscardRules(t *testing.T) {
	x := newDirect(t, nil)
	// An address on the link, so the client can also send by unicast.
	x.cli.AddAddr(cliIf, netip.MustParsePrefix("2001:db8:1::2/64"))
	c := x.cli.Client6(cliIf)
	raw, err := hex.DecodeString(serverDUID(t, x.d))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := dhcpv6.DUIDFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	other := &dhcpv6.DUIDLL{HWType: 1, LinkLayerAddr: net.HardwareAddr{2, 9, 9, 9, 9, 9}}
	before := stats(t, x.d)

	type bad struct {
		name, reason string
		msg          *dhcpv6.Message
		unicast      bool
	}
	cases := []bad{
		{"Solicit with a Server ID", "invalid", msgOf(t, c, dhcpv6.MessageTypeSolicit, ours, true, true), false},
		{"Request without a Server ID", "invalid", msgOf(t, c, dhcpv6.MessageTypeRequest, nil, true, true), false},
		{"Request without a Client ID", "invalid", msgOf(t, c, dhcpv6.MessageTypeRequest, ours, false, true), false},
		{"Request for another server", "other-server", msgOf(t, c, dhcpv6.MessageTypeRequest, other, true, true), false},
		{"Renew without a Server ID", "invalid", msgOf(t, c, dhcpv6.MessageTypeRenew, nil, true, true), false},
		{"Release without a Server ID", "invalid", msgOf(t, c, dhcpv6.MessageTypeRelease, nil, true, true), false},
		{"Confirm with a Server ID", "invalid", msgOf(t, c, dhcpv6.MessageTypeConfirm, ours, true, true), false},
		{"Information-request with an IA", "invalid", msgOf(t, c, dhcpv6.MessageTypeInformationRequest, nil, true, true), false},
		{"Solicit by unicast", "unicast", msgOf(t, c, dhcpv6.MessageTypeSolicit, nil, true, true), true},
	}
	want := map[string]float64{}
	badXID := map[dhcpv6.TransactionID]string{}
	for _, b := range cases {
		var err error
		if b.unicast {
			err = c.SendRawTo(b.msg.ToBytes(), netip.MustParseAddr("2001:db8:1::1"))
		} else {
			err = c.SendRaw(b.msg.ToBytes())
		}
		if err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		want[b.reason]++
		badXID[b.msg.TransactionID] = b.name
	}
	valid := msgOf(t, c, dhcpv6.MessageTypeSolicit, nil, true, true)
	if err := c.SendRaw(valid.ToBytes()); err != nil {
		t.Fatal(err)
	}
	got, err := c.Collect(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	answered := false
	for _, m := range got {
		if name, ok := badXID[m.TransactionID]; ok {
			t.Errorf("%s was answered: %s", name, m.Summary())
		}
		if m.TransactionID == valid.TransactionID && m.MessageType == dhcpv6.MessageTypeAdvertise {
			answered = true
		}
	}
	if !answered {
		t.Error("the valid Solicit sent after them got no Advertise")
	}
	after := waitStats(t, x.d, func(s lab.Stats) bool {
		for r, n := range want {
			if s["packets.dropped-by."+r]-before["packets.dropped-by."+r] < n {
				return false
			}
		}
		return true
	})
	for r, n := range want {
		if d := after["packets.dropped-by."+r] - before["packets.dropped-by."+r]; d != n {
			t.Errorf("drops for %s +%v, want +%v", r, d, n)
		}
	}
}

// msgOf builds a client message of type mt with an IA_NA (when withIA),
// the server ID sid (when not nil) and c's client ID (when withClient).
func msgOf(t *testing.T, c *lab.Client6, mt dhcpv6.MessageType, sid dhcpv6.DUID, withClient, withIA bool) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = mt
	if withClient {
		m.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: 1, LinkLayerAddr: c.HardwareAddr()}))
	}
	if sid != nil {
		m.AddOption(dhcpv6.OptServerID(sid))
	}
	m.AddOption(dhcpv6.OptElapsedTime(0))
	if withIA {
		ia := &dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}}
		if mt != dhcpv6.MessageTypeSolicit {
			ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: netip.MustParseAddr("2001:db8:1::4242").AsSlice()})
		}
		m.AddOption(ia)
	}
	return m
}
