package failover

import (
	"context"
	"strings"
	"testing"
	"time"
)

// failover sync: the primary's sections reach the secondary, which merges
// them into its own file; a push the secondary cannot load is refused
// with the reason.
func TestConfigSync(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true})
	p.start()
	p.waitNormal(t, 10*time.Second)
	primaryFile := strings.Replace(pairConfig, "valid-lifetime: 2h", "valid-lifetime: 3h", 1) +
		"  - {name: extra, link: lan, address: 2001:db8:5::/64, dhcp-type: dhcp}\n"
	sections, err := ExtractSections([]byte(primaryFile))
	if err != nil {
		t.Fatal(err)
	}
	// Big enough to need several CONTACT messages.
	sections = append(sections, []byte("\n# "+strings.Repeat("x", 150000)+"\n")...)
	ctx := context.Background()
	if err := p.pri.ep.SyncConfig(ctx, sections, true); err != nil {
		t.Fatal(err)
	}
	got := string(p.sec.synced)
	if !strings.Contains(got, "valid-lifetime: 3h") || !strings.Contains(got, "name: extra") ||
		!strings.Contains(got, "interfaces:") {
		t.Fatalf("secondary's merged config:\n%s", got)
	}
	bad, _ := ExtractSections([]byte("prefixes:\n  - {name: broken, address: not-a-prefix}\n"))
	if err := p.pri.ep.SyncConfig(ctx, bad, false); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("an invalid push: %v", err)
	}
	if err := p.sec.ep.SyncConfig(ctx, sections, false); err == nil {
		t.Fatal("the secondary pushed its configuration")
	}
}

// The state survives a restart; partner-down is refused while the partner
// is reachable; automatic partner-down fires after the configured time.
func TestStateOperations(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true, viaProxy: true})
	p.pri.ep.cfg.AutoPartnerDown = 500 * time.Millisecond
	p.start()
	p.waitNormal(t, 10*time.Second)
	if err := p.pri.ep.SetPartnerDown(time.Time{}); err == nil {
		t.Fatal("partner-down accepted while the partner is reachable")
	}
	p.proxy.setCut(true)
	waitState(t, p.pri, CommInterrupted, 5*time.Second)
	waitState(t, p.pri, PartnerDown, 5*time.Second)
	st := p.pri.ep.Status()
	if st.PartnerDownTime == nil || st.Communications != "interrupted" || st.Responsiveness != "responsive" {
		t.Fatalf("status %+v", st)
	}
	// The secondary, told the primary has been down since an hour ago.
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	waitState(t, p.sec, CommInterrupted, 5*time.Second)
	if err := p.sec.ep.SetPartnerDown(time.Now().Add(time.Hour)); err == nil {
		t.Fatal("a partner-down time in the future was accepted")
	}
	if err := p.sec.ep.SetPartnerDown(at); err != nil {
		t.Fatal(err)
	}
	p.sec.restart(true)
	waitFor(t, 5*time.Second, "secondary back in partner-down", func() bool { return p.sec.ep.State() == PartnerDown })
	if got := p.sec.ep.Status().PartnerDownTime; got == nil || !got.Equal(at) {
		t.Fatalf("partner-down time after restart %v, want %v", got, at)
	}
}

// A lease the primary's reclaimer removes at its expiry is removed from
// the secondary by an EXPIRED update (not by the secondary's own clock).
func TestExpiryReplicated(t *testing.T) {
	clock := &testClock{}
	p := newPair(t, pairOpts{noSync: true, clock: clock, mclt: time.Minute})
	p.start()
	p.waitNormal(t, 10*time.Second)
	for c := range 5 {
		p.pri.bind(c, c == 4)
	}
	p.waitSame(t, 5*time.Second)
	clock.advance(3 * time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.pri.srv.Reclaim(ctx, 20*time.Millisecond)
	waitFor(t, 5*time.Second, "the expired leases gone from both", func() bool {
		return p.pri.store.Len() == 0 && p.sec.store.Len() == 0
	})
	if n := len(p.pri.ep.rep.acks.keys()); n != 0 {
		t.Errorf("the primary still believes the partner holds %d leases", n)
	}
}

// What the partner acknowledged survives a restart: nothing is sent
// again for leases that did not change.
func TestAcknowledgementsSurviveRestart(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true, mclt: time.Minute})
	p.start()
	p.waitNormal(t, 10*time.Second)
	for c := range 10 {
		p.pri.bind(c, false)
	}
	p.waitSame(t, 5*time.Second)
	p.pri.restart(true)
	p.waitNormal(t, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := p.pri.ep.Stats()["v6-binding-sent"].(uint64); n != 0 {
		t.Errorf("the restarted primary sent %d bindings again", n)
	}
}

// A secondary that lost its disk comes back empty: the primary remembers
// it, so it asks for everything (UPDREQALL), waits the MCLT, and ends with
// the whole database.
func TestLostStorageUpdReqAll(t *testing.T) {
	p := newPair(t, pairOpts{noSync: true})
	p.start()
	p.waitNormal(t, 10*time.Second)
	for c := range 12 {
		p.pri.bind(c, c%3 == 0)
	}
	p.waitSame(t, 5*time.Second)
	p.sec.stop()
	p.sec.dir = t.TempDir()
	p.sec.open(true)
	p.sec.start()
	p.waitNormal(t, 15*time.Second)
	p.waitSame(t, 5*time.Second)
	if !passedThrough(p.sec, RecoverWait) {
		t.Errorf("the secondary did not wait in recover-wait: %+v", p.sec.ep.Status().History)
	}
	if st := p.pri.ep.Stats(); st["v6-binding-sent"].(uint64) < 24 {
		t.Errorf("the primary sent %d bindings; the second time it must send all 12 again", st["v6-binding-sent"])
	}
}
