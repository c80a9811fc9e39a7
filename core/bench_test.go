package core

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/lease"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

func benchMsg(t dhcpv6.MessageType, i uint32, opts ...dhcpv6.Option) []byte {
	m := &dhcpv6.Message{MessageType: t, TransactionID: dhcpv6.TransactionID{byte(i >> 16), byte(i >> 8), byte(i)}}
	duid := []byte{0, 3, 0, 1, 0x02, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 1}
	m.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionClientID, OptionData: duid})
	for _, o := range opts {
		m.Options.Add(o)
	}
	return m.ToBytes()
}

// BenchmarkSolicitAdvertise is one Solicit (IA_NA + IA_PD) to its Advertise,
// each from a new client.
func BenchmarkSolicitAdvertise(b *testing.B) {
	ts := newTestServer(b, testConfig)
	ctx := context.Background()
	b.ReportAllocs()
	var i uint32
	for b.Loop() {
		i++
		pkt := &Packet{Data: benchMsg(dhcpv6.MessageTypeSolicit, i, iaNA(1), iaPD(2)), Source: clientLL, Interface: "eth1"}
		if ts.Handle(ctx, pkt) == nil {
			b.Fatal("no advertise")
		}
	}
}

// BenchmarkRelayedSolicitAdvertise is one Solicit (IA_NA) through a relay
// to its Advertise wrapped in a Relay-reply, each from a new client.
func BenchmarkRelayedSolicitAdvertise(b *testing.B) {
	ts := newTestServer(b, testConfig)
	ctx := context.Background()
	b.ReportAllocs()
	var i uint32
	for b.Loop() {
		i++
		r := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayForward, LinkAddr: net.IPv6zero, PeerAddr: net.ParseIP("fe80::1")}
		r.Options.Add(dhcpv6.OptInterfaceID([]byte("far-port")))
		r.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRelayMsg, OptionData: benchMsg(dhcpv6.MessageTypeSolicit, i, iaNA(1))})
		pkt := &Packet{Data: r.ToBytes(), Source: netip.MustParseAddrPort("[2001:db8:ffff::1]:547"), Interface: "eth1"}
		if ts.Handle(ctx, pkt) == nil {
			b.Fatal("no advertise")
		}
	}
}

// BenchmarkRequestReply is one Request (IA_NA + IA_PD) to its Reply, each
// from a new client, committed to an unsynced store (the engine's cost).
func BenchmarkRequestReply(b *testing.B) {
	ts := newTestServer(b, testConfig)
	ctx := context.Background()
	b.ReportAllocs()
	var i uint32
	for b.Loop() {
		i++
		pkt := &Packet{Data: benchMsg(dhcpv6.MessageTypeRequest, i, serverID(), iaNA(1), iaPD(2)), Source: clientLL, Interface: "eth1"}
		if ts.Handle(ctx, pkt) == nil {
			b.Fatal("no reply")
		}
	}
}

// BenchmarkRequestReplyDurable is Request→Reply with every lease fsync'd
// before its Reply, from many goroutines at once: the batched commits are
// what keeps this from being one fsync per packet.
func BenchmarkRequestReplyDurable(b *testing.B) {
	cfg, err := config.Parse("bench.yaml", []byte(testConfig))
	if err != nil {
		b.Fatal(err)
	}
	store, err := lease.Open(filepath.Join(b.TempDir(), "leases.db"), lease.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	s, err := New(cfg, Options{Store: store, ServerDUID: testDUID})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var n atomic.Uint32
	b.ReportAllocs()
	b.SetParallelism(64)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			pkt := &Packet{Data: benchMsg(dhcpv6.MessageTypeRequest, i, serverID(), iaNA(1)), Source: netip.MustParseAddrPort("[fe80::1]:546"), Interface: "eth1"}
			if s.Handle(ctx, pkt) == nil {
				b.Error("no reply")
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "replies/s")
}
