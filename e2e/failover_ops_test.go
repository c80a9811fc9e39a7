package e2e

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// Issue #7: hook6ctl lease delete on either server of the pair removes
// the lease from both (it travels as RESET); hook6ctl reload applies a
// changed failover section (the pair meets again with the new MCLT); a
// role change is refused and the pair keeps running.
func TestFailoverLeaseDeleteAndReload(t *testing.T) {
	x := newPairLab(t)
	x.startPair(nil)
	ctx := timeout(t, 3*time.Minute)
	waitState(t, timeout(t, 30*time.Second), "normal", x.a, x.b)

	c1 := x.addClient(lab.DhclientMode{NA: true})
	c2 := x.addClient(lab.DhclientMode{PD: true})
	c3 := x.addClient(lab.DhclientMode{NA: true})
	p1 := x.next(ctx, c1, "BOUND6")
	p2 := x.next(ctx, c2, "BOUND6")
	p3 := x.next(ctx, c3, "BOUND6")
	x.waitSameDB(timeout(t, 20*time.Second))
	// No renewal may bring the leases back.
	for _, c := range []*pairClient{c1, c2, c3} {
		if err := c.dh.Process().Kill(); err != nil {
			t.Fatal(err)
		}
	}

	// On the primary, which granted it.
	ctl(t, x.a, "lease", "delete", p1[0].String())
	// On the secondary, a prefix the primary granted: the RESET must be
	// clearly later than the client's last transaction (RFC 8156 §7.5.4).
	time.Sleep(6 * time.Second)
	pd := p2[0]
	if pd.Bits() == 128 {
		t.Fatalf("%s was given %v, not a prefix", c2.name, p2)
	}
	ctl(t, x.b, "lease", "delete", pd.String())
	db := x.waitSameDB(timeout(t, 20*time.Second))
	if _, ok := db[p1[0]]; ok {
		t.Errorf("%s deleted on the primary is still in the databases", p1[0])
	}
	if _, ok := db[pd]; ok {
		t.Errorf("%s deleted on the secondary is still in the databases", pd)
	}
	if _, ok := db[p3[0]]; !ok {
		t.Errorf("%s, not deleted, is gone", p3[0])
	}

	// Another MCLT on the primary (the secondary adopts it).
	cfg := x.cfgA
	cfg.Failover = maps.Clone(x.cfgA.Failover)
	cfg.Failover["mclt"] = "45s"
	x.a.WriteConfig(cfg)
	ctl(t, x.a, "reload")
	waitState(t, timeout(t, 30*time.Second), "normal", x.a, x.b)
	for _, d := range []*lab.Hook6d{x.a, x.b} {
		if got := foStatus(t, d)["mclt"]; got != "45s" {
			t.Errorf("MCLT after the reload: %v, want 45s", got)
		}
	}

	// A role change is refused; the endpoint keeps running.
	bad := cfg
	bad.Failover = maps.Clone(cfg.Failover)
	bad.Failover["role"] = "secondary"
	x.a.WriteConfig(bad)
	out, err := x.a.Ctl().Run(ctx, "reload")
	if err == nil || !strings.Contains(err.Error()+string(out), "failover.role cannot change") {
		t.Errorf("a role change at reload: %v: %s", err, out)
	}
	x.a.WriteConfig(cfg)
	if st := foStatus(t, x.a); st["state"] != "normal" || st["role"] != "primary" {
		t.Errorf("after the refused reload: %v %v", st["state"], st["role"])
	}
	checkUnique(t, x.waitSameDB(timeout(t, 20*time.Second)))
}
