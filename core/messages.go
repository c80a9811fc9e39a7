package core

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/lease"
	"github.com/hook6/hook6/hooks"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/insomniacslk/dhcp/rfc1035label"
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
	return hooks.IA{Type: t, IAID: ia.iaid, Hints: ia.hints}
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

// ias parses the IA_NA and IA_PD options of the message, in order.
func (pc *pctx) ias() []*iaReq {
	var out []*iaReq
	for _, o := range pc.msg.Options.Options {
		switch ia := o.(type) {
		case *dhcpv6.OptIANA:
			r := &iaReq{kind: lease.NA, iaid: iaidOf(ia.IaId)}
			for _, a := range ia.Options.Addresses() {
				if ad, ok := netip.AddrFromSlice(a.IPv6Addr); ok {
					r.hints = append(r.hints, netip.PrefixFrom(ad.Unmap(), 128))
				}
			}
			r.binding = lease.Binding{DUID: string(pc.duid), IAID: r.iaid, Kind: lease.NA}
			out = append(out, r)
		case *dhcpv6.OptIAPD:
			r := &iaReq{kind: lease.PD, iaid: iaidOf(ia.IaId)}
			for _, p := range ia.Options.Prefixes() {
				if p.Prefix == nil {
					continue
				}
				ad, ok := netip.AddrFromSlice(p.Prefix.IP)
				ones, _ := p.Prefix.Mask.Size()
				if ok {
					r.hints = append(r.hints, netip.PrefixFrom(ad.Unmap(), ones))
				}
			}
			r.binding = lease.Binding{DUID: string(pc.duid), IAID: r.iaid, Kind: lease.PD}
			out = append(out, r)
		}
	}
	return out
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
		reply.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
		return reply
	}
	var resps []*iaResp
	for _, ia := range pc.ias() {
		r := &iaResp{kind: ia.kind, iaid: ia.iaid}
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
		resps = append(resps, r)
	}
	if pc.dropped {
		return nil
	}
	m := pc.answer(dhcpv6.MessageTypeAdvertise, resps)
	if pref := pc.linkPolicy().Options.Preference; pref != nil {
		m.Options.Add(dhcpv6.OptPreference(uint8(*pref)))
	}
	return m
}

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
	var resps []*iaResp
	for _, ia := range pc.ias() {
		r := &iaResp{kind: ia.kind, iaid: ia.iaid}
		resps = append(resps, r)
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
	return pc.answer(t, resps)
}

// offered returns the lease promised to ia by an earlier Advertise.
func (pc *pctx) offered(ia *iaReq) (*prefix, netip.Prefix) {
	for _, c := range pc.s.claims.heldBy(ia.binding) {
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
	l := lease.Lease{Prefix: cand, Kind: ia.kind, DUID: pc.duid, IAID: ia.iaid, Link: pc.link.name,
		PrefixName: p.name, State: lease.Leased, Preferred: pref, Valid: valid, Start: pc.now, Updated: pc.now}
	pc.setLifetimes(&l)
	pc.changes = append(pc.changes, l)
	pc.events = append(pc.events, leaseEvent(&l, "offered", "leased"))
	r.grants = append(r.grants, grant{prefix: cand, preferred: l.Preferred, valid: l.Valid})
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
		pc.setLifetimes(&l)
		pc.changes = append(pc.changes, l)
		pc.events = append(pc.events, leaseEvent(&l, "leased", "leased"))
		r.grants = append(r.grants, grant{prefix: l.Prefix, preferred: l.Preferred, valid: l.Valid})
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
	pc.changes = append(pc.changes, l)
	pc.events = append(pc.events, leaseEvent(&l, "leased", "released"))
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
	var resps []*iaResp
	said := false
	for _, ia := range pc.ias() {
		r := &iaResp{kind: ia.kind, iaid: ia.iaid}
		resps = append(resps, r)
		on, off := pc.current(ia)
		ours := map[netip.Prefix]bool{}
		for _, l := range append(on, off...) {
			ours[l.Prefix] = true
		}
		for _, h := range ia.hints {
			if h.Addr().IsUnspecified() || ours[h] {
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
	return pc.answer(dhcpv6.MessageTypeReply, resps)
}

// release frees (or, for Decline, quarantines) the client's leases named in
// its IAs.
func (pc *pctx) release(decline bool) *dhcpv6.Message {
	var resps []*iaResp
	for _, ia := range pc.ias() {
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
			pc.changes = append(pc.changes, l)
			pc.events = append(pc.events, leaseEvent(&l, from, l.State.String()))
		}
		if !found {
			r := &iaResp{kind: ia.kind, iaid: ia.iaid}
			r.fail(iana.StatusNoBinding, "no binding for this IA")
			resps = append(resps, r)
		}
	}
	m := pc.reply(dhcpv6.MessageTypeReply)
	pc.addIAs(m, resps, 0, 0)
	msg := "released"
	if decline {
		msg = "declined"
	}
	m.Options.Add(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess, StatusMessage: msg})
	return m
}

// confirm tells whether the client's addresses are on its link; silence
// when nothing can be judged.
func (pc *pctx) confirm() *dhcpv6.Message {
	any, all := false, true
	for _, ia := range pc.ias() {
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
		m.Options.Add(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess, StatusMessage: "all addresses on link"})
	} else {
		m.Options.Add(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNotOnLink, StatusMessage: "not on link"})
	}
	return m
}

// infoRequest answers with the configured options only.
func (pc *pctx) infoRequest() *dhcpv6.Message {
	m := pc.reply(dhcpv6.MessageTypeReply)
	pol := pc.linkPolicy()
	if irt := pol.Options.InformationRefreshTime; irt != nil {
		m.Options.Add(dhcpv6.OptInformationRefreshTime(time.Duration(*irt)))
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
	l := lease.Lease{Prefix: p, Preferred: pref, Valid: valid, Start: pc.now}
	pc.setLifetimes(&l)
	return grant{prefix: p, preferred: l.Preferred, valid: l.Valid}
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
func (pc *pctx) linkPolicy() *config.Policy {
	if l := pc.link; l != nil {
		if l.policy != nil {
			return l.policy
		}
		for _, p := range append(l.na, l.pd...) {
			return p.policy
		}
	}
	if p := pc.st.cfg.Policy("default"); p != nil {
		return p
	}
	return &config.Policy{}
}

// reply starts an answer with the transaction-id, Server ID, the client's
// Client ID and the policy's options.
func (pc *pctx) reply(t dhcpv6.MessageType) *dhcpv6.Message {
	m := &dhcpv6.Message{MessageType: t, TransactionID: pc.msg.TransactionID}
	m.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionServerID, OptionData: pc.s.opts.ServerDUID})
	if pc.duid != nil {
		m.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionClientID, OptionData: pc.duid})
	}
	o := pc.linkPolicy().Options
	if len(o.DNSServers) > 0 {
		m.Options.Add(dhcpv6.OptDNS(ips(o.DNSServers)...))
	}
	if len(o.DomainSearch) > 0 {
		m.Options.Add(dhcpv6.OptDomainSearchList(&rfc1035label.Labels{Labels: o.DomainSearch}))
	}
	if len(o.SNTPServers) > 0 {
		m.Options.Add(dhcpv6.OptSNTP(ips(o.SNTPServers)...))
	}
	return m
}

// answer builds an Advertise or Reply holding resps with T1/T2 computed
// once for every IA.
func (pc *pctx) answer(t dhcpv6.MessageType, resps []*iaResp) *dhcpv6.Message {
	m := pc.reply(t)
	t1, t2 := pc.timers(resps)
	pc.addIAs(m, resps, t1, t2)
	return m
}

// timers computes T1 and T2: the policy's, else 0.5 and 0.8 of the shortest
// preferred lifetime granted; infinity stays infinity; never T1 > T2.
func (pc *pctx) timers(resps []*iaResp) (time.Duration, time.Duration) {
	shortest := time.Duration(-1)
	for _, r := range resps {
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

func (pc *pctx) addIAs(m *dhcpv6.Message, resps []*iaResp, t1, t2 time.Duration) {
	for _, r := range resps {
		var id [4]byte
		binary.BigEndian.PutUint32(id[:], r.iaid)
		if r.kind == lease.PD {
			o := &dhcpv6.OptIAPD{IaId: id, T1: t1, T2: t2}
			for _, g := range r.grants {
				o.Options.Add(&dhcpv6.OptIAPrefix{PreferredLifetime: g.preferred, ValidLifetime: g.valid,
					Prefix: &net.IPNet{IP: ipOf(g.prefix), Mask: net.CIDRMask(g.prefix.Bits(), 128)}})
			}
			if r.hasSt {
				o.Options.Add(&dhcpv6.OptStatusCode{StatusCode: r.status, StatusMessage: r.msg})
			}
			m.Options.Add(o)
			continue
		}
		o := &dhcpv6.OptIANA{IaId: id, T1: t1, T2: t2}
		for _, g := range r.grants {
			o.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: ipOf(g.prefix), PreferredLifetime: g.preferred, ValidLifetime: g.valid})
		}
		if r.hasSt {
			o.Options.Add(&dhcpv6.OptStatusCode{StatusCode: r.status, StatusMessage: r.msg})
		}
		m.Options.Add(o)
	}
}

func ips(as []netip.Addr) []net.IP {
	out := make([]net.IP, len(as))
	for i, a := range as {
		out[i] = net.IP(a.AsSlice())
	}
	return out
}
