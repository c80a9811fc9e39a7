package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// dhclient -S (Information-request) gets the policy's DNS servers and no
// lease.
func TestDhclientInformationRequest(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 30*time.Second)
	dh := x.lab.Dhclient(x.cli, cliIf)
	dh.Start(lab.DhclientMode{Stateless: true})
	ev, _, err := dh.WaitEvent(ctx, 0, "", func(e lab.Event) bool { return e.Vars["new_dhcp6_name_servers"] != "" })
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Vars["new_dhcp6_name_servers"]; got != "2001:db8::53" {
		t.Errorf("DNS servers %q (event %s), want 2001:db8::53", got, ev.Reason)
	}
	if ls := leases(t, x.d); len(ls) != 0 {
		t.Errorf("Information-request left leases: %+v", ls)
	}
}

// hook6ctl lease show and lease delete act on what clients hold.
func TestCtlLeaseShowAndDelete(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 30*time.Second)
	dh := x.lab.Dhclient(x.cli, cliIf)
	dh.Start(lab.DhclientMode{NA: true, PD: true})
	addr, _, err := dh.WaitAddress(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	pfx, _, err := dh.WaitPrefix(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	if err := dh.Process().Stop(); err != nil {
		t.Fatal(err)
	}
	ctl := x.d.Ctl()

	out, err := ctl.Run(ctx, "-o", "json", "lease", "show", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	shown, err := lab.ParseLeases([]byte("[" + string(out) + "]"))
	if err != nil {
		t.Fatal(err)
	}
	if shown[0].Prefix != hostPrefix(addr) || shown[0].Kind != "na" || shown[0].State != "leased" {
		t.Errorf("lease show %v: %+v", addr, shown[0])
	}
	if _, err := ctl.Run(ctx, "lease", "show", "2001:db8:1::dead"); err == nil {
		t.Error("lease show of an address nobody holds succeeded")
	}

	out, err = ctl.Run(ctx, "-o", "json", "lease", "delete", lanAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	if obj, err := lab.ParseObject(out); err != nil || obj["deleted"] != float64(1) {
		t.Errorf("lease delete %v: %s (%v), want 1 deleted", lanAddr, out, err)
	}
	if ls := leases(t, x.d); len(ls) != 1 || ls[0].Prefix != pfx {
		t.Errorf("after deleting %v: %+v, want only %v", lanAddr, ls, pfx)
	}
	out, err = ctl.Run(ctx, "lease", "delete", "::/0")
	if err != nil || !strings.Contains(string(out), "1") {
		t.Errorf("lease delete ::/0: %s %v", out, err)
	}
	if ls := leases(t, x.d, "--prefix", netip.MustParsePrefix("::/0").String()); len(ls) != 0 {
		t.Errorf("leases left after deleting ::/0: %+v", ls)
	}
}
