// Package asynccache is the built-in that puts a cache in front of an
// external source (an LDAP directory, an HTTP+JSON service) so the source
// never blocks a packet, as the reference's "Using Other External Sources"
// asks: a fresh cached answer is used at once; a miss or a stale entry
// starts one background query for the client and the packet is dropped
// (skip-lease at generate-lease, a flag turned into drop at
// pre-packet-encode); the client's retransmission finds the answer.
//
// Cache is the engine (expirable LRU, deduplicated queries, bounded
// workers and queue, stats); Extension wires it to the hook points.
package asynccache

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Source answers a lookup for one client: env keys and values, and whether
// the client is known. ldapsource.Source and httpsource.Source are
// Sources. Lookup is called from the cache's workers, never from a packet.
type Source interface {
	Lookup(ctx context.Context, fields map[string]string) (map[string]string, bool, error)
}

// Config sizes and times the cache.
type Config struct {
	// TTL is how long a positive answer is fresh (default 5m).
	TTL time.Duration
	// NegativeTTL is how long a "not found" is fresh (default 1m).
	NegativeTTL time.Duration
	// MaxStale is how long past its TTL an entry is kept, to be served
	// while the source fails (default 1h).
	MaxStale time.Duration
	// ServeStale serves stale entries while they are refreshed even when
	// the source is healthy (stale-while-revalidate). When false, a stale
	// entry is only served after its refresh failed or while the source
	// is failing; otherwise the packet waits for the refresh (dropped).
	ServeStale bool
	// Size is the most entries kept (default 100000).
	Size int
	// Workers is the number of concurrent queries (default 4).
	Workers int
	// Queue is the number of queries that may wait for a worker
	// (default 1024); beyond it requests are refused and counted.
	Queue int
	// Timeout bounds one query (default 5s).
	Timeout time.Duration
}

// Defaults of Config.
const (
	DefaultTTL         = 5 * time.Minute
	DefaultNegativeTTL = time.Minute
	DefaultMaxStale    = time.Hour
	DefaultSize        = 100000
	DefaultWorkers     = 4
	DefaultQueue       = 1024
	DefaultTimeout     = 5 * time.Second
)

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.TTL, DefaultTTL)
	def(&c.NegativeTTL, DefaultNegativeTTL)
	def(&c.MaxStale, DefaultMaxStale)
	def(&c.Timeout, DefaultTimeout)
	if c.Size <= 0 {
		c.Size = DefaultSize
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.Queue <= 0 {
		c.Queue = DefaultQueue
	}
	return c
}

// State is the outcome of a cache lookup for a packet.
type State uint8

// The states.
const (
	// Fresh: a fresh answer; use it.
	Fresh State = iota
	// Stale: a stale answer served (refresh failing, source failing, or
	// ServeStale); a refresh has been asked for.
	Stale
	// Pending: no usable answer yet; a query runs (or could not be queued)
	// and the packet should be dropped.
	Pending
)

func (s State) String() string {
	switch s {
	case Fresh:
		return "fresh"
	case Stale:
		return "stale"
	}
	return "pending"
}

// Result is what Lookup gives a packet. Values is shared: do not modify.
type Result struct {
	State  State
	Found  bool
	Values map[string]string
}

// entry is one cached answer. It is immutable once in the cache, except
// refreshFailed.
type entry struct {
	values        map[string]string
	found         bool
	freshUntil    time.Time
	staleUntil    time.Time
	refreshFailed atomic.Bool // the last refresh since the entry went stale failed
	// unused is set while no packet has used the answer: it was fetched
	// for a client whose packet was dropped waiting, and that client's
	// next packet gets it even if it comes after the TTL (a client may
	// retransmit less often than the TTL; it must not wait forever).
	unused atomic.Bool
}

// job is one query for a worker.
type job struct {
	key    string
	fields map[string]string
}

// Stats counts what a Cache did since it was made.
type Stats struct {
	Hits           uint64 `json:"hits"`            // fresh answers (found or not)
	NegativeHits   uint64 `json:"negative_hits"`   // of which "not found"
	Misses         uint64 `json:"misses"`          // no entry: packet pending
	Stale          uint64 `json:"stale"`           // stale entries met
	StaleServed    uint64 `json:"stale_served"`    // of which served anyway
	InFlight       int64  `json:"in_flight"`       // queries queued or running now
	DroppedPending uint64 `json:"dropped_pending"` // packets dropped waiting for a query
	Queries        uint64 `json:"queries"`         // queries sent to the source
	Errors         uint64 `json:"errors"`          // queries that failed
	QueueFull      uint64 `json:"queue_full"`      // queries refused: queue full
	Entries        int    `json:"entries"`         // entries held
}

// Cache caches a Source's answers by client key and refreshes them in the
// background. It is safe for concurrent use.
type Cache struct {
	cfg   Config
	src   Source
	lru   *expirable.LRU[string, *entry]
	queue chan job
	now   func() time.Time

	mu      sync.Mutex
	pending map[string]struct{}
	closed  bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// sourceFailing is set when a query fails and cleared when one succeeds.
	sourceFailing atomic.Bool

	hits, negHits, misses, stale, staleServed atomic.Uint64
	droppedPending, queries, errs, queueFull  atomic.Uint64
	inFlight                                  atomic.Int64
}

// New starts a cache with its workers in front of src.
func New(cfg Config, src Source) (*Cache, error) {
	if src == nil {
		return nil, fmt.Errorf("async cache: no source")
	}
	cfg = cfg.withDefaults()
	keep := max(cfg.TTL, cfg.NegativeTTL) + cfg.MaxStale
	c := &Cache{
		cfg:     cfg,
		src:     src,
		lru:     expirable.NewLRU[string, *entry](cfg.Size, nil, keep),
		queue:   make(chan job, cfg.Queue),
		now:     time.Now,
		pending: make(map[string]struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for range cfg.Workers {
		c.wg.Go(c.work)
	}
	return c, nil
}

// Lookup returns the cached answer for key. When the entry is missing or
// stale it asks for a query (one per key at a time); fields is called
// only then, to build the source's fields.
func (c *Cache) Lookup(key string, fields func() map[string]string) Result {
	e, ok := c.lru.Get(key)
	now := c.now()
	if ok && now.Before(e.staleUntil) && (now.Before(e.freshUntil) || e.unused.Load()) {
		if e.unused.Load() {
			e.unused.Store(false)
		}
		c.hits.Add(1)
		if !e.found {
			c.negHits.Add(1)
		}
		return Result{State: Fresh, Found: e.found, Values: e.values}
	}
	if !ok || !now.Before(e.staleUntil) {
		c.misses.Add(1)
		c.request(key, fields)
		return Result{State: Pending}
	}
	c.stale.Add(1)
	serve := c.cfg.ServeStale || e.refreshFailed.Load() || c.sourceFailing.Load()
	c.request(key, fields)
	if !serve {
		return Result{State: Pending}
	}
	c.staleServed.Add(1)
	return Result{State: Stale, Found: e.found, Values: e.values}
}

// request queues a query for key unless one is queued or running.
func (c *Cache) request(key string, fields func() map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if _, ok := c.pending[key]; ok {
		return
	}
	select {
	case c.queue <- job{key: key, fields: fields()}:
		c.pending[key] = struct{}{}
		c.inFlight.Add(1)
	default:
		c.queueFull.Add(1)
	}
}

// work runs queries until the cache is closed.
func (c *Cache) work() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case j := <-c.queue:
			c.query(j)
		}
	}
}

// query asks the source and stores the answer; on failure the entry, if
// any, stays and is marked so it is served while stale.
func (c *Cache) query(j job) {
	defer func() {
		c.mu.Lock()
		delete(c.pending, j.key)
		c.mu.Unlock()
		c.inFlight.Add(-1)
	}()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.Timeout)
	defer cancel()
	c.queries.Add(1)
	values, found, err := c.src.Lookup(ctx, j.fields)
	if err != nil {
		if c.ctx.Err() != nil {
			return // closing
		}
		c.errs.Add(1)
		c.sourceFailing.Store(true)
		if e, ok := c.lru.Peek(j.key); ok {
			e.refreshFailed.Store(true)
		}
		return
	}
	c.sourceFailing.Store(false)
	ttl := c.cfg.TTL
	if !found {
		ttl, values = c.cfg.NegativeTTL, nil
	}
	now := c.now()
	e := &entry{values: values, found: found, freshUntil: now.Add(ttl), staleUntil: now.Add(ttl + c.cfg.MaxStale)}
	e.unused.Store(true)
	c.lru.Add(j.key, e)
}

// CountDropped counts a packet dropped because its query was pending.
func (c *Cache) CountDropped() { c.droppedPending.Add(1) }

// Invalidate forgets key, so the next packet of the client queries again.
func (c *Cache) Invalidate(key string) { c.lru.Remove(key) }

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits: c.hits.Load(), NegativeHits: c.negHits.Load(), Misses: c.misses.Load(),
		Stale: c.stale.Load(), StaleServed: c.staleServed.Load(), InFlight: c.inFlight.Load(),
		DroppedPending: c.droppedPending.Load(), Queries: c.queries.Load(), Errors: c.errs.Load(),
		QueueFull: c.queueFull.Load(), Entries: c.lru.Len(),
	}
}

// Close stops the workers (cancelling running queries), waits for them and
// empties the cache. The LRU's expiry goroutine cannot be stopped
// (golang-lru v2.0.7); emptying it frees the entries.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	for {
		select {
		case <-c.queue:
			c.inFlight.Add(-1)
			continue
		default:
		}
		break
	}
	c.lru.Purge()
	return nil
}
