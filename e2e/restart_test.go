package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// A hook6d killed with SIGKILL right after answering comes back with every
// acknowledged lease and the same server DUID, and the client renews the
// address and prefix it holds.
func TestRestartAfterKillKeepsLeases(t *testing.T) {
	x := newDirect(t, func(c *lab.Config) {
		p := c.Policies["default"]
		p.T1, p.T2 = "6s", "9s"
		c.Policies["default"] = p
	})
	ctx := timeout(t, 60*time.Second)
	duidBefore := serverDUID(t, x.d)

	dh := x.lab.Dhclient(x.cli, cliIf)
	dh.Start(lab.DhclientMode{NA: true, PD: true})
	addr, ia, err := dh.WaitAddress(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	pfx, ip, err := dh.WaitPrefix(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	bound := max(ia, ip)
	// T1 and T2 are the same in every IA, and T1 <= T2.
	evs := dh.Events()
	na, pd := evs[ia].Vars, evs[ip].Vars
	if na["new_renew"] != pd["new_renew"] || na["new_rebind"] != pd["new_rebind"] || atoi(na["new_renew"]) > atoi(na["new_rebind"]) {
		t.Errorf("IA_NA T1/T2 %s/%s, IA_PD %s/%s: want equal, T1 <= T2",
			na["new_renew"], na["new_rebind"], pd["new_renew"], pd["new_rebind"])
	}

	x.d.Kill()
	x.d.Start()

	if got := serverDUID(t, x.d); got != duidBefore {
		t.Errorf("server DUID %s after restart, want %s", got, duidBefore)
	}
	for _, p := range []string{hostPrefix(addr).String(), pfx.String()} {
		if l := leaseOf(t, x.d, mustPrefix(t, p)); l.State != "leased" {
			t.Errorf("lease of %s after kill -9: state %q, want leased", p, l.State)
		}
	}
	renewedAddr, _, err := dh.WaitAddress(ctx, bound+1, "RENEW6")
	if err != nil {
		t.Fatal(err)
	}
	renewedPfx, _, err := dh.WaitPrefix(ctx, bound+1, "RENEW6")
	if err != nil {
		t.Fatal(err)
	}
	if renewedAddr != addr || renewedPfx != pfx {
		t.Errorf("renewed %v and %v from the restarted server, want %v and %v", renewedAddr, renewedPfx, addr, pfx)
	}
}

// serverDUID is the DUID hook6ctl status reports.
func serverDUID(t *testing.T, d *lab.Hook6d) string {
	t.Helper()
	ctx := timeout(t, 10*time.Second)
	out, err := d.Ctl().Run(ctx, "-o", "json", "status")
	if err != nil {
		t.Fatal(err)
	}
	st, err := lab.ParseObject(out)
	if err != nil {
		t.Fatal(err)
	}
	duid, _ := st["server-duid"].(string)
	if duid == "" {
		t.Fatalf("status has no server-duid: %s", out)
	}
	return normDUID(duid)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
