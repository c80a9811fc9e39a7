package failover

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// counters are the endpoint's statistics.
type counters struct {
	sent              atomic.Uint64 // bindings sent in BNDUPDs
	received          atomic.Uint64 // bindings received in BNDUPDs
	acked             atomic.Uint64 // our bindings the partner acknowledged
	rejectedByPartner atomic.Uint64 // our bindings the partner rejected
	rejected          atomic.Uint64 // the partner's bindings we rejected
	conflicts         atomic.Uint64 // AddressInUse conflicts
	dropped           atomic.Uint64 // client messages not answered because of the state
	refused           atomic.Uint64 // connections from unknown peers refused
}

// Filter reports whether this server may give p as a new lease now: the
// state allows allocation; for an address, its last bit is this server's
// (primary odd, secondary even, §4.2.1.1); for a delegated prefix, its
// block is this server's (§4.2.2) — reserved addresses and prefixes are
// given by either server; and if p was leased before, the partner has
// acknowledged that it is free (or, in PARTNER-DOWN, the MCLT has passed,
// §8.4.1). The engine calls it for every candidate.
func (e *Endpoint) Filter(p netip.Prefix, k lease.Kind) bool {
	st := e.State()
	if !mayAllocate(st, e.cfg.Role) {
		return false
	}
	now := e.now()
	switch {
	case e.layout.Load().Reserved[p]:
		// A reservation names its client: no split needed.
	case k == lease.NA:
		odd := p.Addr().As16()[15]&1 == 1
		if odd != (e.cfg.Role == Primary) {
			return false
		}
	case !e.mayDelegate(p, st, now):
		return false
	}
	return e.free(p, st, now)
}

// mayDelegate reports whether p lies in a block this server may delegate
// from.
func (e *Endpoint) mayDelegate(p netip.Prefix, st State, now time.Time) bool {
	block, pool, ok := blockOf(e.layout.Load(), p)
	if !ok {
		return pool == nil
	}
	if e.pools.ownsFree(block) {
		return true
	}
	if st != PartnerDown || now.Before(timeOfNanos(e.pdt.Load()).Add(e.MCLT())) {
		return false
	}
	// PARTNER-DOWN for an MCLT: the partner's blocks, once ours are full.
	return e.pools.ownFull(e.store, pool, now)
}

// free reports whether the partner knows p is not held by anyone.
func (e *Endpoint) free(p netip.Prefix, st State, now time.Time) bool {
	rec, acked := e.rep.acks.get(keyOf(p))
	l, ok := e.store.Get(p)
	switch {
	case ok && l.Active(now):
		return true // held: the engine's own check decides
	case ok && acked && l.State != lease.Leased && rec.updated == nanos(l.Updated) && rec.state == l.State:
		return true // released or out of quarantine, and the partner knows
	case !ok && !acked:
		return true // never leased, or its end acknowledged
	}
	if st != PartnerDown {
		return false
	}
	end := timeOfNanos(rec.end)
	if ok && l.Expires.After(end) {
		end = l.Expires
	}
	if pd := timeOfNanos(e.pdt.Load()); pd.After(end) {
		end = pd
	}
	return now.After(end.Add(e.MCLT()))
}

// CapLifetime is the MCLT rule (§4.4): the valid lifetime granted may end
// no later than the MCLT after the later of now and what the partner has
// acknowledged for the lease. PARTNER-DOWN is not bound by it.
func (e *Endpoint) CapLifetime(l *lease.Lease) time.Duration {
	if !mcltBound(e.State()) {
		return l.Valid
	}
	now := e.now()
	known := now
	if rec, ok := e.rep.acks.get(keyOf(l.Prefix)); ok {
		if end := timeOfNanos(rec.end); end.After(known) {
			known = end
		}
	}
	start := l.Start
	if start.IsZero() {
		start = now
	}
	limit := known.Add(e.MCLT()).Sub(start).Truncate(time.Second)
	if limit < l.Valid {
		return max(limit, 0)
	}
	return l.Valid
}

// partnerLifetime is the time sent to the partner after which it may
// consider l expired: the T1 fraction (½) of the lifetime granted plus the
// desired lifetime, as in §4.4.1, so the next renewal can get the full
// desired lifetime.
func (e *Endpoint) partnerLifetime(l *lease.Lease, now time.Time) time.Time {
	desired := e.layout.Load().desired(l.PrefixName)
	if desired < l.Valid {
		desired = l.Valid
	}
	limit := now.Add(60 * 365 * 24 * time.Hour)
	if secs(desired) == infinite || secs(l.Valid) == infinite {
		return limit
	}
	t := l.Start.Add(l.Valid / 2).Add(desired)
	if t.Before(l.Expires) {
		t = l.Expires
	}
	if t.After(limit) {
		t = limit
	}
	return t
}

// OnCommit queues every durable lease change for the partner (lazy update,
// §4.3). It never blocks: when the bounded queue is full, the change is
// found again by a rescan of the store once the queue drains.
func (e *Endpoint) OnCommit(ls []lease.Lease) {
	now := e.now()
	for i := range ls {
		l := ls[i]
		if !e.rep.acks.pending(&l) {
			continue
		}
		if l.State == lease.Expired {
			e.rep.keepTomb(l, false) // removed from the store: keep it until acknowledged
		}
		e.rep.push(l, now)
	}
}

// Reset tells the partner that an operator removed these leases from the
// store (hook6ctl lease delete): each is sent as a BNDUPD with the
// binding-status RESET, "made available by an operator command" (§5.5.1),
// through the same queue, journal and UPDREQ answers as every other
// update, so a partner that cannot be reached now gets it when it is
// back. Figure 4 has the partner accept a RESET over an ACTIVE binding
// whose last client transaction is older (it then removes the lease);
// until the partner has acknowledged it, this server does not give the
// address or prefix to another client (§4.2.1, transition 4 of Figure 2).
//
// Call it after the leases are gone from the store, with their last
// versions; it returns once the removals are in the journal, so they
// survive a restart.
func (e *Endpoint) Reset(ls []lease.Lease) error {
	if len(ls) == 0 {
		return nil
	}
	now := e.now()
	for i := range ls {
		l := ls[i]
		if _, held := e.store.Get(l.Prefix); held {
			continue // leased again meanwhile: that version is what the partner needs
		}
		l.State, l.Expires = lease.Expired, now
		if l.Updated.After(now) {
			l.Updated = now
		}
		// Kept even when the partner is not known to hold it: a version in
		// flight is acknowledged later, and its acknowledgement sends this.
		e.rep.keepTomb(l, true)
		e.rep.push(l, now)
	}
	e.log.Info("failover: leases deleted by the operator are sent to the partner as RESET", "leases", len(ls))
	if err := e.jrnl.sync(); err != nil {
		return fmt.Errorf("failover: recording the deletions for the partner: %w", err)
	}
	return nil
}

// Admit reports whether a client message of type msgType (the RFC 8415
// name, e.g. "RENEW") is answered in the current state. toUs is true when
// it carries this server's DUID as Server Identifier. A renew-responsive
// server (the secondary in NORMAL, RECOVER-DONE) answers only those.
func (e *Endpoint) Admit(msgType string, toUs bool) bool {
	ok := false
	switch responsiveness(e.State(), e.cfg.Role) {
	case Responsive:
		ok = true
	case RenewResponsive:
		switch strings.ToUpper(msgType) {
		case "REQUEST", "RENEW", "RELEASE", "DECLINE", "INFORMATION-REQUEST":
			ok = toUs
		}
	}
	if !ok {
		e.stats.dropped.Add(1)
	}
	return ok
}

// Restricting reports whether the state makes the server less than fully
// responsive (so Admit must be asked).
func (e *Endpoint) Restricting() bool {
	return responsiveness(e.State(), e.cfg.Role) != Responsive
}

// Status is the endpoint's state as hook6ctl failover status shows it.
type Status struct {
	Name            string       `json:"name"`
	Role            string       `json:"role"`
	State           string       `json:"state"`
	Since           time.Time    `json:"since"`
	TimeInState     int64        `json:"time-in-state"` // seconds
	Previous        string       `json:"previous-state,omitempty"`
	PartnerState    string       `json:"partner-state,omitempty"`
	PartnerSince    *time.Time   `json:"partner-since,omitempty"`
	Communications  string       `json:"communications"` // ok | interrupted
	Peer            string       `json:"peer"`
	Local           string       `json:"local"`
	TLS             bool         `json:"tls"`
	MCLT            string       `json:"mclt"`
	PartnerDownTime *time.Time   `json:"partner-down-time,omitempty"`
	LastContact     *time.Time   `json:"last-contact,omitempty"`
	Responsiveness  string       `json:"responsiveness"`
	Pending         int          `json:"pending"`
	Unacked         int          `json:"unacked"`
	History         []Transition `json:"history,omitempty"` // latest transitions, oldest first
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Status returns the endpoint's state.
func (e *Endpoint) Status() Status {
	now := e.now()
	e.mu.Lock()
	p, commOK := e.p, e.commOK
	hist := append([]Transition(nil), e.history...)
	e.mu.Unlock()
	s := Status{Name: e.cfg.Name, Role: e.cfg.Role.String(), State: p.State.String(), Since: p.Since,
		TimeInState: int64(now.Sub(p.Since) / time.Second), Peer: e.cfg.Peer, Local: e.cfg.Local,
		TLS: e.cfg.TLS != nil, MCLT: e.MCLT().String(), LastContact: timePtr(timeOfNanos(e.lastContact.Load())),
		Communications: "interrupted", Pending: e.rep.pendingCount(), Unacked: e.rep.unacked(), History: hist}
	if p.Previous != 0 {
		s.Previous = p.Previous.String()
	}
	if p.PartnerState != 0 {
		s.PartnerState, s.PartnerSince = p.PartnerState.String(), timePtr(p.PartnerSince)
	}
	if commOK {
		s.Communications = "ok"
	}
	if p.State == PartnerDown {
		s.PartnerDownTime = timePtr(p.PartnerDownTime)
	}
	s.Responsiveness = [...]string{"unresponsive", "renew-responsive", "responsive"}[responsiveness(p.State, e.cfg.Role)]
	return s
}

// Stats returns the counters hook6ctl stats failover shows.
func (e *Endpoint) Stats() map[string]any {
	st := e.Status()
	return map[string]any{
		"state":                  st.State,
		"partner-state":          st.PartnerState,
		"time-in-state":          st.TimeInState,
		"communications":         st.Communications,
		"v6-binding-sent":        e.stats.sent.Load(),
		"v6-binding-received":    e.stats.received.Load(),
		"acked":                  e.stats.acked.Load(),
		"pending":                st.Pending,
		"unacked":                st.Unacked,
		"rejected-by-partner":    e.stats.rejectedByPartner.Load(),
		"rejected":               e.stats.rejected.Load(),
		"conflicts":              e.stats.conflicts.Load(),
		"dhcp-dropped-by-state":  e.stats.dropped.Load(),
		"refused-connections":    e.stats.refused.Load(),
		"replication-lag-p50-ms": float64(e.rep.lag.quantile(0.5)) / float64(time.Millisecond),
		"replication-lag-p99-ms": float64(e.rep.lag.quantile(0.99)) / float64(time.Millisecond),
	}
}
