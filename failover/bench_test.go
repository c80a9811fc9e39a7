package failover

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hook6/hook6/core/lease"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// benchLeases puts n leases in the primary's store (not timed) and
// returns them.
func benchLeases(b *testing.B, n *node, count, offset int) []lease.Lease {
	b.Helper()
	now := time.Now()
	ls := make([]lease.Lease, count)
	for i := range ls {
		c := offset + i
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c), 1})
		ls[i] = lease.Lease{Prefix: netip.PrefixFrom(a, 128), Kind: lease.NA, DUID: clientDUID(c), IAID: 1,
			Link: "lan", PrefixName: "lan-addr", State: lease.Leased, Preferred: time.Hour, Valid: 2 * time.Hour,
			Start: now, Expires: now.Add(2 * time.Hour), Updated: now}
	}
	for i := 0; i < len(ls); i += 1000 {
		if err := n.store.Put(b.Context(), ls[i:min(i+1000, len(ls))]...); err != nil {
			b.Fatal(err)
		}
	}
	return ls
}

// benchReplication measures acknowledged BNDUPDs per second: the engine's
// commits (OnCommit, in batches of 64 as concurrent Requests produce them)
// until the partner acknowledged all, and the replication lag.
func benchReplication(b *testing.B, tlsOn, sync bool, window int) {
	o := pairOpts{noSync: !sync, mclt: time.Hour, maxUnacked: window}
	if tlsOn {
		dir := b.TempDir()
		ca := newCA(b, dir, "ca")
		o.tlsPri, o.tlsSec = ca.issue(b, dir, "primary", ca), ca.issue(b, dir, "secondary", ca)
	}
	p := newPair(b, o)
	p.start()
	p.waitNormal(b, 10*time.Second)
	ls := benchLeases(b, p.pri, b.N, 0)
	base := p.pri.ep.stats.acked.Load()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < len(ls); i += 64 {
		p.pri.ep.OnCommit(ls[i:min(i+64, len(ls))])
	}
	for p.pri.ep.stats.acked.Load()-base < uint64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "bndupd/s")
	b.ReportMetric(float64(p.pri.ep.rep.lag.quantile(0.5))/float64(time.Millisecond), "lag-p50-ms")
	b.ReportMetric(float64(p.pri.ep.rep.lag.quantile(0.99))/float64(time.Millisecond), "lag-p99-ms")
}

func BenchmarkReplicationTLS(b *testing.B) {
	b.Run("fsync/window=10", func(b *testing.B) { benchReplication(b, true, true, 10) })
	b.Run("fsync/window=64", func(b *testing.B) { benchReplication(b, true, true, 64) })
	b.Run("fsync/window=256", func(b *testing.B) { benchReplication(b, true, true, 256) })
	b.Run("nosync/window=256", func(b *testing.B) { benchReplication(b, true, false, 256) })
}

func BenchmarkReplicationPlainTCP(b *testing.B) {
	b.Run("fsync/window=64", func(b *testing.B) { benchReplication(b, false, true, 64) })
}

// benchExchanges measures Solicit+Request exchanges per second on the
// primary's engine, with the failover pair replicating in NORMAL (TLS,
// fsync on both sides) or with failover out of the engine's path.
func benchExchanges(b *testing.B, withFailover bool) {
	dir := b.TempDir()
	ca := newCA(b, dir, "ca")
	p := newPair(b, pairOpts{mclt: time.Hour, maxUnacked: 64,
		tlsPri: ca.issue(b, dir, "primary", ca), tlsSec: ca.issue(b, dir, "secondary", ca)})
	if withFailover {
		p.start()
		p.waitNormal(b, 10*time.Second)
	} else {
		p.pri.open2WithoutFailover(b)
	}
	var next atomic.Int64
	base := p.pri.ep.stats.acked.Load()
	b.ResetTimer()
	start := time.Now()
	b.SetParallelism(32) // many clients at once, as the server's workers see them
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c := int(next.Add(1))
			adv := p.pri.exchange(newMsg(dhcpv6.MessageTypeSolicit, c, iaNA(1)))
			gs, _ := grants(adv)
			if len(gs) != 1 {
				b.Error("no address offered")
				return
			}
			p.pri.exchange(newMsg(dhcpv6.MessageTypeRequest, c, p.pri.serverID(), iaNA(1, gs[0].p.Addr())))
		}
	})
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "exchanges/s")
	if withFailover {
		for p.pri.ep.stats.acked.Load()-base < uint64(b.N) {
			time.Sleep(time.Millisecond)
		}
		all := time.Since(start)
		b.ReportMetric(float64(b.N)/all.Seconds(), "replicated/s")
		b.ReportMetric(float64(p.pri.ep.rep.lag.quantile(0.5))/float64(time.Millisecond), "lag-p50-ms")
		b.ReportMetric(float64(p.pri.ep.rep.lag.quantile(0.99))/float64(time.Millisecond), "lag-p99-ms")
	}
}

func BenchmarkExchanges(b *testing.B) {
	b.Run("single", func(b *testing.B) { benchExchanges(b, false) })
	b.Run("failover-pair", func(b *testing.B) { benchExchanges(b, true) })
}
