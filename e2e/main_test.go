// Package e2e runs hook6d, the real binary, in network namespaces against
// the DHCPv6 clients, relay and load generator that operators use
// (dhclient, dhcpcd, dhcrelay, perfdhcp), and checks what they get on the
// wire and what the server keeps on disk.
package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
)

// bins are hook6d and hook6ctl, built once for the whole run.
var bins lab.Binaries

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: the end-to-end tests create network namespaces and must run as root (make test does)")
		return 1
	}
	if err := lab.RequireTools("ip", "sysctl", "dhclient", "dhcpcd", "dhcrelay", "perfdhcp"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "hook6-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	bins, err = lab.Build(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// The direct lab: the server's srv0 and the client's cli0 share one link,
// served as link "lan" with the prefixes of issue #2's configuration.
const (
	srvIf = "srv0"
	cliIf = "cli0"
)

var (
	lanAddr  = netip.MustParsePrefix("2001:db8:1::/64")
	lanRange = netip.MustParsePrefix("2001:db8:1::/65")
	lanPD    = netip.MustParsePrefix("2001:db8:8000::/40")
)

// baseConfig is issue #2's configuration with lifetimes short enough that
// clients renew within seconds.
func baseConfig() lab.Config {
	pref := 255
	return lab.Config{
		Server: lab.ServerConfig{Interfaces: []string{srvIf}},
		Log:    &lab.LogConfig{Level: "info"},
		Policies: map[string]lab.Policy{"default": {
			PreferredLifetime: "20s",
			ValidLifetime:     "40s",
			T1:                "4s",
			T2:                "6s",
			AllowRapidCommit:  true,
			Options:           &lab.PolicyOptions{Preference: &pref, DNSServers: []string{"2001:db8::53"}},
		}},
		Links: []lab.Link{{Name: "lan", Interface: srvIf}},
		Prefixes: []lab.Prefix{
			{Name: "lan-addr", Link: "lan", Address: lanAddr.String(), Range: lanRange.String(), DHCPType: "dhcp", Policy: "default"},
			{Name: "lan-pd", Link: "lan", Address: lanPD.String(), DHCPType: "prefix-delegation", PrefixLength: 56, Policy: "default"},
		},
	}
}

// direct is a server and a client namespace on one link, hook6d serving.
type direct struct {
	lab      *lab.Lab
	srv, cli *lab.Netns
	d        *lab.Hook6d
}

// newDirect starts hook6d with baseConfig, changed by edit when not nil.
func newDirect(t *testing.T, edit func(*lab.Config)) *direct {
	t.Helper()
	l := lab.New(t)
	srv := l.Namespace("srv")
	cli := l.Namespace("cli")
	l.Link(srv, srvIf, cli, cliIf)
	srv.AddAddr(srvIf, netip.MustParsePrefix("2001:db8:1::1/64"))
	srv.MustLinkLocal(srvIf)
	cli.MustLinkLocal(cliIf)
	cfg := baseConfig()
	if edit != nil {
		edit(&cfg)
	}
	return &direct{lab: l, srv: srv, cli: cli, d: l.StartHook6d(srv, bins, cfg)}
}

// timeout returns a context that ends after d or with the test.
func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// leases lists the daemon's leases (with hook6ctl filter arguments).
func leases(t testing.TB, d *lab.Hook6d, args ...string) []lab.Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ls, err := d.Ctl().Leases(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// leaseOf returns the lease of exactly p, failing the test if there is none.
func leaseOf(t testing.TB, d *lab.Hook6d, p netip.Prefix) lab.Lease {
	t.Helper()
	for _, l := range leases(t, d, "--prefix", p.String()) {
		if l.Prefix == p {
			return l
		}
	}
	t.Fatalf("hook6ctl lease list shows no lease of %v", p)
	return lab.Lease{}
}

// waitLease polls the lease of p until ok accepts it (or its absence: ok
// gets found=false).
func waitLease(t *testing.T, ctx context.Context, d *lab.Hook6d, p netip.Prefix, ok func(l lab.Lease, found bool) bool) lab.Lease {
	t.Helper()
	for {
		var cur lab.Lease
		found := false
		for _, l := range leases(t, d, "--prefix", p.String()) {
			if l.Prefix == p {
				cur, found = l, true
			}
		}
		if ok(cur, found) {
			return cur
		}
		select {
		case <-ctx.Done():
			t.Fatalf("lease of %v: last seen %+v (found %v): %v", p, cur, found, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// normDUID writes a DUID as lower-case hex without separators, from the
// forms hook6ctl ("00:01:…"), dhclient ("0:1:…") and dhcpcd ("0001…") use.
func normDUID(s string) string {
	if !strings.Contains(s, ":") {
		return strings.ToLower(s)
	}
	var b strings.Builder
	for _, part := range strings.Split(s, ":") {
		if len(part) == 1 {
			b.WriteByte('0')
		}
		b.WriteString(strings.ToLower(part))
	}
	return b.String()
}

// hostPrefix is a as a /128.
func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, 128) }

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
