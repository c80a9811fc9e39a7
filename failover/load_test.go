package failover

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// The link between the servers is cut and restored while both serve
// clients: when it is back, both databases hold every lease, and no
// address was given to two clients.
func TestLinkCutUnderLoad(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true, viaProxy: true, maxUnacked: 16, mclt: time.Minute})
	p.start()
	p.waitNormal(t, 10*time.Second)

	var mu sync.Mutex
	given := map[netip.Prefix]int{}
	record := func(c int, g grant) {
		mu.Lock()
		defer mu.Unlock()
		if o, ok := given[g.p]; ok && o != c {
			t.Errorf("%s given to clients %d and %d", g.p, o, c)
		}
		given[g.p] = c
	}
	var next atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := int(next.Add(1))
				record(c, p.pri.bind(c, c%5 == 0))
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	p.proxy.setCut(true)
	waitState(t, p.sec, CommInterrupted, 5*time.Second)
	// The secondary serves new clients too while the link is down.
	for c := 50000; c < 50020; c++ {
		record(c, p.sec.bind(c, false))
	}
	time.Sleep(300 * time.Millisecond)
	p.proxy.setCut(false)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	p.waitNormal(t, 15*time.Second)
	p.waitSame(t, 15*time.Second)
	mu.Lock()
	defer mu.Unlock()
	for pfx, c := range given {
		for _, n := range []*node{p.pri, p.sec} {
			l, ok := n.store.Get(pfx)
			if !ok || l.State != lease.Leased || string(l.DUID) != string(clientDUID(c)) {
				t.Fatalf("%s lost lease %s of client %d (%+v)", n.name, pfx, c, l)
			}
		}
	}
	t.Logf("%d leases given during the test; primary stats %v", len(given), p.pri.ep.Stats())
}

// Changes made while the lazy-update queue is full are not lost: the
// queue marks a rescan, and the store is compared with what the partner
// holds once the link is back.
func TestQueueOverflowLosesNothing(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true, viaProxy: true, queue: 4, mclt: time.Minute})
	p.start()
	p.waitNormal(t, 10*time.Second)
	p.proxy.setCut(true)
	waitState(t, p.pri, CommInterrupted, 5*time.Second)
	for c := range 60 {
		p.pri.bind(c, false)
	}
	if n := p.pri.ep.rep.q.len(); n > 4 {
		t.Fatalf("queue holds %d changes, bound is 4", n)
	}
	p.proxy.setCut(false)
	p.waitNormal(t, 10*time.Second)
	p.waitSame(t, 10*time.Second)
	if n := p.sec.store.Len(); n != 60 {
		t.Fatalf("secondary holds %d leases, want 60", n)
	}
}
