// Package core is hook6's DHCPv6 protocol engine (RFC 8415, RFC 9915): it
// decodes client and relayed messages, selects the link, runs the extension
// points of package hooks, allocates addresses and delegated prefixes,
// commits leases to the store before answering, and encodes the answer.
//
// core knows nothing of scripts, plugins, LDAP or failover: it calls a
// hooks.Runner, and an optional commit sink and allocation filter.
package core

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/lease"
	"github.com/hook6/hook6/hooks"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// offerTTL is how long an address offered in an Advertise stays promised
// to its client: long enough for its Request and retransmissions, short
// enough that a flood of Solicits that never Request frees the pool soon.
const offerTTL = 30 * time.Second

// maxClaims bounds the uncommitted offers held at once, so a flood of
// Solicits cannot grow memory without bound.
const maxClaims = 1 << 20

// Options configure a Server beyond its config file.
type Options struct {
	Store      lease.Store
	Logger     *slog.Logger
	ServerDUID []byte
	// Now returns the current time (tests set it).
	Now func() time.Time
	// Filter, when set, must accept every new lease chosen by the
	// client-request, random or best-fit algorithms before it is offered
	// (failover's independent allocation: primary odd, secondary even).
	// Reservations, interface-identifier and extension leases are the same
	// whichever server computes them, so they are not filtered.
	Filter func(p netip.Prefix, k lease.Kind) bool
	// Admit, when set, is asked about every valid client message before
	// any other work: msgType as RFC 8415 names it, toUs when it carries
	// this server's Server ID. A false answer drops the message (failover:
	// a partner not fully responsive answers only what its state allows).
	Admit func(msgType string, toUs bool) bool
	// OnCommit, when set, is called with every lease change once it is
	// durable (failover replicates it).
	OnCommit func(ls []lease.Lease)
	// CapLifetime, when set, may shorten a lease's valid lifetime before it
	// is granted (failover's MCLT rule). It returns the valid lifetime to
	// grant.
	CapLifetime func(l *lease.Lease) time.Duration
}

// Server is the protocol engine. It is safe for concurrent use: Handle may
// be called from many goroutines.
type Server struct {
	opts     Options
	st       atomic.Pointer[state]
	runner   atomic.Pointer[runnerBox]
	claims   *claims
	stats    *Stats
	clients  keyLocks
	hostname string
	// serverIDOption is the Server ID option of every answer.
	serverIDOption dhcpv6.Option
	// verifyEncoding (tests) checks every answer's encoding against
	// Message.ToBytes; a mismatch panics.
	verifyEncoding bool
	// pctxs recycles packet contexts (see pctx).
	pctxs sync.Pool
}

type runnerBox struct{ r hooks.Runner }

// New builds a Server for cfg.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("core: no lease store")
	}
	if len(opts.ServerDUID) == 0 {
		return nil, fmt.Errorf("core: no server DUID")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, stats: newStats(),
		serverIDOption: &dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionServerID, OptionData: opts.ServerDUID}}
	s.hostname, _ = os.Hostname()
	s.claims = newClaims(opts.Store, opts.Now, maxClaims)
	if err := s.Reload(cfg); err != nil {
		return nil, err
	}
	s.runner.Store(&runnerBox{})
	return s, nil
}

// Reload swaps in a new configuration; leases are untouched.
func (s *Server) Reload(cfg *config.Config) error {
	st, err := compile(cfg)
	if err != nil {
		return fmt.Errorf("compiling config: %w", err)
	}
	s.st.Store(st)
	return nil
}

// Config returns the configuration being served.
func (s *Server) Config() *config.Config { return s.st.Load().cfg }

// SetRunner swaps the extension runner (nil runs nothing).
func (s *Server) SetRunner(r hooks.Runner) { s.runner.Store(&runnerBox{r: r}) }

// Runner returns the current extension runner, nil if none.
func (s *Server) Runner() hooks.Runner { return s.runner.Load().r }

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return s.stats }

// Store returns the lease store.
func (s *Server) Store() lease.Store { return s.opts.Store }

// ServerDUID returns the server's DUID.
func (s *Server) ServerDUID() []byte { return s.opts.ServerDUID }

// Reclaim runs until ctx ends, removing leases whose lifetime has passed
// (and declined addresses whose quarantine has ended) every interval.
func (s *Server) Reclaim(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.reclaimOnce(ctx)
		}
	}
}

type expirer interface {
	Expired(now time.Time) []lease.Lease
}

func (s *Server) reclaimOnce(ctx context.Context) {
	s.claims.sweep()
	ex, ok := s.opts.Store.(expirer)
	if !ok {
		return
	}
	gone := ex.Expired(s.opts.Now())
	if len(gone) == 0 {
		return
	}
	ps := make([]netip.Prefix, len(gone))
	for i, l := range gone {
		ps[i] = l.Prefix
	}
	if err := s.opts.Store.Delete(ctx, ps...); err != nil {
		s.opts.Logger.Error("reclaiming expired leases", "err", err)
		return
	}
	s.stats.reclaimed.Add(uint64(len(gone)))
	if s.opts.OnCommit != nil {
		for i := range gone {
			gone[i].State = lease.Expired
		}
		s.opts.OnCommit(gone)
	}
	if r := s.Runner(); r != nil && r.Has(hooks.LeaseStateChange) {
		for _, l := range gone {
			c := &hooks.Context{Point: hooks.LeaseStateChange, Request: &hooks.Request{}, Env: hooks.NewEnv(),
				Log: s.opts.Logger, Ctx: ctx, Event: leaseEvent(&l, l.State.String(), "expired")}
			c.Env.AtPoint(hooks.LeaseStateChange)
			_ = r.Run(c)
		}
	}
}

// DeleteWithin removes every lease inside p (::/0 for all) and reports how
// many were removed.
func (s *Server) DeleteWithin(ctx context.Context, p netip.Prefix) (int, error) {
	var ps []netip.Prefix
	s.opts.Store.Range(func(l lease.Lease) bool {
		if p.Bits() <= l.Prefix.Bits() && p.Contains(l.Prefix.Addr()) {
			ps = append(ps, l.Prefix)
		}
		return true
	})
	const chunk = 10000
	for i := 0; i < len(ps); i += chunk {
		j := min(i+chunk, len(ps))
		if err := s.opts.Store.Delete(ctx, ps[i:j]...); err != nil {
			return i, fmt.Errorf("deleting leases: %w", err)
		}
	}
	s.claims.release(ps...)
	return len(ps), nil
}

func leaseEvent(l *lease.Lease, from, to string) *hooks.LeaseEvent {
	t := hooks.IANA
	if l.Kind == lease.PD {
		t = hooks.IAPD
	}
	return &hooks.LeaseEvent{Prefix: l.Prefix, Type: t, IAID: l.IAID, DUID: l.DUID, From: from, To: to,
		Valid: l.Valid, Preferred: l.Preferred}
}
