package core

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/lease"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

const testConfig = `
server: {interfaces: [eth1], state-dir: /tmp/unused}
policies:
  default:
    preferred-lifetime: 1h
    valid-lifetime: 2h
    allow-rapid-commit: true
    options: {preference: 255, dns-servers: [2001:db8::53]}
links:
  - {name: lan, interface: eth1}
  - {name: far, interface-id: far-port}
prefixes:
  - {name: lan-addr, link: lan, address: 2001:db8:1::/64, range: 2001:db8:1::/65, dhcp-type: dhcp, policy: default}
  - {name: lan-pd, link: lan, address: 2001:db8:8000::/40, dhcp-type: prefix-delegation, prefix-length: 56, policy: default}
  - {name: far-addr, link: far, address: 2001:db8:2::/64, dhcp-type: dhcp}
`

var testDUID = []byte{0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d, 0xde, 0xad, 0xbe, 0xef, 0, 1}

// testServer is a Server on a real (unsynced) bbolt store in a temp dir.
type testServer struct {
	*Server
	store *lease.BoltStore
	now   time.Time
}

func newTestServer(t testing.TB, yaml string) *testServer {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	store, err := lease.Open(filepath.Join(t.TempDir(), "leases.db"), lease.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ts := &testServer{store: store, now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	s, err := New(cfg, Options{Store: store, ServerDUID: testDUID, Now: func() time.Time { return ts.now }})
	if err != nil {
		t.Fatal(err)
	}
	// Tests (not benchmarks) check every answer's encoding against the
	// library's.
	_, bench := t.(*testing.B)
	s.verifyEncoding = !bench
	ts.Server = s
	return ts
}

var clientLL = netip.MustParseAddrPort("[fe80::211:22ff:fe33:4455]:546")

// exchange sends m as if received on eth1 from clientLL and decodes the answer.
func (ts *testServer) exchange(t testing.TB, m dhcpv6.DHCPv6) dhcpv6.DHCPv6 {
	t.Helper()
	out := ts.Handle(context.Background(), &Packet{Data: m.ToBytes(), Source: clientLL, Interface: "eth1"})
	if out == nil {
		return nil
	}
	d, err := dhcpv6.FromBytes(out)
	if err != nil {
		t.Fatalf("answer does not decode: %v", err)
	}
	return d
}

// message is the answer as a client message (fails if it is a relay).
func message(t testing.TB, d dhcpv6.DHCPv6) *dhcpv6.Message {
	t.Helper()
	if d == nil {
		t.Fatal("no answer")
	}
	m, ok := d.(*dhcpv6.Message)
	if !ok {
		t.Fatalf("answer is %T", d)
	}
	return m
}

func clientDUID(n byte) dhcpv6.DUID {
	return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0, 0x11, 0x22, 0x33, 0x44, n}}
}

// newMsg builds a client message of type t from client n with options.
func newMsg(t dhcpv6.MessageType, n byte, opts ...dhcpv6.Option) *dhcpv6.Message {
	m := &dhcpv6.Message{MessageType: t, TransactionID: dhcpv6.TransactionID{1, 2, n}}
	m.Options.Add(dhcpv6.OptClientID(clientDUID(n)))
	for _, o := range opts {
		m.Options.Add(o)
	}
	return m
}

func serverID() dhcpv6.Option {
	return &dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionServerID, OptionData: testDUID}
}

func iaNA(iaid uint32, hints ...string) *dhcpv6.OptIANA {
	o := &dhcpv6.OptIANA{IaId: [4]byte{byte(iaid >> 24), byte(iaid >> 16), byte(iaid >> 8), byte(iaid)}}
	for _, h := range hints {
		o.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP(h)})
	}
	return o
}

func iaPD(iaid uint32, hints ...string) *dhcpv6.OptIAPD {
	o := &dhcpv6.OptIAPD{IaId: [4]byte{byte(iaid >> 24), byte(iaid >> 16), byte(iaid >> 8), byte(iaid)}}
	for _, h := range hints {
		_, n, _ := net.ParseCIDR(h)
		o.Options.Add(&dhcpv6.OptIAPrefix{Prefix: n})
	}
	return o
}

func rapidCommit() dhcpv6.Option { return &dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit} }

// addrs returns the addresses of the first IA_NA of m and its status.
func addrs(m *dhcpv6.Message) ([]*dhcpv6.OptIAAddress, *dhcpv6.OptStatusCode) {
	ia := m.Options.OneIANA()
	if ia == nil {
		return nil, nil
	}
	return ia.Options.Addresses(), ia.Options.Status()
}

func prefixes(m *dhcpv6.Message) ([]*dhcpv6.OptIAPrefix, *dhcpv6.OptStatusCode) {
	ia := m.Options.OneIAPD()
	if ia == nil {
		return nil, nil
	}
	return ia.Options.Prefixes(), ia.Options.Status()
}

func mustAddr(t testing.TB, ip net.IP) netip.Addr {
	t.Helper()
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		t.Fatalf("bad address %v", ip)
	}
	return a.Unmap()
}

// bindAddr runs Solicit/Advertise/Request/Reply for client n and returns
// the address bound.
func (ts *testServer) bindAddr(t testing.TB, n byte) netip.Addr {
	t.Helper()
	adv := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeSolicit, n, iaNA(1))))
	as, _ := addrs(adv)
	if len(as) != 1 {
		t.Fatalf("advertise has %d addresses", len(as))
	}
	rep := message(t, ts.exchange(t, newMsg(dhcpv6.MessageTypeRequest, n, serverID(), iaNA(1, as[0].IPv6Addr.String()))))
	got, st := addrs(rep)
	if len(got) != 1 || st != nil {
		t.Fatalf("reply: %v", rep.Summary())
	}
	return mustAddr(t, got[0].IPv6Addr)
}
