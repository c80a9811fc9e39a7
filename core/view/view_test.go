package view

import (
	"bytes"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/hook6/hook6/hooks"
)

var clientMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc}

// relayedSolicit builds a Solicit with an IA_NA hint, an IA_PD hint and
// vendor and user classes, inside two Relay-forw layers, and returns the
// bytes as they would arrive.
func relayedSolicit(t testing.TB) []byte {
	t.Helper()
	sol, err := dhcpv6.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	sol.MessageType = dhcpv6.MessageTypeSolicit
	sol.TransactionID = dhcpv6.TransactionID{0x12, 0x34, 0x56}
	sol.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: clientMAC}))
	sol.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 7}, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
		&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("2001:db8:1::42")}}}})
	_, hint, _ := net.ParseCIDR("2001:db8:8000:100::/56")
	sol.AddOption(&dhcpv6.OptIAPD{IaId: [4]byte{0, 0, 1, 0}, Options: dhcpv6.PDOptions{Options: dhcpv6.Options{
		&dhcpv6.OptIAPrefix{Prefix: hint}}}})
	sol.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 4491, Data: [][]byte{[]byte("docsis3.0"), []byte("x")}})
	sol.AddOption(&dhcpv6.OptUserClass{UserClasses: [][]byte{[]byte("gold")}})

	inner, err := dhcpv6.EncapsulateRelay(sol, dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:1::1"), net.ParseIP("fe80::2"))
	if err != nil {
		t.Fatal(err)
	}
	inner.AddOption(dhcpv6.OptInterfaceID([]byte("ge-0/0/1")))
	inner.AddOption(&dhcpv6.OptRemoteID{EnterpriseNumber: 9, RemoteID: []byte{0xde, 0xad}})
	inner.AddOption(dhcpv6.OptClientLinkLayerAddress(iana.HWTypeEthernet, clientMAC))
	outer, err := dhcpv6.EncapsulateRelay(inner, dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:ffff::1"), net.ParseIP("2001:db8:1::1"))
	if err != nil {
		t.Fatal(err)
	}
	outer.AddOption(dhcpv6.OptInterfaceID([]byte("agg1")))
	return outer.ToBytes()
}

func TestFromMessageRelayed(t *testing.T) {
	msg, err := dhcpv6.FromBytes(relayedSolicit(t))
	if err != nil {
		t.Fatal(err)
	}
	req, err := FromMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if req.MessageType != "SOLICIT" || req.TransactionID != 0x123456 {
		t.Errorf("type %q xid %#x", req.MessageType, req.TransactionID)
	}
	wantDUID := append([]byte{0, 3, 0, 1}, clientMAC...)
	if !bytes.Equal(req.ClientDUID, wantDUID) {
		t.Errorf("DUID %x, want %x", req.ClientDUID, wantDUID)
	}
	if len(req.IAs) != 2 {
		t.Fatalf("IAs %+v", req.IAs)
	}
	na, pd := req.IAs[0], req.IAs[1]
	if na.Type != hooks.IANA || na.IAID != 7 || len(na.Hints) != 1 || na.Hints[0] != netip.MustParsePrefix("2001:db8:1::42/128") {
		t.Errorf("IA_NA %+v", na)
	}
	if pd.Type != hooks.IAPD || pd.IAID != 256 || len(pd.Hints) != 1 || pd.Hints[0] != netip.MustParsePrefix("2001:db8:8000:100::/56") {
		t.Errorf("IA_PD %+v", pd)
	}
	if len(req.Options) != 5 {
		t.Errorf("options %+v", req.Options)
	}
	if d, ok := req.Option(16); !ok || !bytes.Contains(d, []byte("docsis3.0")) {
		t.Errorf("vendor class option %x", d)
	}
	if len(req.Relays) != 2 {
		t.Fatalf("relays %+v", req.Relays)
	}
	out, in := req.Relays[0], req.Relays[1]
	if out.LinkAddress != netip.MustParseAddr("2001:db8:ffff::1") || string(out.InterfaceID) != "agg1" {
		t.Errorf("outer relay %+v", out)
	}
	if in.LinkAddress != netip.MustParseAddr("2001:db8:1::1") || in.PeerAddress != netip.MustParseAddr("fe80::2") ||
		string(in.InterfaceID) != "ge-0/0/1" || !bytes.Equal(in.RemoteID, []byte{0xde, 0xad}) ||
		!bytes.Equal(in.ClientLinkLayer, clientMAC) {
		t.Errorf("inner relay %+v", in)
	}
	for _, o := range in.Options {
		if o.Code == uint16(dhcpv6.OptionRelayMsg) {
			t.Errorf("relay options carry the relay message")
		}
	}

	req.Source = netip.MustParseAddrPort("[2001:db8:ffff::1]:547")
	req.Interface = "eth1"
	env := hooks.NewEnv()
	ServerEnvNamed(env, req, "dhcp-a")
	want := map[string]string{
		hooks.KeyMessageType: "SOLICIT", hooks.KeyClientDUID: "00030001020000aabbcc",
		hooks.KeyInterface: "eth1", hooks.KeySource: "2001:db8:ffff::1", hooks.KeyRelayed: "true",
		hooks.KeyLinkAddress: "2001:db8:1::1", hooks.KeyPeerAddress: "fe80::2",
		hooks.KeyInterfaceID: "67652d302f302f31", hooks.KeyRemoteID: "dead",
		hooks.KeyClientMAC: "02:00:00:aa:bb:cc", hooks.KeyLink: "", hooks.KeyServerName: "dhcp-a",
		hooks.KeyVendorClass: "docsis3.0", hooks.KeyUserClass: "gold", hooks.KeyRequestIAIDs: "2",
	}
	for _, k := range hooks.ReadOnlyKeys {
		v, ok := env.Get(k)
		if !ok || v != want[k] {
			t.Errorf("env %s = %q (set %v), want %q", k, v, ok, want[k])
		}
		if err := env.Set(k, "x"); err == nil {
			t.Errorf("env %s is writable", k)
		}
	}
}

func TestFromMessageDirect(t *testing.T) {
	m, err := dhcpv6.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = dhcpv6.MessageTypeInformationRequest
	msg, err := dhcpv6.FromBytes(m.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	req, err := FromMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if req.MessageType != "INFORMATION-REQUEST" || len(req.Relays) != 0 || req.ClientDUID != nil {
		t.Errorf("%+v", req)
	}
	env := hooks.NewEnv()
	ServerEnv(env, req)
	if env.Value(hooks.KeyRelayed) != "false" || env.Value(hooks.KeyLinkAddress) != "" || env.Value(hooks.KeyVendorClass) != "" {
		t.Errorf("env %v", env.Map())
	}
	if err := env.Set(hooks.KeyVendorClass, "spoofed"); err == nil {
		t.Error("an absent server key can be set by an extension")
	}
}

func TestFromMessageRelayWithoutMessage(t *testing.T) {
	r := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayForward, LinkAddr: net.IPv6zero, PeerAddr: net.IPv6zero}
	if _, err := FromMessage(r); err == nil {
		t.Fatal("a relay without a relay message was accepted")
	}
}

// TestFromBytesIsFromMessage: the view built from the bytes as received
// is the one FromMessage builds, options and relays included, and bytes
// that do not split into options fall back to FromMessage's encoding.
func TestFromBytesIsFromMessage(t *testing.T) {
	raw := relayedSolicit(t)
	msg, err := dhcpv6.FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	want, err := FromMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"as received": raw,
		"truncated":   raw[:len(raw)-3],
		"missing":     nil,
	} {
		got, err := FromBytes(data, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: FromBytes\n%+v\nFromMessage\n%+v", name, got, want)
		}
	}
	got, _ := FromBytes(raw, msg)
	raw[len(raw)-1] ^= 0xff // the caller's buffer is its own
	if !reflect.DeepEqual(got, want) {
		t.Error("the view shares the caller's buffer")
	}
	o := &got.Options[0]
	o.Data = append(o.Data, 1, 2, 3)
	if !bytes.Equal(got.Options[1].Data, want.Options[1].Data) {
		t.Error("an append to one option's data reached the next")
	}
}

func TestMessageTypeName(t *testing.T) {
	if MessageTypeName(dhcpv6.MessageTypeRelayReply) != "RELAY-REPL" || MessageTypeName(99) != "TYPE-99" {
		t.Error(MessageTypeName(dhcpv6.MessageTypeRelayReply), MessageTypeName(99))
	}
}

// benchView measures building the view of a doubly relayed Solicit and
// its environment, the view made by build.
func benchView(b *testing.B, build func(raw []byte, msg dhcpv6.DHCPv6) (*hooks.Request, error)) {
	raw := relayedSolicit(b)
	msg, err := dhcpv6.FromBytes(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		req, err := build(raw, msg)
		if err != nil {
			b.Fatal(err)
		}
		ServerEnv(hooks.NewEnv(), req)
	}
}

func BenchmarkFromMessage(b *testing.B) {
	benchView(b, func(_ []byte, msg dhcpv6.DHCPv6) (*hooks.Request, error) { return FromMessage(msg) })
}

func BenchmarkFromBytes(b *testing.B) { benchView(b, FromBytes) }
