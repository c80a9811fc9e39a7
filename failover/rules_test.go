package failover

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/lease"
)

// Figure 4 of RFC 8156, row by row.
func TestResolveFigure4(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	addr := netip.MustParsePrefix("2001:db8:1::9/128")
	local := func(st lease.State, updated, expires time.Time, duid int) *lease.Lease {
		return &lease.Lease{Prefix: addr, Kind: lease.NA, DUID: clientDUID(duid), State: st, Start: updated,
			Updated: updated, Expires: expires}
	}
	recv := func(st uint8, clt time.Time, duid int) *binding {
		return &binding{Prefix: addr, Kind: lease.NA, DUID: clientDUID(duid), Status: st, CLT: clt, StartOfState: clt}
	}
	old, new := now.Add(-time.Hour), now.Add(-time.Minute)
	soon, past := now.Add(time.Hour), now.Add(-time.Second)
	cases := []struct {
		name   string
		local  *lease.Lease
		fromP  bool
		b      *binding
		r      Role
		accept bool
		code   uint16
	}{
		{"free locally", nil, false, recv(bsActive, old, 1), Primary, true, 0},
		{"active, same client, newer", local(lease.Leased, old, soon, 1), false, recv(bsActive, new, 1), Primary, true, 0},
		{"active, same client, older", local(lease.Leased, new, soon, 1), false, recv(bsActive, old, 1), Primary, false, StatusOutdatedBindingInformation},
		{"active, same client, within skew", local(lease.Leased, new, soon, 1), false, recv(bsActive, new.Add(3*time.Second), 1), Primary, true, 0},
		{"active, other client, primary, newer", local(lease.Leased, old, soon, 1), false, recv(bsActive, new, 2), Primary, true, 0},
		{"active, other client, primary, older", local(lease.Leased, new, soon, 1), false, recv(bsActive, old, 2), Primary, false, StatusAddressInUse},
		{"active, other client, secondary", local(lease.Leased, new, soon, 1), false, recv(bsActive, old, 2), Secondary, true, 0},
		{"active, expired received, local running", local(lease.Leased, old, soon, 1), false, recv(bsExpired, new, 1), Primary, false, StatusOutdatedBindingInformation},
		{"active, expired received, local over", local(lease.Leased, old, past, 1), false, recv(bsExpired, new, 1), Primary, true, 0},
		{"active, released newer", local(lease.Leased, old, soon, 1), false, recv(bsReleased, new, 1), Primary, true, 0},
		{"active, released older", local(lease.Leased, new, soon, 1), false, recv(bsReleased, old, 1), Primary, false, StatusOutdatedBindingInformation},
		{"released locally, active newer", local(lease.Released, old, old, 1), false, recv(bsActive, new, 2), Primary, true, 0},
		{"released locally, active older", local(lease.Released, new, new, 1), false, recv(bsActive, old, 2), Primary, false, StatusOutdatedBindingInformation},
		{"abandoned locally, active newer", local(lease.Declined, old, soon, 1), false, recv(bsActive, new, 2), Primary, true, 0},
		{"expired locally, expired received, same time", local(lease.Leased, old, past, 1), false, recv(bsExpired, old, 1), Primary, true, 0},
		{"released locally, expired received, older", local(lease.Released, new, new, 1), false, recv(bsExpired, old, 1), Primary, false, StatusOutdatedBindingInformation},
		{"partner refines its own binding", local(lease.Leased, new, soon, 1), true, recv(bsActive, new.Add(2*time.Second), 1), Primary, true, 0},
	}
	for _, c := range cases {
		v := resolve(c.local, c.fromP, c.b, now, c.r)
		if v.accept != c.accept || (!v.accept && v.status != c.code) {
			t.Errorf("%s: accept %v status %d, want %v %d", c.name, v.accept, v.status, c.accept, c.code)
		}
	}
}

func TestStateTable(t *testing.T) {
	cases := []struct{ s, p, want State }{
		{CommInterrupted, Normal, Normal},
		{CommInterrupted, Recover, CommInterrupted},
		{CommInterrupted, PartnerDown, PotentialConflict},
		{PartnerDown, RecoverDone, Normal},
		{PartnerDown, Recover, PartnerDown},
		{PartnerDown, Normal, PotentialConflict},
		{RecoverDone, Normal, Normal},
		{RecoverDone, RecoverWait, CommInterrupted},
		{Normal, PartnerDown, PotentialConflict},
		{ConflictDone, Normal, Normal},
		{ResolutionInterrupted, Normal, PotentialConflict},
		{Recover, ConflictDone, PotentialConflict},
		{Recover, PartnerDown, Recover},
	}
	for _, c := range cases {
		if got := afterCommOK(c.s, c.p, Primary); got != c.want {
			t.Errorf("%s with partner %s → %s, want %s", c.s, c.p, got, c.want)
		}
	}
	if afterCommFailure(Normal) != CommInterrupted || afterCommFailure(PotentialConflict) != ResolutionInterrupted ||
		afterCommFailure(RecoverDone) != RecoverDone {
		t.Error("communications-failed transitions")
	}
	if responsiveness(Normal, Secondary) != RenewResponsive || responsiveness(Normal, Primary) != Responsive ||
		responsiveness(PotentialConflict, Primary) != Unresponsive || mayAllocate(RecoverDone, Primary) {
		t.Error("responsiveness")
	}
	for s := Startup; s <= ConflictDone; s++ {
		if got, ok := ParseState(s.String()); !ok || got != s {
			t.Errorf("ParseState(%q)", s)
		}
	}
}

func TestMergeConfig(t *testing.T) {
	local := `server: {interfaces: [eth1], state-dir: /var/lib/b}
failover: {role: secondary, peer: "[2001:db8::1]:647", tls: {insecure: true}}
policies:
  default: {valid-lifetime: 1h}
  local-only: {preferred-lifetime: 2m, valid-lifetime: 5m}
prefixes:
  - {name: a, address: 2001:db8:1::/64, range: 2001:db8:1:0:8000::/65}
  - {name: mine, address: 2001:db8:9::/64}
`
	primary := `server: {interfaces: [eth0], state-dir: /var/lib/a}
failover: {role: primary, peer: "[2001:db8::2]:647", tls: {insecure: true}}
policies:
  default: {valid-lifetime: 2h, max-leases-per-binding: 1}
prefixes:
  - {name: a, address: 2001:db8:1::/64}
  - {name: new, address: 2001:db8:2::/64}
`
	pushed, err := ExtractSections([]byte(primary))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(pushed), "server") || strings.Contains(string(pushed), "failover") {
		t.Fatalf("pushed sections hold server or failover:\n%s", pushed)
	}
	for _, exact := range []bool{false, true} {
		merged, err := MergeConfig([]byte(local), pushed, exact)
		if err != nil {
			t.Fatal(err)
		}
		c, err := config.Parse("merged.yaml", merged)
		if err != nil {
			t.Fatalf("exact=%v: merged config does not load: %v\n%s", exact, err, merged)
		}
		if c.Server.StateDir != "/var/lib/b" || c.Failover.Role != config.RoleSecondary {
			t.Errorf("exact=%v: the secondary's server/failover sections were not kept", exact)
		}
		if c.Policy("default").MaxLeasesPerBinding != 1 || c.Prefixes[0].Range.IsValid() {
			t.Errorf("exact=%v: the primary's policy and prefix did not replace the local ones", exact)
		}
		names := map[string]bool{}
		for _, p := range c.Prefixes {
			names[p.Name] = true
		}
		if !names["new"] || names["mine"] == exact || (c.Policy("local-only") != nil) == exact {
			t.Errorf("exact=%v: prefixes %v, local-only policy %v", exact, names, c.Policy("local-only") != nil)
		}
	}
}

// The MCLT rule: the first lease of a binding gets at most the MCLT;
// once the partner acknowledged a partner lifetime, the desired lifetime.
// PARTNER-DOWN is not bound.
func TestCapLifetime(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true, mclt: time.Hour})
	e := p.pri.ep
	now := time.Now()
	l := lease.Lease{Prefix: netip.MustParsePrefix("2001:db8:1::1/128"), Kind: lease.NA, PrefixName: "lan-addr",
		State: lease.Leased, Start: now, Valid: 14 * 24 * time.Hour}
	e.cur.Store(uint32(Normal))
	if got := e.CapLifetime(&l); got != time.Hour {
		t.Fatalf("first lease capped to %s, want the MCLT", got)
	}
	pl := e.partnerLifetime(&lease.Lease{Start: now, Valid: time.Hour, Expires: now.Add(time.Hour), PrefixName: "lan-addr"}, now)
	if want := now.Add(30 * time.Minute).Add(2 * time.Hour); !pl.Equal(want) {
		t.Fatalf("partner lifetime %v, want T1 fraction + desired %v", pl, want)
	}
	e.rep.acks.set(keyOf(l.Prefix), ackRec{end: nanos(now.Add(14 * 24 * time.Hour))})
	if got := e.CapLifetime(&l); got != l.Valid {
		t.Fatalf("after the acknowledgement %s, want %s", got, l.Valid)
	}
	e.rep.acks.del(keyOf(l.Prefix))
	e.cur.Store(uint32(PartnerDown))
	if got := e.CapLifetime(&l); got != l.Valid {
		t.Fatalf("partner-down caps to %s", got)
	}
}

// Independent allocation for addresses, proportional for prefixes, no
// reuse before the partner acknowledged a lease's end.
func TestFilter(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true})
	odd, even := netip.MustParsePrefix("2001:db8:1::3/128"), netip.MustParsePrefix("2001:db8:1::4/128")
	p.pri.ep.cur.Store(uint32(Normal))
	p.sec.ep.cur.Store(uint32(CommInterrupted))
	if !p.pri.ep.Filter(odd, lease.NA) || p.pri.ep.Filter(even, lease.NA) {
		t.Error("the primary allocates odd addresses only")
	}
	if p.sec.ep.Filter(odd, lease.NA) || !p.sec.ep.Filter(even, lease.NA) {
		t.Error("the secondary allocates even addresses only")
	}
	// A reserved address is given by either server.
	lo := *p.sec.ep.layout.Load()
	lo.Reserved = map[netip.Prefix]bool{odd: true}
	p.sec.ep.SetLayout(&lo)
	if !p.sec.ep.Filter(odd, lease.NA) {
		t.Error("the secondary refuses a reserved odd address")
	}
	for _, s := range []State{Startup, Recover, RecoverWait, RecoverDone, PotentialConflict} {
		p.pri.ep.cur.Store(uint32(s))
		if p.pri.ep.Filter(odd, lease.NA) {
			t.Errorf("allocation allowed in %s", s)
		}
	}
	p.pri.ep.cur.Store(uint32(Normal))
	// A released lease is not reused before the partner acknowledged it.
	now := time.Now()
	rel := lease.Lease{Prefix: odd, Kind: lease.NA, DUID: clientDUID(1), IAID: 1, State: lease.Released,
		Start: now.Add(-time.Hour), Expires: now, Updated: now, Valid: time.Hour}
	if err := p.pri.store.Put(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	p.pri.ep.rep.acks.set(keyOf(odd), ackRec{updated: nanos(now.Add(-time.Hour)), state: lease.Leased, end: nanos(now)})
	if p.pri.ep.Filter(odd, lease.NA) {
		t.Error("a release the partner has not acknowledged was reused")
	}
	p.pri.ep.rep.acks.set(keyOf(odd), ackRec{updated: nanos(now), state: lease.Released, end: nanos(now)})
	if !p.pri.ep.Filter(odd, lease.NA) {
		t.Error("an acknowledged release was not reused")
	}
	// Delegation blocks: all the primary's until it gives some away.
	pd := netip.MustParsePrefix("2001:db8:8000:100::/56")
	p.sec.ep.cur.Store(uint32(PartnerDown))
	p.sec.ep.pdt.Store(nanos(time.Now()))
	if !p.pri.ep.Filter(pd, lease.PD) || p.sec.ep.Filter(pd, lease.PD) {
		t.Error("delegation blocks start with the primary")
	}
	// In PARTNER-DOWN for longer than the MCLT, with no block of its own
	// left, the secondary may use the primary's (§8.4.1).
	p.sec.ep.pdt.Store(nanos(time.Now().Add(-2 * p.sec.ep.MCLT())))
	if !p.sec.ep.Filter(pd, lease.PD) {
		t.Error("partner-down beyond the MCLT with an empty own pool may use the partner's blocks")
	}
	p.sec.ep.pdt.Store(nanos(time.Now()))
	block, _, _ := blockOf(p.pri.ep.layout.Load(), pd)
	p.pri.ep.pools.setOwner(block, Secondary)
	p.sec.ep.pools.setOwner(block, Secondary)
	if p.pri.ep.Filter(pd, lease.PD) || !p.sec.ep.Filter(pd, lease.PD) {
		t.Error("a block given to the secondary is the secondary's")
	}
}

func TestBlocks(t *testing.T) {
	pool := netip.MustParsePrefix("2001:db8:8000::/40")
	bs := blocksOf(pool, 56)
	if len(bs) != 64 || bs[0] != netip.MustParsePrefix("2001:db8:8000::/46") ||
		bs[63] != netip.MustParsePrefix("2001:db8:80fc::/46") {
		t.Fatalf("blocks %v … %v (%d)", bs[0], bs[len(bs)-1], len(bs))
	}
	if n := len(blocksOf(netip.MustParsePrefix("2001:db8::/62"), 64)); n != 4 {
		t.Fatalf("a /62 pool of /64s has %d blocks", n)
	}
}

func TestHistogram(t *testing.T) {
	h := newHistogram()
	for i := range 100 {
		h.observe(time.Duration(i+1) * time.Millisecond)
	}
	p50, p99 := h.quantile(0.5), h.quantile(0.99)
	if p50 < 50*time.Millisecond || p50 > 63*time.Millisecond || p99 < 99*time.Millisecond || p99 > 125*time.Millisecond {
		t.Fatalf("p50 %s p99 %s", p50, p99)
	}
}
