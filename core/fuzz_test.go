package core

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// FuzzHandle feeds arbitrary datagrams to the engine, seeded with every
// message type, relayed and not. Whatever arrives, Handle must not panic,
// and whatever it answers must decode.
func FuzzHandle(f *testing.F) {
	relay := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayForward, LinkAddr: net.ParseIP("2001:db8:1::1"), PeerAddr: net.ParseIP("fe80::1")}
	relay.Options.Add(dhcpv6.OptInterfaceID([]byte("port")))
	relay.Options.Add(dhcpv6.OptRelayMessage(newMsg(dhcpv6.MessageTypeSolicit, 1, iaNA(1), iaPD(2))))
	seeds := []dhcpv6.DHCPv6{
		newMsg(dhcpv6.MessageTypeSolicit, 1, iaNA(1), iaPD(2)),
		newMsg(dhcpv6.MessageTypeSolicit, 1, iaNA(1), rapidCommit()),
		newMsg(dhcpv6.MessageTypeRequest, 1, serverID(), iaNA(1, "2001:db8:1::5"), iaPD(2, "2001:db8:8000::/56")),
		newMsg(dhcpv6.MessageTypeRenew, 1, serverID(), iaNA(1, "2001:db8:1::5")),
		newMsg(dhcpv6.MessageTypeRebind, 1, iaNA(1, "2001:db8:1::5")),
		newMsg(dhcpv6.MessageTypeRelease, 1, serverID(), iaNA(1, "2001:db8:1::5")),
		newMsg(dhcpv6.MessageTypeDecline, 1, serverID(), iaNA(1, "2001:db8:1::5")),
		newMsg(dhcpv6.MessageTypeConfirm, 1, iaNA(1, "2001:db8:1::5")),
		newMsg(dhcpv6.MessageTypeInformationRequest, 1),
		relay,
	}
	for _, s := range seeds {
		f.Add(s.ToBytes(), false)
	}
	f.Add([]byte{1, 0, 0, 0, 0, 1, 0, 2, 0}, true)
	ts := newTestServer(f, testConfig)
	f.Fuzz(func(t *testing.T, data []byte, unicast bool) {
		out := ts.Handle(context.Background(), &Packet{Data: data, Source: netip.MustParseAddrPort("[fe80::1]:546"), Interface: "eth1", Unicast: unicast})
		if out == nil {
			return
		}
		if _, err := dhcpv6.FromBytes(out); err != nil {
			t.Fatalf("answer to %x does not decode: %v", data, err)
		}
	})
}
