package extensions

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/hook6/hook6/core"
	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/lease"
	"github.com/hook6/hook6/hooks"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// exchangeConfig is one /64 address pool on one link, as in make bench.
const exchangeConfig = `
server: {interfaces: [eth1], state-dir: /tmp/unused}
policies:
  default: {preferred-lifetime: 1h, valid-lifetime: 2h}
links:
  - {name: lan, interface: eth1}
prefixes:
  - {name: lan-addr, link: lan, address: 2001:db8:1::/64, dhcp-type: dhcp, policy: default}
`

var benchServerDUID = []byte{0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d, 0xde, 0xad, 0xbe, 0xef, 0, 1}

// exchangeMsg is message t of client i with an IA_NA, as perfdhcp sends
// it; with the server's ID for a Request.
func exchangeMsg(t dhcpv6.MessageType, i uint32, sid bool) []byte {
	m := &dhcpv6.Message{MessageType: t, TransactionID: dhcpv6.TransactionID{byte(i >> 16), byte(i >> 8), byte(i)}}
	duid := []byte{0, 1, 0, 1, 0x02, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 1, 2, 3, 4, 5}
	m.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionClientID, OptionData: duid})
	if sid {
		m.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionServerID, OptionData: benchServerDUID})
	}
	m.Options.Add(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}})
	m.Options.Add(dhcpv6.OptElapsedTime(0))
	return m.ToBytes()
}

// benchExchange is one client's Solicit → Advertise and Request → Reply
// through the whole server in process (no sockets, lease store unsynced),
// each iteration a new client; with scripts, bench/scripts/fourpoints.go
// runs at its four points, eight calls an exchange, as in make bench's
// "hook6 + 4 scripts" run.
func benchExchange(b *testing.B, scripts bool) {
	cfg, err := config.Parse("bench.yaml", []byte(exchangeConfig))
	if err != nil {
		b.Fatal(err)
	}
	store, err := lease.Open(filepath.Join(b.TempDir(), "leases.db"), lease.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	s, err := core.New(cfg, core.Options{Store: store, ServerDUID: benchServerDUID})
	if err != nil {
		b.Fatal(err)
	}
	var ch *hooks.Chain
	if scripts {
		ch = benchChain(b, &config.Extension{Name: "fourpoints", Script: "../bench/scripts/fourpoints.go",
			Points: []string{"post-packet-decode", "pre-client-lookup", "post-client-lookup", "pre-packet-encode"}})
		s.SetRunner(ch)
	}
	ctx := context.Background()
	src := netip.MustParseAddrPort("[fe80::1]:546")
	b.ReportAllocs()
	var i uint32
	for b.Loop() {
		i++
		if s.Handle(ctx, &core.Packet{Data: exchangeMsg(dhcpv6.MessageTypeSolicit, i, false), Source: src, Interface: "eth1"}) == nil {
			b.Fatal("no Advertise")
		}
		if s.Handle(ctx, &core.Packet{Data: exchangeMsg(dhcpv6.MessageTypeRequest, i, true), Source: src, Interface: "eth1"}) == nil {
			b.Fatal("no Reply")
		}
	}
	if ch != nil {
		checkStats(b, ch)
		if calls := ch.Stats()["fourpoints"].Calls; calls != 8*uint64(i) {
			b.Fatalf("the script ran %d times in %d exchanges, want 8 each", calls, i)
		}
	}
}

func BenchmarkExchange(b *testing.B)            { benchExchange(b, false) }
func BenchmarkExchangeFourScripts(b *testing.B) { benchExchange(b, true) }
