package asynccache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeSource is a Source for unit tests: answers from a map, counts calls,
// can fail or block.
type fakeSource struct {
	mu      sync.Mutex
	answers map[string]map[string]string // duid → values
	calls   map[string]int
	fail    error
	block   chan struct{} // when non-nil, Lookup waits on it (or ctx)
}

func newFake() *fakeSource {
	return &fakeSource{answers: map[string]map[string]string{}, calls: map[string]int{}}
}

func (f *fakeSource) set(duid string, v map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[duid] = v
}

func (f *fakeSource) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeSource) count(duid string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[duid]
}

func (f *fakeSource) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

func (f *fakeSource) Lookup(ctx context.Context, fields map[string]string) (map[string]string, bool, error) {
	f.mu.Lock()
	f.calls[fields["duid"]]++
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, false, f.fail
	}
	v, ok := f.answers[fields["duid"]]
	return v, ok, nil
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newCache(t *testing.T, cfg Config, src Source) (*Cache, *clock) {
	t.Helper()
	c, err := New(cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Unix(1_000_000, 0)}
	c.now = clk.now
	t.Cleanup(func() { c.Close() })
	return c, clk
}

// settle waits until no query is queued or running.
func settle(t *testing.T, c *Cache) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().InFlight != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queries still in flight: %+v", c.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func fieldsOf(duid string) func() map[string]string {
	return func() map[string]string { return map[string]string{"duid": duid} }
}

func TestMissThenHit(t *testing.T) {
	src := newFake()
	src.set("01", map[string]string{"ext.prefix": "2001:db8:1::/56"})
	c, _ := newCache(t, Config{}, src)

	if r := c.Lookup("01", fieldsOf("01")); r.State != Pending {
		t.Fatalf("first lookup: %v, want pending", r.State)
	}
	settle(t, c)
	r := c.Lookup("01", fieldsOf("01"))
	if r.State != Fresh || !r.Found || r.Values["ext.prefix"] != "2001:db8:1::/56" {
		t.Fatalf("second lookup: %+v", r)
	}
	st := c.Stats()
	if st.Misses != 1 || st.Hits != 1 || st.Queries != 1 || st.Entries != 1 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDedup: however many packets of one client arrive while its query
// runs, one query is sent.
func TestDedup(t *testing.T) {
	src := newFake()
	src.block = make(chan struct{})
	src.set("01", map[string]string{"k": "v"})
	c, _ := newCache(t, Config{Workers: 2}, src)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if r := c.Lookup("01", fieldsOf("01")); r.State != Pending {
				t.Errorf("lookup while querying: %v", r.State)
			}
		})
	}
	wg.Wait()
	if st := c.Stats(); st.InFlight != 1 {
		t.Fatalf("in flight %d, want 1", st.InFlight)
	}
	close(src.block)
	settle(t, c)
	if n := src.count("01"); n != 1 {
		t.Fatalf("%d queries for one client, want 1", n)
	}
}

func TestNegativeTTL(t *testing.T) {
	src := newFake()
	c, clk := newCache(t, Config{TTL: time.Hour, NegativeTTL: time.Minute}, src)
	c.Lookup("02", fieldsOf("02"))
	settle(t, c)
	r := c.Lookup("02", fieldsOf("02"))
	if r.State != Fresh || r.Found {
		t.Fatalf("negative answer: %+v", r)
	}
	if st := c.Stats(); st.NegativeHits != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The client is added to the source; the negative entry hides it
	// until its own TTL passes, far sooner than a positive TTL.
	src.set("02", map[string]string{"k": "v"})
	clk.add(59 * time.Second)
	if r := c.Lookup("02", fieldsOf("02")); r.State != Fresh || r.Found {
		t.Fatalf("before negative TTL: %+v", r)
	}
	clk.add(2 * time.Second)
	if r := c.Lookup("02", fieldsOf("02")); r.State != Pending {
		t.Fatalf("after negative TTL: %+v, want pending (refresh)", r)
	}
	settle(t, c)
	if r := c.Lookup("02", fieldsOf("02")); r.State != Fresh || !r.Found {
		t.Fatalf("after refresh: %+v", r)
	}
}

// TestStaleRefresh: with a healthy source a stale entry is refreshed and
// the packet waits (dropped); the retransmission gets the new answer.
func TestStaleRefresh(t *testing.T) {
	src := newFake()
	src.set("01", map[string]string{"p": "old"})
	c, clk := newCache(t, Config{TTL: time.Minute}, src)
	c.Lookup("01", fieldsOf("01"))
	settle(t, c)
	src.set("01", map[string]string{"p": "new"})
	clk.add(30 * time.Second)
	if r := c.Lookup("01", fieldsOf("01")); r.Values["p"] != "old" || r.State != Fresh {
		t.Fatalf("within TTL: %+v", r)
	}
	clk.add(31 * time.Second)
	if r := c.Lookup("01", fieldsOf("01")); r.State != Pending {
		t.Fatalf("stale with healthy source: %+v, want pending", r)
	}
	settle(t, c)
	if r := c.Lookup("01", fieldsOf("01")); r.State != Fresh || r.Values["p"] != "new" {
		t.Fatalf("after refresh: %+v", r)
	}
	if st := c.Stats(); st.Stale != 1 || st.StaleServed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestStaleIfError: once refreshing fails, stale entries are served (until
// max-stale) and clients never seen stay pending; nothing piles up.
func TestStaleIfError(t *testing.T) {
	src := newFake()
	src.set("01", map[string]string{"p": "a"})
	src.set("02", map[string]string{"p": "b"})
	c, clk := newCache(t, Config{TTL: time.Minute, MaxStale: 10 * time.Minute}, src)
	for _, d := range []string{"01", "02"} {
		c.Lookup(d, fieldsOf(d))
	}
	settle(t, c)
	for _, d := range []string{"01", "02"} {
		c.Lookup(d, fieldsOf(d)) // the clients are served
	}
	src.setFail(errors.New("directory down"))
	clk.add(2 * time.Minute)

	// The first stale packet cannot know the source is down: it waits.
	if r := c.Lookup("01", fieldsOf("01")); r.State != Pending {
		t.Fatalf("first stale lookup: %+v", r)
	}
	settle(t, c)
	if r := c.Lookup("01", fieldsOf("01")); r.State != Stale || r.Values["p"] != "a" {
		t.Fatalf("after the failed refresh: %+v, want stale served", r)
	}
	// Another stale client is served at once: the source is known down.
	if r := c.Lookup("02", fieldsOf("02")); r.State != Stale || r.Values["p"] != "b" {
		t.Fatalf("second client: %+v", r)
	}
	// A client never cached waits.
	if r := c.Lookup("03", fieldsOf("03")); r.State != Pending {
		t.Fatalf("unknown client: %+v", r)
	}
	settle(t, c)
	st := c.Stats()
	if st.Errors < 3 || st.InFlight != 0 || st.StaleServed != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Past max-stale the entry is gone: even a failing source gives no
	// answer older than TTL+max-stale.
	clk.add(10 * time.Minute)
	if r := c.Lookup("01", fieldsOf("01")); r.State != Pending {
		t.Fatalf("past max-stale: %+v", r)
	}
	settle(t, c)
	if r := c.Lookup("01", fieldsOf("01")); r.State != Pending {
		t.Fatalf("past max-stale, source down: %+v", r)
	}
	settle(t, c)
	// The source comes back: answers flow again without anyone acting.
	src.setFail(nil)
	if r := c.Lookup("01", fieldsOf("01")); r.State != Pending {
		t.Fatalf("source back: %+v", r)
	}
	settle(t, c)
	if r := c.Lookup("01", fieldsOf("01")); r.State != Fresh || r.Values["p"] != "a" {
		t.Fatalf("after recovery: %+v", r)
	}
}

func TestServeStale(t *testing.T) {
	src := newFake()
	src.set("01", map[string]string{"p": "old"})
	c, clk := newCache(t, Config{TTL: time.Minute, ServeStale: true}, src)
	c.Lookup("01", fieldsOf("01"))
	settle(t, c)
	c.Lookup("01", fieldsOf("01")) // served
	src.set("01", map[string]string{"p": "new"})
	clk.add(2 * time.Minute)
	if r := c.Lookup("01", fieldsOf("01")); r.State != Stale || r.Values["p"] != "old" {
		t.Fatalf("stale-while-revalidate: %+v", r)
	}
	settle(t, c)
	if r := c.Lookup("01", fieldsOf("01")); r.State != Fresh || r.Values["p"] != "new" {
		t.Fatalf("after revalidation: %+v", r)
	}
}

// TestQueueBounded: a source that hangs holds at most workers+queue
// queries; the rest are refused and counted, and nothing waits.
func TestQueueBounded(t *testing.T) {
	src := newFake()
	src.block = make(chan struct{})
	c, _ := newCache(t, Config{Workers: 2, Queue: 3}, src)
	for i := range 2 {
		d := fmt.Sprintf("%02x", i)
		c.Lookup(d, fieldsOf(d))
	}
	for src.total() < 2 { // both workers are stuck in the source
		time.Sleep(time.Millisecond)
	}
	for i := 2; i < 100; i++ {
		d := fmt.Sprintf("%02x", i)
		if r := c.Lookup(d, fieldsOf(d)); r.State != Pending {
			t.Fatalf("lookup %d: %v", i, r.State)
		}
	}
	st := c.Stats()
	if st.InFlight != 5 || st.QueueFull != 95 {
		t.Fatalf("in flight %d, queue full %d: want 5 and 95", st.InFlight, st.QueueFull)
	}
	close(src.block)
	settle(t, c)
	// Refused clients are asked for again at their next packet.
	if r := c.Lookup("50", fieldsOf("50")); r.State != Pending {
		t.Fatalf("refused client: %v", r.State)
	}
	settle(t, c)
	if n := src.count("50"); n != 1 {
		t.Fatalf("refused client queried %d times", n)
	}
}

// TestCloseCancels: Close cancels queries stuck in the source and returns.
func TestCloseCancels(t *testing.T) {
	src := newFake()
	src.block = make(chan struct{})
	c, err := New(Config{Workers: 2, Queue: 10}, src)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"01", "02", "03", "04"} {
		c.Lookup(d, fieldsOf(d))
	}
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("Close blocked on a hanging source")
	}
	if st := c.Stats(); st.InFlight != 0 || st.Entries != 0 || st.Errors != 0 {
		t.Fatalf("after close: %+v", st)
	}
	if r := c.Lookup("05", fieldsOf("05")); r.State != Pending || c.Stats().InFlight != 0 {
		t.Fatalf("lookup after close queued a query")
	}
}

func TestLRUSize(t *testing.T) {
	src := newFake()
	c, _ := newCache(t, Config{Size: 10}, src)
	for i := range 30 {
		d := fmt.Sprintf("%02x", i)
		c.Lookup(d, fieldsOf(d))
		settle(t, c)
	}
	if n := c.Stats().Entries; n != 10 {
		t.Fatalf("%d entries, want 10", n)
	}
}

var errSourceDown = errors.New("source down")

// TestSlowRetransmission: a client retransmitting less often than the TTL
// gets the answer fetched for it, once, however stale; after that the
// normal rules apply again.
func TestSlowRetransmission(t *testing.T) {
	src := newFake()
	src.set("01", map[string]string{"p": "a"})
	c, clk := newCache(t, Config{TTL: 3 * time.Second, MaxStale: time.Hour}, src)
	if r := c.Lookup("01", fieldsOf("01")); r.State != Pending {
		t.Fatalf("first: %+v", r)
	}
	settle(t, c)
	clk.add(16 * time.Second) // the client's next Solicit
	if r := c.Lookup("01", fieldsOf("01")); r.State != Fresh || r.Values["p"] != "a" {
		t.Fatalf("retransmission after the TTL: %+v, want the answer fetched for it", r)
	}
	if r := c.Lookup("01", fieldsOf("01")); r.State != Pending {
		t.Fatalf("next packet, entry stale and used: %+v, want a refresh", r)
	}
	settle(t, c)
	if n := src.count("01"); n != 2 {
		t.Fatalf("%d queries, want 2", n)
	}
}
