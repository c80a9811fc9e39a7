package e2e

import (
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// When the server does not answer the Renew, dhclient rebinds at T2 by
// multicast; the server, back, answers the Rebind with the same address.
func TestDhclientRebind(t *testing.T) {
	x := newDirect(t, func(c *lab.Config) {
		p := c.Policies["default"]
		p.T1, p.T2 = "2s", "3s"
		c.Policies["default"] = p
	})
	ctx := timeout(t, 60*time.Second)
	dh := x.lab.Dhclient(x.cli, cliIf)
	p := dh.Start(lab.DhclientMode{NA: true})
	addr, bound, err := dh.WaitAddress(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}

	// A stopped server reads nothing: the Renew at T1 goes unanswered.
	if err := x.d.Process().Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitOutput(ctx, regexp.MustCompile(`Rebind on cli0`)); err != nil {
		_ = x.d.Process().Signal(syscall.SIGCONT)
		t.Fatal(err)
	}
	if err := x.d.Process().Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	rebound, _, err := dh.WaitAddress(ctx, bound+1, "REBIND6")
	if err != nil {
		t.Fatal(err)
	}
	if rebound != addr {
		t.Errorf("rebound %v, want the bound %v", rebound, addr)
	}
	if l := leaseOf(t, x.d, hostPrefix(addr)); l.State != "leased" {
		t.Errorf("lease of %v after Rebind: %q", addr, l.State)
	}
}
