package core

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/lease"
	"github.com/hook6/hook6/hooks"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// iaReq is one IA_NA or IA_PD of the client's message.
type iaReq struct {
	kind    lease.Kind
	iaid    uint32
	hints   []netip.Prefix
	binding lease.Binding
}

func (ia *iaReq) view() hooks.IA {
	t := hooks.IANA
	if ia.kind == lease.PD {
		t = hooks.IAPD
	}
	// A copy: ia.hints is the pooled packet context's.
	return hooks.IA{Type: t, IAID: ia.iaid, Hints: slices.Clone(ia.hints)}
}

// grant is one address or prefix in an answer.
type grant struct {
	prefix           netip.Prefix
	preferred, valid time.Duration
}

// iaResp is one IA of the answer.
type iaResp struct {
	kind   lease.Kind
	iaid   uint32
	grants []grant
	status iana.StatusCode
	msg    string
	hasSt  bool
}

func (r *iaResp) fail(code iana.StatusCode, msg string) {
	r.status, r.msg, r.hasSt = code, msg, true
}

// ias parses the IA_NA and IA_PD options of the message, in order, into
// the packet context's scratch (valid until the next call).
func (pc *pctx) ias() []iaReq {
	out := pc.iaBuf[:0]
	for _, o := range pc.msg.Options.Options {
		switch ia := o.(type) {
		case *dhcpv6.OptIANA:
			var r *iaReq
			out, r = nextIA(out)
			r.kind, r.iaid = lease.NA, iaidOf(ia.IaId)
			for _, a := range ia.Options.Options {
				if a, ok := a.(*dhcpv6.OptIAAddress); ok {
					if ad, ok := netip.AddrFromSlice(a.IPv6Addr); ok {
						r.hints = append(r.hints, netip.PrefixFrom(ad.Unmap(), 128))
					}
				}
			}
			r.binding = lease.Binding{DUID: pc.duidKey, IAID: r.iaid, Kind: lease.NA}
		case *dhcpv6.OptIAPD:
			var r *iaReq
			out, r = nextIA(out)
			r.kind, r.iaid = lease.PD, iaidOf(ia.IaId)
			for _, p := range ia.Options.Options {
				p, ok := p.(*dhcpv6.OptIAPrefix)
				if !ok || p.Prefix == nil {
					continue
				}
				ad, ok := netip.AddrFromSlice(p.Prefix.IP)
				ones, _ := p.Prefix.Mask.Size()
				if ok {
					r.hints = append(r.hints, netip.PrefixFrom(ad.Unmap(), ones))
				}
			}
			r.binding = lease.Binding{DUID: pc.duidKey, IAID: r.iaid, Kind: lease.PD}
		}
	}
	pc.iaBuf = out
	return out
}

// nextIA extends out by one cleared iaReq, keeping the room its hints had.
func nextIA(out []iaReq) ([]iaReq, *iaReq) {
	if len(out) < cap(out) {
		out = out[:len(out)+1]
	} else {
		out = append(out, iaReq{})
	}
	r := &out[len(out)-1]
	*r = iaReq{hints: r.hints[:0]}
	return out, r
}

// newResp adds a response for an IA to pc.resps and returns it; the pointer
// is valid until the next call.
func (pc *pctx) newResp(kind lease.Kind, iaid uint32) *iaResp {
	if len(pc.resps) < cap(pc.resps) {
		pc.resps = pc.resps[:len(pc.resps)+1]
	} else {
		pc.resps = append(pc.resps, iaResp{})
	}
	r := &pc.resps[len(pc.resps)-1]
	*r = iaResp{kind: kind, iaid: iaid, grants: r.grants[:0]}
	return r
}

// current returns the binding's leases that are leased, unexpired and on
// the client's link.
func (pc *pctx) current(ia *iaReq) (on []lease.Lease, off []lease.Lease) {
	for _, l := range pc.s.opts.Store.ByBinding(ia.binding) {
		if l.State != lease.Leased || !pc.now.Before(l.Expires) {
			continue
		}
		if pc.link.prefixOf(l.Kind, l.Prefix) != nil {
			on = append(on, l)
		} else {
			off = append(off, l)
		}
	}
	return on, off
}

// solicit answers with an Advertise, or a Reply when the client asks for
// Rapid Commit and the policy allows it.
func (pc *pctx) solicit() *dhcpv6.Message {
	rapid := pc.msg.GetOneOption(dhcpv6.OptionRapidCommit) != nil && pc.linkPolicy().AllowRapidCommit
	if rapid {
		reply := pc.bind(dhcpv6.MessageTypeReply)
		if reply != nil {
			reply.Options.Add(rapidCommitOption)
		}
		return reply
	}
	ias := pc.ias()
	for i := range ias {
		ia := &ias[i]
		r := pc.newResp(ia.kind, ia.iaid)
		on, _ := pc.current(ia)
		if len(on) > 0 {
			for _, l := range on {
				pol := pc.policyOf(l.Kind, l.Prefix)
				r.grants = append(r.grants, pc.offerLifetimes(l.Prefix, pol))
			}
		} else if a := pc.offer(ia); a.lease.IsValid() {
			r.grants = append(r.grants, pc.offerLifetimes(a.lease, a.prefix.policy))
		} else {
			pc.noneAvailable(r)
		}
	}
	if pc.dropped {
		return nil
	}
	m := pc.answer(dhcpv6.MessageTypeAdvertise, pc.resps)
	if pref := pc.policyOptions(pc.linkPolicy()).preference; pref != nil {
		m.Options.Add(pref)
	}
	return m
}

// rapidCommitOption is the (empty) Rapid Commit option, shared by every
// answer: options are only read once added.
var rapidCommitOption = &dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit}

// offer allocates a lease for an Advertise.
func (pc *pctx) offer(ia *iaReq) allocResult {
	pc.offering = true
	defer func() { pc.offering = false }()
	return pc.allocate(ia, offerTTL)
}

// request creates (or regenerates) the client's bindings.
func (pc *pctx) request() *dhcpv6.Message {
	return pc.bind(dhcpv6.MessageTypeReply)
}

// bind commits a binding for every IA of a Request (or a Rapid Commit
// Solicit): the binding's current leases, else the offered ones, else new.
func (pc *pctx) bind(t dhcpv6.MessageType) *dhcpv6.Message {
	ias := pc.ias()
	for i := range ias {
		ia := &ias[i]
		r := pc.newResp(ia.kind, ia.iaid)
		if ia.kind == lease.NA && pc.hintsOffLink(ia) {
			r.fail(iana.StatusNotOnLink, "address not on this link")
			continue
		}
		on, _ := pc.current(ia)
		if on = pc.stillAcceptable(r, ia, on); len(on) > 0 {
			pc.extend(r, on)
			continue
		}
		p, cand := pc.offered(ia)
		if !cand.IsValid() {
			a := pc.allocate(ia, offerTTL)
			p, cand = a.prefix, a.lease
		}
		if !cand.IsValid() {
			pc.noneAvailable(r)
			continue
		}
		pc.grantNew(r, ia, p, cand)
	}
	if pc.dropped {
		return nil
	}
	return pc.answer(t, pc.resps)
}

// offered returns the lease promised to ia by an earlier Advertise.
func (pc *pctx) offered(ia *iaReq) (*prefix, netip.Prefix) {
	pc.held = pc.s.claims.heldBy(ia.binding, pc.held[:0])
	for _, c := range pc.held {
		if p := pc.link.prefixOf(ia.kind, c); p != nil && p.pool.Contains(c.Addr()) && c.Bits() == p.length {
			if pc.s.claims.take(c, ia.binding, offerTTL, false) {
				pc.claimed = append(pc.claimed, c)
				return p, c
			}
		}
	}
	return nil, netip.Prefix{}
}

// hintsOffLink reports whether the client asked for an address that is not
// on its link (Request: NotOnLink).
func (pc *pctx) hintsOffLink(ia *iaReq) bool {
	for _, h := range ia.hints {
		if !h.Addr().IsUnspecified() && !pc.link.onLink(h.Addr()) {
			return true
		}
	}
	return false
}

// grantNew records a new lease for ia.
func (pc *pctx) grantNew(r *iaResp, ia *iaReq, p *prefix, cand netip.Prefix) {
	pref, valid := lifetimes(p.policy)
	l := pc.change(lease.Lease{Prefix: cand, Kind: ia.kind, DUID: pc.duid, IAID: ia.iaid, Link: pc.link.name,
		PrefixName: p.name, State: lease.Leased, Preferred: pref, Valid: valid, Start: pc.now, Updated: pc.now})
	pc.setLifetimes(l)
	pc.event(l, "offered", "leased")
	r.grants = append(r.grants, grant{prefix: cand, preferred: l.Preferred, valid: l.Valid})
}

// change adds l to the packet's lease changes and returns it there (valid
// until the next change).
func (pc *pctx) change(l lease.Lease) *lease.Lease {
	if pc.changes == nil {
		pc.changes = make([]lease.Lease, 0, max(len(pc.iaBuf), 1))
	}
	pc.changes = append(pc.changes, l)
	return &pc.changes[len(pc.changes)-1]
}

// event records a lease-state-change for extensions, when any run there.
func (pc *pctx) event(l *lease.Lease, from, to string) {
	if pc.has(hooks.LeaseStateChange) {
		pc.events = append(pc.events, leaseEvent(l, from, to))
	}
}

// extend renews the binding's leases with the policy's lifetimes, trimming
// those beyond max-leases-per-binding (sent with lifetime 0).
func (pc *pctx) extend(r *iaResp, ls []lease.Lease) {
	for i, l := range ls {
		p := pc.link.prefixOf(l.Kind, l.Prefix)
		pol := p.policy
		if max := pol.MaxLeasesPerBinding; max > 0 && i >= max {
			pc.revoke(r, l)
			continue
		}
		l.Preferred, l.Valid = lifetimes(pol)
		l.Start, l.Updated, l.Link, l.PrefixName = pc.now, pc.now, pc.link.name, p.name
		c := pc.change(l)
		pc.setLifetimes(c)
		pc.event(c, "leased", "leased")
		r.grants = append(r.grants, grant{prefix: c.Prefix, preferred: c.Preferred, valid: c.Valid})
	}
}

// stillAcceptable runs check-lease-acceptable on the binding's current
// leases and revokes (lifetime 0) those an extension refuses, e.g. after
// the directory changed the client's prefix; it returns the leases kept.
func (pc *pctx) stillAcceptable(r *iaResp, ia *iaReq, ls []lease.Lease) []lease.Lease {
	if len(ls) == 0 || !pc.has(hooks.CheckLeaseAcceptable) {
		return ls
	}
	kept := ls[:0:0]
	for _, l := range ls {
		p := pc.link.prefixOf(l.Kind, l.Prefix)
		if pc.acceptable(p, ia, l.Prefix) {
			kept = append(kept, l)
		} else if !pc.dropped {
			pc.revoke(r, l)
		}
	}
	return kept
}

// revoke tells the client to stop using l (lifetimes 0) and frees it.
func (pc *pctx) revoke(r *iaResp, l lease.Lease) {
	r.grants = append(r.grants, grant{prefix: l.Prefix})
	l.State, l.Updated, l.Expires = lease.Released, pc.now, pc.now
	pc.event(pc.change(l), "leased", "released")
}

// setLifetimes applies the failover cap and computes Expires.
func (pc *pctx) setLifetimes(l *lease.Lease) {
	if f := pc.s.opts.CapLifetime; f != nil {
		if v := f(l); v < l.Valid {
			l.Valid = v
			l.Preferred = min(l.Preferred, v)
		}
	}
	l.Expires = l.Start.Add(l.Valid)
}

// renew extends the client's bindings (Renew, or Rebind when rebind).
func (pc *pctx) renew(rebind bool) *dhcpv6.Message {
	said := false
	ias := pc.ias()
	for i := range ias {
		ia := &ias[i]
		r := pc.newResp(ia.kind, ia.iaid)
		on, off := pc.current(ia)
		for _, h := range ia.hints {
			if h.Addr().IsUnspecified() || holds(on, h) || holds(off, h) {
				continue
			}
			if pc.link.prefixOf(ia.kind, h) == nil {
				r.grants = append(r.grants, grant{prefix: h}) // not for this link: lifetimes 0
				said = true
			}
		}
		for _, l := range off {
			pc.revoke(r, l)
			said = true
		}
		if len(on) > 0 {
			said = true
		}
		if on = pc.stillAcceptable(r, ia, on); len(on) > 0 {
			pc.extend(r, on)
			said = true
			continue
		}
		if a := pc.allocate(ia, offerTTL); a.lease.IsValid() {
			pc.grantNew(r, ia, a.prefix, a.lease)
			said = true
			continue
		}
		if len(r.grants) == 0 {
			r.fail(iana.StatusNoBinding, "no binding for this IA")
		}
	}
	if pc.dropped || (rebind && !said) {
		return nil
	}
	return pc.answer(dhcpv6.MessageTypeReply, pc.resps)
}

// holds reports whether one of ls is the lease p.
func holds(ls []lease.Lease, p netip.Prefix) bool {
	for i := range ls {
		if ls[i].Prefix == p {
			return true
		}
	}
	return false
}

// release frees (or, for Decline, quarantines) the client's leases named in
// its IAs.
func (pc *pctx) release(decline bool) *dhcpv6.Message {
	ias := pc.ias()
	for i := range ias {
		ia := &ias[i]
		found := false
		for _, h := range ia.hints {
			l, ok := pc.s.opts.Store.Get(h)
			if !ok || !l.SameBinding(pc.duid, ia.iaid, ia.kind) || l.State != lease.Leased {
				continue
			}
			found = true
			from := l.State.String()
			l.Updated = pc.now
			if decline {
				l.State, l.Start, l.Expires = lease.Declined, pc.now, pc.now.Add(l.Valid)
			} else {
				l.State, l.Expires = lease.Released, pc.now
			}
			pc.event(pc.change(l), from, l.State.String())
		}
		if !found {
			pc.newResp(ia.kind, ia.iaid).fail(iana.StatusNoBinding, "no binding for this IA")
		}
	}
	m := pc.reply(dhcpv6.MessageTypeReply)
	pc.addIAs(m, pc.resps, 0, 0)
	msg := "released"
	if decline {
		msg = "declined"
	}
	m.Options.Add(pc.arena.status(iana.StatusSuccess, msg))
	return m
}

// confirm tells whether the client's addresses are on its link; silence
// when nothing can be judged.
func (pc *pctx) confirm() *dhcpv6.Message {
	any, all := false, true
	ias := pc.ias()
	for i := range ias {
		ia := &ias[i]
		if ia.kind != lease.NA {
			continue
		}
		for _, h := range ia.hints {
			any = true
			if !pc.link.onLink(h.Addr()) || pc.link.prefixOf(lease.NA, h) == nil {
				all = false
			}
		}
	}
	if !any {
		return nil
	}
	m := pc.reply(dhcpv6.MessageTypeReply)
	if all {
		m.Options.Add(pc.arena.status(iana.StatusSuccess, "all addresses on link"))
	} else {
		m.Options.Add(pc.arena.status(iana.StatusNotOnLink, "not on link"))
	}
	return m
}

// infoRequest answers with the configured options only.
func (pc *pctx) infoRequest() *dhcpv6.Message {
	m := pc.reply(dhcpv6.MessageTypeReply)
	if irt := pc.policyOptions(pc.linkPolicy()).infoRefresh; irt != nil {
		m.Options.Add(irt)
	}
	return m
}

// noneAvailable marks r NoAddrsAvail or NoPrefixAvail.
func (pc *pctx) noneAvailable(r *iaResp) {
	if r.kind == lease.PD {
		r.fail(iana.StatusNoPrefixAvail, "no prefixes available")
	} else {
		r.fail(iana.StatusNoAddrsAvail, "no addresses available")
	}
}

// offerLifetimes are the lifetimes of an Advertise for p.
func (pc *pctx) offerLifetimes(p netip.Prefix, pol *config.Policy) grant {
	pref, valid := lifetimes(pol)
	if pc.s.opts.CapLifetime != nil {
		// The lease is only built for the cap (it leaves to it, so it
		// is allocated): without one the lifetimes are the policy's.
		l := &lease.Lease{Prefix: p, Preferred: pref, Valid: valid, Start: pc.now}
		pc.setLifetimes(l)
		pref, valid = l.Preferred, l.Valid
	}
	return grant{prefix: p, preferred: pref, valid: valid}
}

// policyOf returns the policy of the prefix holding p on the link.
func (pc *pctx) policyOf(k lease.Kind, p netip.Prefix) *config.Policy {
	if cp := pc.link.prefixOf(k, p); cp != nil {
		return cp.policy
	}
	return pc.linkPolicy()
}

// linkPolicy is the policy for message-level options: the link's, else its
// first prefix's, else "default".
// (compiled: link.msgPolicy, state.defaultPolicy).
func (pc *pctx) linkPolicy() *config.Policy {
	if l := pc.link; l != nil {
		return l.msgPolicy
	}
	return pc.st.defaultPolicy
}

// policyOptions returns pol's options as encoded once when the config was
// compiled.
func (pc *pctx) policyOptions(pol *config.Policy) *policyOptions {
	if po := pc.st.policyOpts[pol]; po != nil {
		return po
	}
	return compilePolicyOptions(pol)
}

// reply starts an answer with the transaction-id, Server ID, the client's
// Client ID and the policy's options.
func (pc *pctx) reply(t dhcpv6.MessageType) *dhcpv6.Message {
	m := pc.arena.message(t, pc.msg.TransactionID)
	m.Options.Add(pc.s.serverIDOption)
	if pc.duid != nil {
		m.Options.Add(pc.arena.generic(dhcpv6.OptionClientID, pc.duid))
	}
	m.Options.Options = append(m.Options.Options, pc.policyOptions(pc.linkPolicy()).reply...)
	return m
}

// answer builds an Advertise or Reply holding resps with T1/T2 computed
// once for every IA.
func (pc *pctx) answer(t dhcpv6.MessageType, resps []iaResp) *dhcpv6.Message {
	m := pc.reply(t)
	t1, t2 := pc.timers(resps)
	pc.addIAs(m, resps, t1, t2)
	return m
}

// timers computes T1 and T2: the policy's, else 0.5 and 0.8 of the shortest
// preferred lifetime granted; infinity stays infinity; never T1 > T2.
func (pc *pctx) timers(resps []iaResp) (time.Duration, time.Duration) {
	shortest := time.Duration(-1)
	for i := range resps {
		r := &resps[i]
		for _, g := range r.grants {
			if g.valid > 0 && (shortest < 0 || g.preferred < shortest) {
				shortest = g.preferred
			}
		}
	}
	if shortest <= 0 {
		return 0, 0
	}
	if shortest >= infinity {
		return infinity, infinity
	}
	pol := pc.linkPolicy()
	t1, t2 := shortest/2, shortest*4/5
	if pol.T1 != nil {
		t1 = min(time.Duration(*pol.T1), shortest)
	}
	if pol.T2 != nil {
		t2 = min(time.Duration(*pol.T2), shortest)
	}
	t1, t2 = t1.Truncate(time.Second), t2.Truncate(time.Second)
	if t1 > t2 {
		t1 = t2
	}
	return t1, t2
}

func (pc *pctx) addIAs(m *dhcpv6.Message, resps []iaResp, t1, t2 time.Duration) {
	a := &pc.arena
	for i := range resps {
		r := &resps[i]
		var id [4]byte
		binary.BigEndian.PutUint32(id[:], r.iaid)
		n := len(r.grants)
		if r.hasSt {
			n++
		}
		if r.kind == lease.PD {
			o := a.iapdOpt()
			o.IaId, o.T1, o.T2 = id, t1, t2
			o.Options.Options = a.options(n)
			for _, g := range r.grants {
				p, ipn := a.iaPrefix(), a.ipNet()
				ipn.IP, ipn.Mask = a.ip(g.prefix.Addr()), a.mask(g.prefix.Bits())
				p.PreferredLifetime, p.ValidLifetime, p.Prefix = g.preferred, g.valid, ipn
				o.Options.Add(p)
			}
			if r.hasSt {
				o.Options.Add(a.status(r.status, r.msg))
			}
			m.Options.Add(o)
			continue
		}
		o := a.ianaOpt()
		o.IaId, o.T1, o.T2 = id, t1, t2
		o.Options.Options = a.options(n)
		for _, g := range r.grants {
			ad := a.iaAddress()
			ad.IPv6Addr, ad.PreferredLifetime, ad.ValidLifetime = a.ip(g.prefix.Addr()), g.preferred, g.valid
			o.Options.Add(ad)
		}
		if r.hasSt {
			o.Options.Add(a.status(r.status, r.msg))
		}
		m.Options.Add(o)
	}
}
