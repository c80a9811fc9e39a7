package failover

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// Binding-status values (§5.5.1).
const (
	bsActive      uint8 = 1
	bsExpired     uint8 = 2
	bsReleased    uint8 = 3
	bsPendingFree uint8 = 4
	bsFree        uint8 = 5
	bsFreeBackup  uint8 = 6
	bsAbandoned   uint8 = 7
	bsReset       uint8 = 8
)

// timed reports whether a binding-status carries the §7.4 items marked
// with an asterisk (it has a timeout).
func timed(s uint8) bool { return s == bsActive || s == bsAbandoned }

// infinite is the lifetime the wire calls infinity.
const infinite = math.MaxUint32

// binding is one address or delegated prefix as a BNDUPD carries it.
type binding struct {
	Prefix           netip.Prefix
	Kind             lease.Kind
	DUID             []byte
	IAID             uint32
	Status           uint8
	Preferred, Valid time.Duration
	T1, T2           time.Duration
	StartOfState     time.Time
	StateExpires     time.Time // zero when absent
	CLT              time.Time // client-last-transaction-time, zero when absent
	PartnerLifetime  time.Time // zero when absent
	PartnerRawCLT    time.Time
	ExpirationTime   time.Time
}

// statusOf maps a lease to its binding-status at now.
func statusOf(l *lease.Lease, now time.Time) uint8 {
	switch l.State {
	case lease.Leased:
		if now.Before(l.Expires) {
			return bsActive
		}
		return bsExpired
	case lease.Released:
		return bsReleased
	case lease.Declined:
		return bsAbandoned
	}
	return bsExpired
}

// bindingOf describes l for a BNDUPD sent at now. partnerLifetime is the
// time after which the partner may consider the lease expired;
// expiration is the greatest lifetime this server acked to the partner
// for it (zero if none).
func bindingOf(l *lease.Lease, now, partnerLifetime, expiration time.Time) binding {
	b := binding{Prefix: l.Prefix, Kind: l.Kind, DUID: l.DUID, IAID: l.IAID, Status: statusOf(l, now),
		Preferred: l.Preferred, Valid: l.Valid, CLT: l.Updated}
	b.T1, b.T2 = l.Preferred/2, l.Preferred*4/5
	switch b.Status {
	case bsActive:
		b.StartOfState, b.StateExpires = l.Start, l.Expires
	case bsAbandoned:
		b.StartOfState, b.StateExpires = l.Start, l.Expires
	case bsReleased:
		b.StartOfState = l.Expires
	default: // expired
		b.StartOfState = l.Expires
		b.Preferred, b.Valid = 0, 0
	}
	if timed(b.Status) {
		b.PartnerLifetime, b.ExpirationTime = partnerLifetime, expiration
	}
	return b
}

// leaseOf is the lease a received binding describes; link and name place it
// in the local configuration. ok is false for statuses that mean "no
// binding" (expired, free, reset...): the lease is to be removed.
func (b *binding) leaseOf(link, name string) (lease.Lease, bool) {
	l := lease.Lease{Prefix: b.Prefix, Kind: b.Kind, DUID: b.DUID, IAID: b.IAID, Link: link, PrefixName: name,
		Preferred: b.Preferred, Valid: b.Valid, Updated: b.updateTime()}
	switch b.Status {
	case bsActive:
		l.State, l.Start = lease.Leased, b.StartOfState
		l.Expires = b.StateExpires
		if l.Expires.IsZero() {
			l.Expires = l.Start.Add(l.Valid)
		}
	case bsReleased:
		l.State, l.Start, l.Expires = lease.Released, b.StartOfState, b.StartOfState
	case bsAbandoned:
		l.State, l.Start, l.Expires = lease.Declined, b.StartOfState, b.StateExpires
		if l.Expires.IsZero() {
			l.Expires = l.Start.Add(l.Valid)
		}
	default:
		return l, false
	}
	if l.Start.IsZero() {
		l.Start = l.Updated
	}
	return l, true
}

// updateTime is the time §7.5.4 compares a received binding by: for
// ACTIVE, EXPIRED and RELEASED the CLT if present, else the start of
// state; for the others the later of both.
func (b *binding) updateTime() time.Time {
	switch b.Status {
	case bsActive, bsExpired, bsReleased:
		if !b.CLT.IsZero() {
			return b.CLT
		}
		return b.StartOfState
	}
	if b.CLT.After(b.StartOfState) {
		return b.CLT
	}
	return b.StartOfState
}

func secs(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	s := d / time.Second
	if s >= infinite {
		return infinite
	}
	return uint32(s)
}

func durOf(s uint32) time.Duration {
	return time.Duration(s) * time.Second
}

// leaseOptions are the options inside an IAADDR or IAPREFIX of a BNDUPD.
func (b *binding) leaseOptions(base time.Time) OptionList {
	os := OptionList{OptU8(OptBindingStatus, b.Status), OptTime(OptStartTimeOfState, b.StartOfState)}
	if timed(b.Status) && !b.StateExpires.IsZero() {
		os = append(os, OptTime(OptStateExpirationTime, b.StateExpires))
	}
	if !b.CLT.IsZero() {
		rel := base.Sub(b.CLT)
		os = append(os, OptU32(OptCLTTime, secs(rel)))
	}
	if timed(b.Status) && !b.PartnerLifetime.IsZero() {
		os = append(os, OptTime(OptPartnerLifetime, b.PartnerLifetime))
	}
	if !b.PartnerRawCLT.IsZero() {
		os = append(os, OptTime(OptPartnerRawCLTTime, b.PartnerRawCLT))
	}
	if timed(b.Status) && !b.ExpirationTime.IsZero() {
		os = append(os, OptTime(OptExpirationTime, b.ExpirationTime))
	}
	return os
}

// leaseOption is an IAADDR (addresses) or IAPREFIX (prefixes) holding inner.
func leaseOption(p netip.Prefix, k lease.Kind, preferred, valid time.Duration, inner OptionList) Option {
	a := p.Addr().As16()
	if k == lease.PD {
		d := binary.BigEndian.AppendUint32(nil, secs(preferred))
		d = binary.BigEndian.AppendUint32(d, secs(valid))
		d = append(d, byte(p.Bits()))
		d = append(d, a[:]...)
		return Option{Code: OptIAPrefix, Data: inner.AppendTo(d)}
	}
	d := append([]byte(nil), a[:]...)
	d = binary.BigEndian.AppendUint32(d, secs(preferred))
	d = binary.BigEndian.AppendUint32(d, secs(valid))
	return Option{Code: OptIAAddr, Data: inner.AppendTo(d)}
}

// parseLeaseOption decodes an IAADDR or IAPREFIX.
func parseLeaseOption(o Option) (p netip.Prefix, preferred, valid time.Duration, inner OptionList, err error) {
	switch o.Code {
	case OptIAAddr:
		if len(o.Data) < 24 {
			return p, 0, 0, nil, fmt.Errorf("%w: IAADDR of %d bytes", ErrMalformed, len(o.Data))
		}
		p = netip.PrefixFrom(netip.AddrFrom16([16]byte(o.Data[:16])), 128)
		preferred, valid = durOf(binary.BigEndian.Uint32(o.Data[16:])), durOf(binary.BigEndian.Uint32(o.Data[20:]))
		inner, err = ParseOptions(o.Data[24:])
	case OptIAPrefix:
		if len(o.Data) < 25 || o.Data[8] > 128 {
			return p, 0, 0, nil, fmt.Errorf("%w: IAPREFIX of %d bytes", ErrMalformed, len(o.Data))
		}
		preferred, valid = durOf(binary.BigEndian.Uint32(o.Data)), durOf(binary.BigEndian.Uint32(o.Data[4:]))
		p = netip.PrefixFrom(netip.AddrFrom16([16]byte(o.Data[9:25])), int(o.Data[8]))
		if p.Masked() != p {
			return p, 0, 0, nil, fmt.Errorf("%w: IAPREFIX %s has host bits set", ErrMalformed, p)
		}
		inner, err = ParseOptions(o.Data[25:])
	default:
		err = fmt.Errorf("%w: option %d is not an IAADDR or IAPREFIX", ErrMalformed, o.Code)
	}
	return p, preferred, valid, inner, err
}

// iaOption wraps lease options in an IA_NA or IA_PD.
func iaOption(k lease.Kind, iaid uint32, t1, t2 time.Duration, leases OptionList) Option {
	code := OptIANA
	if k == lease.PD {
		code = OptIAPD
	}
	d := binary.BigEndian.AppendUint32(nil, iaid)
	d = binary.BigEndian.AppendUint32(d, secs(t1))
	d = binary.BigEndian.AppendUint32(d, secs(t2))
	return Option{Code: code, Data: leases.AppendTo(d)}
}

type iaKey struct {
	kind lease.Kind
	iaid uint32
}

// clientData encodes bindings of one client as an OPTION_CLIENT_DATA at
// base time.
func clientData(duid []byte, bs []binding, base time.Time) Option {
	cd := OptionList{{Code: OptClientID, Data: duid}, OptTime(OptLQBaseTime, base)}
	var order []iaKey
	byIA := map[iaKey][]binding{}
	for _, b := range bs {
		k := iaKey{b.Kind, b.IAID}
		if _, ok := byIA[k]; !ok {
			order = append(order, k)
		}
		byIA[k] = append(byIA[k], b)
	}
	for _, k := range order {
		var ls OptionList
		var t1, t2 time.Duration
		for _, b := range byIA[k] {
			ls = append(ls, leaseOption(b.Prefix, b.Kind, b.Preferred, b.Valid, b.leaseOptions(base)))
			t1, t2 = b.T1, b.T2
		}
		cd = append(cd, iaOption(k.kind, k.iaid, t1, t2, ls))
	}
	return OptNested(OptClientData, cd)
}

// received is one address or prefix of a received BNDUPD, or the reason it
// cannot be used.
type received struct {
	b   binding
	bad uint16 // a status code when the item is rejected before processing
	msg string
}

// parseClientData decodes an OPTION_CLIENT_DATA of a BNDUPD. A whole-option
// problem returns a status code (MissingBindingInformation) and message.
func parseClientData(data []byte, now time.Time) (duid []byte, items []received, bad uint16, msg string) {
	cd, err := ParseOptions(data)
	if err != nil {
		return nil, nil, StatusMissingBindingInformation, err.Error()
	}
	duid, ok := cd.Get(OptClientID)
	if !ok || len(duid) == 0 {
		return nil, nil, StatusMissingBindingInformation, "no client identifier"
	}
	baseTime, ok := cd.Time(OptLQBaseTime, now)
	if !ok {
		return duid, nil, StatusMissingBindingInformation, "no base time"
	}
	for _, o := range cd {
		if o.Code != OptIANA && o.Code != OptIAPD {
			continue
		}
		kind := lease.NA
		if o.Code == OptIAPD {
			kind = lease.PD
		}
		if len(o.Data) < 12 {
			return duid, nil, StatusMissingBindingInformation, "short IA option"
		}
		iaid := binary.BigEndian.Uint32(o.Data)
		t1, t2 := durOf(binary.BigEndian.Uint32(o.Data[4:])), durOf(binary.BigEndian.Uint32(o.Data[8:]))
		inner, err := ParseOptions(o.Data[12:])
		if err != nil {
			return duid, nil, StatusMissingBindingInformation, err.Error()
		}
		for _, lo := range inner {
			if lo.Code != OptIAAddr && lo.Code != OptIAPrefix {
				continue
			}
			items = append(items, parseBinding(lo, kind, duid, iaid, t1, t2, baseTime, now))
		}
	}
	if len(items) == 0 {
		return duid, nil, StatusMissingBindingInformation, "no IA_NA or IA_PD with an address or prefix"
	}
	return duid, items, 0, ""
}

// parseBinding decodes one IAADDR/IAPREFIX of a CLIENT_DATA.
func parseBinding(lo Option, kind lease.Kind, duid []byte, iaid uint32, t1, t2 time.Duration, base, now time.Time) received {
	p, pref, valid, in, err := parseLeaseOption(lo)
	r := received{b: binding{Prefix: p, Kind: kind, DUID: duid, IAID: iaid, Preferred: pref, Valid: valid, T1: t1, T2: t2}}
	if err != nil {
		r.bad, r.msg = StatusMissingBindingInformation, err.Error()
		return r
	}
	if (kind == lease.NA) != (lo.Code == OptIAAddr) {
		r.bad, r.msg = StatusMissingBindingInformation, "IAADDR outside IA_NA or IAPREFIX outside IA_PD"
		return r
	}
	st, ok := in.U8(OptBindingStatus)
	sos, ok2 := in.Time(OptStartTimeOfState, now)
	if !ok || !ok2 || st == 0 {
		r.bad, r.msg = StatusMissingBindingInformation, "no binding-status or start-time-of-state"
		return r
	}
	r.b.Status, r.b.StartOfState = st, sos
	r.b.StateExpires, _ = in.Time(OptStateExpirationTime, now)
	if clt, ok := in.U32(OptCLTTime); ok {
		r.b.CLT = base.Add(-durOf(clt))
	}
	r.b.PartnerLifetime, _ = in.Time(OptPartnerLifetime, now)
	r.b.PartnerRawCLT, _ = in.Time(OptPartnerRawCLTTime, now)
	r.b.ExpirationTime, _ = in.Time(OptExpirationTime, now)
	if r.b.Status == bsActive && r.b.Valid == 0 && r.b.StateExpires.IsZero() {
		r.bad, r.msg = StatusMissingBindingInformation, "active binding without lifetime"
	}
	return r
}

// replyItem is the answer for one address or prefix in a BNDREPLY.
type replyItem struct {
	b      binding
	status uint16 // 0: accepted
	msg    string
}

// replyClientData builds the OPTION_CLIENT_DATA of a BNDREPLY (§7.6). A
// non-zero whole rejects everything.
func replyClientData(duid []byte, items []replyItem, whole uint16, msg string) Option {
	cd := OptionList{{Code: OptClientID, Data: duid}}
	if whole != 0 {
		cd = append(cd, OptStatus(whole, msg))
		return OptNested(OptClientData, cd)
	}
	var order []iaKey
	byIA := map[iaKey][]replyItem{}
	for _, it := range items {
		k := iaKey{it.b.Kind, it.b.IAID}
		if _, ok := byIA[k]; !ok {
			order = append(order, k)
		}
		byIA[k] = append(byIA[k], it)
	}
	for _, k := range order {
		var ls OptionList
		for _, it := range byIA[k] {
			var in OptionList
			if it.status != 0 {
				in = append(in, OptStatus(it.status, it.msg))
			}
			in = append(in, OptU8(OptBindingStatus, it.b.Status))
			if !it.b.StateExpires.IsZero() {
				in = append(in, OptTime(OptStateExpirationTime, it.b.StateExpires))
			}
			if !it.b.PartnerLifetime.IsZero() {
				in = append(in, OptTime(OptPartnerLifetimeSent, it.b.PartnerLifetime))
			}
			ls = append(ls, leaseOption(it.b.Prefix, it.b.Kind, it.b.Preferred, it.b.Valid, in))
		}
		cd = append(cd, iaOption(k.kind, k.iaid, 0, 0, ls))
	}
	return OptNested(OptClientData, cd)
}

// ackItem is what a BNDREPLY says about one address or prefix.
type ackItem struct {
	prefix      netip.Prefix
	status      uint16
	msg         string
	lifetimeAck time.Time // PARTNER_LIFETIME_SENT
}

// parseReply decodes a BNDREPLY's CLIENT_DATA or IAPREFIX. whole is a
// status rejecting everything.
func parseReply(m *Message, now time.Time) (items []ackItem, whole uint16, msg string, err error) {
	if data, ok := m.Options.Get(OptClientData); ok {
		cd, err := ParseOptions(data)
		if err != nil {
			return nil, 0, "", err
		}
		if code, text, ok := cd.Status(); ok && code != StatusSuccess {
			return nil, code, text, nil
		}
		for _, o := range cd {
			if o.Code != OptIANA && o.Code != OptIAPD {
				continue
			}
			if len(o.Data) < 12 {
				return nil, 0, "", fmt.Errorf("%w: short IA in BNDREPLY", ErrMalformed)
			}
			inner, err := ParseOptions(o.Data[12:])
			if err != nil {
				return nil, 0, "", err
			}
			iaCode, iaText, iaBad := inner.Status()
			for _, lo := range inner {
				if lo.Code != OptIAAddr && lo.Code != OptIAPrefix {
					continue
				}
				items = append(items, ackOf(lo, now, iaBad && iaCode != StatusSuccess, iaCode, iaText))
			}
		}
		return items, 0, "", nil
	}
	if data, ok := m.Options.Get(OptIAPrefix); ok {
		it := ackOf(Option{Code: OptIAPrefix, Data: data}, now, false, 0, "")
		return []ackItem{it}, 0, "", nil
	}
	return nil, 0, "", fmt.Errorf("%w: BNDREPLY without CLIENT_DATA or IAPREFIX", ErrMalformed)
}

func ackOf(lo Option, now time.Time, iaRejected bool, iaCode uint16, iaText string) ackItem {
	p, _, _, in, err := parseLeaseOption(lo)
	it := ackItem{prefix: p}
	if err != nil {
		it.status, it.msg = StatusMissingBindingInformation, err.Error()
		return it
	}
	if iaRejected {
		it.status, it.msg = iaCode, iaText
	}
	if code, text, ok := in.Status(); ok && code != StatusSuccess {
		it.status, it.msg = code, text
	}
	it.lifetimeAck, _ = in.Time(OptPartnerLifetimeSent, now)
	return it
}
