package e2e

import (
	"net/netip"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// A client behind ISC dhcrelay, on a link the server has no interface on,
// gets an address and a prefix of that link (chosen by the relay's
// link-address), through Relay-forw/Relay-repl with an Interface-ID the
// server must echo, and renews them through the relay.
func TestRelayedClient(t *testing.T) {
	remoteAddr := netip.MustParsePrefix("2001:db8:2::/64")
	remotePD := netip.MustParsePrefix("2001:db8:9000::/40")
	l := lab.New(t)
	srv := l.Namespace("srv")
	rel := l.Namespace("rel")
	cli := l.Namespace("cli")
	l.Link(srv, "up0", rel, "rup")
	l.Link(rel, "rdown", cli, cliIf)
	srvAddr := netip.MustParsePrefix("2001:db8:ff::1/64")
	srv.AddAddr("up0", srvAddr)
	rel.AddAddr("rup", netip.MustParsePrefix("2001:db8:ff::2/64"))
	rel.AddAddr("rdown", netip.MustParsePrefix("2001:db8:2::1/64"))
	cli.MustLinkLocal(cliIf)
	rel.MustLinkLocal("rdown")

	cfg := baseConfig()
	// The server serves no interface on the client's link: only relayed
	// traffic reaches it, on its upstream address.
	cfg.Server.Interfaces = nil
	cfg.Links = []lab.Link{{Name: "remote"}}
	cfg.Prefixes = []lab.Prefix{
		{Name: "remote-addr", Link: "remote", Address: remoteAddr.String(), DHCPType: "dhcp", Policy: "default"},
		{Name: "remote-pd", Link: "remote", Address: remotePD.String(), DHCPType: "prefix-delegation", PrefixLength: 56, Policy: "default"},
	}
	d := l.StartHook6d(srv, bins, cfg)
	l.StartDhcrelay(rel, lab.RelayOptions{Lower: "rdown", Upper: "rup", Server: srvAddr.Addr(), InterfaceID: true})

	ctx := timeout(t, 60*time.Second)
	dh := l.Dhclient(cli, cliIf)
	dh.Start(lab.DhclientMode{NA: true, PD: true})
	addr, ia, err := dh.WaitAddress(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	pfx, ip, err := dh.WaitPrefix(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	if !remoteAddr.Contains(addr) {
		t.Errorf("relayed client bound %v, want an address of the relay's link %v", addr, remoteAddr)
	}
	if pfx.Bits() != 56 || !remotePD.Contains(pfx.Addr()) {
		t.Errorf("relayed client got prefix %v, want a /56 inside %v", pfx, remotePD)
	}
	for _, p := range []netip.Prefix{hostPrefix(addr), pfx} {
		if ls := leaseOf(t, d, p); ls.Link != "remote" || ls.State != "leased" {
			t.Errorf("lease of %v: link %q state %q, want remote leased", p, ls.Link, ls.State)
		}
	}
	renewed, _, err := dh.WaitAddress(ctx, max(ia, ip)+1, "RENEW6")
	if err != nil {
		t.Fatal(err)
	}
	if renewed != addr {
		t.Errorf("renewed %v through the relay, want %v", renewed, addr)
	}
}
