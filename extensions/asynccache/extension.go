package asynccache

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hook6/hook6/hooks"
)

// DefaultFlag is the env key set to "true" on a packet whose client's
// answer is pending.
const DefaultFlag = "async-pending"

// DefaultPoints are the points of the extension when the config lists
// none: look up at post-packet-decode, skip the lease at generate-lease,
// drop at pre-packet-encode.
var DefaultPoints = []hooks.Point{hooks.PostPacketDecode, hooks.GenerateLease, hooks.PrePacketEncode}

// Options are the extension's settings besides the cache's.
type Options struct {
	// Points the extension runs at (DefaultPoints when empty). The cache
	// is looked up at the first of post-packet-decode, pre-client-lookup
	// and post-client-lookup listed, else at generate-lease (new leases)
	// and check-lease-acceptable (leases the server checks, e.g. at
	// renewal) when listed; generate-lease sets skip-lease on a pending
	// packet; pre-packet-encode turns the flag into drop.
	Points []hooks.Point
	// Fields are the client fields that identify the client in the cache
	// and are handed to the source, e.g. [duid].
	Fields []string
	// Flag is the env key set on a pending packet (DefaultFlag).
	Flag string
	// FoundKey, when set, is the env key set to "true" or "false" after a
	// usable answer says whether the client is known.
	FoundKey string
	// Links limits lookups to clients of these links (server.link); the
	// lookup point must then come after post-packet-decode.
	Links []string
	// Prefixes limits lookups to IAs of these prefixes; the lookups must
	// then be at generate-lease or check-lease-acceptable.
	Prefixes []string
	// DropEarly sets drop at the lookup point itself when it comes before
	// generate-lease, sparing the packet's further processing.
	DropEarly bool
}

// Extension is the async cache at the hook points. It implements
// hooks.Extension, hooks.Closer and hooks.Budgeted (it never waits: the
// chain runs it inline, without a deadline of its own).
type Extension struct {
	name     string
	opt      Options
	lookupAt uint16 // bit p set: look up at point p
	answered string // env key marking a packet that got its answer
	keyer    keyer
	cache    *Cache
	src      Source
}

// NewExtension wires cache (which queries src) to the points in opt.
func NewExtension(name string, opt Options, cache *Cache, src Source) (*Extension, error) {
	if len(opt.Points) == 0 {
		opt.Points = DefaultPoints
	}
	if opt.Flag == "" {
		opt.Flag = DefaultFlag
	}
	if len(opt.Fields) == 0 {
		return nil, fmt.Errorf("async cache %s: no client fields to key the cache on", name)
	}
	x := &Extension{name: name, opt: opt, keyer: newKeyer(opt.Fields), cache: cache, src: src,
		answered: "async-cache." + name + ".answered"}
	if err := x.choosePoints(); err != nil {
		return nil, fmt.Errorf("async cache %s: %w", name, err)
	}
	return x, nil
}

// choosePoints sets where the cache is looked up: at the first configured
// of post-packet-decode, pre-client-lookup and post-client-lookup; else at
// generate-lease (new leases) and check-lease-acceptable (existing leases
// the server checks), whichever are configured, since a packet may run
// either or both.
func (x *Extension) choosePoints() error {
	var early, late []hooks.Point
	for _, p := range x.opt.Points {
		switch p {
		case hooks.PostPacketDecode, hooks.PreClientLookup, hooks.PostClientLookup:
			early = append(early, p)
		case hooks.GenerateLease, hooks.CheckLeaseAcceptable:
			late = append(late, p)
		case hooks.PrePacketEncode:
		default:
			return fmt.Errorf("cannot run at %s", p)
		}
	}
	switch {
	case len(early) > 0:
		x.lookupAt = 1 << slices.Min(early)
	case len(late) > 0:
		for _, p := range late {
			x.lookupAt |= 1 << p
		}
	default:
		return fmt.Errorf("points need one of post-packet-decode, pre-client-lookup, post-client-lookup, generate-lease or check-lease-acceptable to look up")
	}
	if len(x.opt.Links) > 0 && x.lookupAt&(1<<hooks.PostPacketDecode) != 0 {
		return fmt.Errorf("links needs the lookup after post-packet-decode (the link is chosen then)")
	}
	if len(x.opt.Prefixes) > 0 && len(early) > 0 {
		return fmt.Errorf("prefixes needs the lookup at generate-lease or check-lease-acceptable, where the prefix is known (not at %s)", slices.Min(early))
	}
	return nil
}

// Name implements hooks.Extension.
func (x *Extension) Name() string { return x.name }

// Points implements hooks.Extension.
func (x *Extension) Points() []hooks.Point { return x.opt.Points }

// Cache returns the cache, for its stats.
func (x *Extension) Cache() *Cache { return x.cache }

// Stats returns the cache's counters.
func (x *Extension) Stats() Stats { return x.cache.Stats() }

// Counters returns the cache's counters by name (the JSON names of
// Stats), for the daemon's stats and metrics.
func (x *Extension) Counters() map[string]uint64 {
	st := x.cache.Stats()
	return map[string]uint64{
		"hits": st.Hits, "negative_hits": st.NegativeHits, "misses": st.Misses,
		"stale": st.Stale, "stale_served": st.StaleServed, "in_flight": uint64(max(st.InFlight, 0)),
		"dropped_pending": st.DroppedPending, "queries": st.Queries, "errors": st.Errors,
		"queue_full": st.QueueFull, "entries": uint64(st.Entries),
	}
}

// Handle implements hooks.Extension.
func (x *Extension) Handle(c *hooks.Context) error {
	if x.lookupAt&(1<<c.Point) != 0 {
		if err := x.lookup(c); err != nil {
			return err
		}
	}
	switch c.Point {
	case hooks.GenerateLease:
		if c.Env.IsTrue(x.opt.Flag) && x.prefixInScope(c) {
			return c.SkipLease()
		}
	case hooks.PrePacketEncode:
		if c.Env.IsTrue(x.opt.Flag) {
			x.cache.CountDropped()
			return c.Drop()
		}
	}
	return nil
}

// HandleWithin implements hooks.Budgeted: Handle never blocks (queries run
// on the cache's workers), so it is its own budget.
func (x *Extension) HandleWithin(c *hooks.Context, _ time.Duration) error { return x.Handle(c) }

func (x *Extension) prefixInScope(c *hooks.Context) bool {
	if len(x.opt.Prefixes) == 0 {
		return true
	}
	return c.Allocation != nil && slices.Contains(x.opt.Prefixes, c.Allocation.PrefixName)
}

// lookup consults the cache and puts the answer in the env, or flags the
// packet as pending.
func (x *Extension) lookup(c *hooks.Context) error {
	env := c.Env
	if env.IsTrue(x.opt.Flag) || env.IsTrue(x.answered) {
		// Already pending, or already answered: a packet is looked up once
		// (generate-lease and check-lease-acceptable may both run, for
		// several IAs), so it cannot find its fresh answer stale a moment
		// later.
		return nil
	}
	if len(x.opt.Links) > 0 && !slices.Contains(x.opt.Links, env.Value(hooks.KeyLink)) {
		return nil
	}
	if c.Allocation != nil && !x.prefixInScope(c) {
		return nil
	}
	key, ok := x.keyer.key(env)
	if !ok {
		return x.setFound(env, false) // not identifiable: the source cannot know it
	}
	r := x.cache.Lookup(key, func() map[string]string { return ClientFields(env, x.opt.Fields) })
	if r.State == Pending {
		if err := env.Set(x.opt.Flag, "true"); err != nil {
			return err
		}
		switch {
		case c.Point == hooks.GenerateLease:
			return c.SkipLease()
		case x.opt.DropEarly && c.Point < hooks.GenerateLease:
			x.cache.CountDropped()
			return c.Drop()
		}
		return nil
	}
	for k, v := range r.Values {
		if err := env.Set(k, v); err != nil {
			return fmt.Errorf("async cache %s: %w", x.name, err)
		}
	}
	if x.lookupAt&(1<<hooks.GenerateLease|1<<hooks.CheckLeaseAcceptable) != 0 {
		if err := env.Set(x.answered, "true"); err != nil {
			return err
		}
	}
	return x.setFound(env, r.Found)
}

func (x *Extension) setFound(env *hooks.Env, found bool) error {
	if x.opt.FoundKey == "" {
		return nil
	}
	v := "false"
	if found {
		v = "true"
	}
	return env.Set(x.opt.FoundKey, v)
}

// Close stops the cache and closes the source if it holds resources.
func (x *Extension) Close() error {
	err := x.cache.Close()
	if cl, ok := x.src.(io.Closer); ok {
		err = errors.Join(err, cl.Close())
	}
	return err
}
