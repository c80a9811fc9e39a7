package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
	"github.com/hook6/hook6/ldapsource/ldaptest"
)

// The LDAP lab: one server namespace whose bridge br0 is link "lan", three
// client namespaces on it, and slapd running in the server namespace on
// its loopback. lan-pd leases only what the directory names
// (allocation-algorithms [extension]); lan-addr is an ordinary pool that
// never asks the directory.
type ldapLab struct {
	lab  *lab.Lab
	srv  *lab.Netns
	clis []*lab.Netns
	dir  *ldaptest.Server
	d    *lab.Hook6d
}

const (
	dirTTL = 3 * time.Second // the cache's ttl in this lab
	brIf   = "br0"
)

func newLDAPLab(t *testing.T, clients int) *ldapLab {
	t.Helper()
	if _, err := exec.LookPath("slapd"); err != nil {
		if _, err := os.Stat("/usr/sbin/slapd"); err != nil {
			t.Fatal("slapd is not installed (make deps installs slapd and ldap-utils)")
		}
	}
	x := &ldapLab{lab: lab.New(t)}
	x.srv = x.lab.Namespace("srv")
	ctx := timeout(t, 30*time.Second)
	mustRun(t, x.srv, ctx, "ip", "link", "add", brIf, "type", "bridge", "mcast_snooping", "0")
	for i := range clients {
		cli := x.lab.Namespace(fmt.Sprintf("cli%d", i))
		x.lab.Link(x.srv, fmt.Sprintf("srv%d", i), cli, cliIf)
		mustRun(t, x.srv, ctx, "ip", "link", "set", fmt.Sprintf("srv%d", i), "master", brIf)
		x.clis = append(x.clis, cli)
	}
	mustRun(t, x.srv, ctx, "ip", "link", "set", brIf, "up")
	x.srv.AddAddr(brIf, netip.MustParsePrefix("2001:db8:1::1/64"))
	x.srv.MustLinkLocal(brIf)
	for _, c := range x.clis {
		c.MustLinkLocal(cliIf)
	}
	x.dir = ldaptest.Start(t, ldaptest.Options{Command: func(name string, args ...string) *exec.Cmd {
		return x.srv.Command(context.Background(), name, args...)
	}})

	cfg := baseConfig()
	cfg.Server.Interfaces = []string{brIf}
	cfg.Links = []lab.Link{{Name: "lan", Interface: brIf}}
	cfg.Prefixes[1].AllocationAlgorithms = []string{"extension"}
	cfg.Extensions = []lab.Extension{
		{Name: "directory", Builtin: "ldap-cache", Points: []string{"generate-lease", "check-lease-acceptable", "pre-packet-encode"},
			InitArgs: map[string]string{
				"urls":          x.dir.URL,
				"bind-dn":       ldaptest.BindDN,
				"password-file": x.dir.PasswordFile,
				"base-dn":       ldaptest.ClientsDN,
				"filter":        "(&(objectClass=hook6Client)(hook6ClientDUID={duid}))",
				"attributes":    "hook6DelegatedPrefix=ldap.prefix",
				"prefixes":      "lan-pd",
				"ttl":           dirTTL.String(),
				"negative-ttl":  "2s",
				"max-stale":     "10m",
				"max-backoff":   "500ms",
				"workers":       "2",
				"queue":         "16",
			}},
		{Name: "lease-from-directory", Builtin: "env-lease", Points: []string{"generate-lease", "check-lease-acceptable"},
			InitArgs: map[string]string{"key": "ldap.address", "pd-key": "ldap.prefix"}},
	}
	x.d = x.lab.StartHook6d(x.srv, bins, cfg)
	return x
}

func mustRun(t *testing.T, ns *lab.Netns, ctx context.Context, name string, args ...string) {
	t.Helper()
	if out, err := ns.Run(ctx, name, args...); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// dhclientWithDUID prepares dhclient in ns with a DUID-LL of our choice,
// written to its lease file as default-duid, so the directory can know the
// client before it ever sends a packet.
func (x *ldapLab) dhclientWithDUID(t *testing.T, ns *lab.Netns, duidHex string) *lab.Dhclient {
	t.Helper()
	dh := x.lab.Dhclient(ns, cliIf)
	var b strings.Builder
	b.WriteString(`default-duid "`)
	for i := 0; i+1 < len(duidHex); i += 2 {
		var v byte
		fmt.Sscanf(duidHex[i:i+2], "%02x", &v)
		fmt.Fprintf(&b, "\\%03o", v)
	}
	b.WriteString("\";\n")
	if err := os.WriteFile(dh.LeaseFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dh
}

// stat returns one counter of hook6ctl stats.
func (x *ldapLab) stat(t *testing.T, parts ...string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := x.d.Ctl().Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sum(parts...)
}

// dhclient -6 -P of a client registered in the directory: its first
// Solicit is dropped while the directory is asked, a retransmission gets
// the directory's prefix, and the lease is the directory's.
func TestLDAPDelegation(t *testing.T) {
	x := newLDAPLab(t, 1)
	const duid = "000300010200000000a1"
	p1 := netip.MustParsePrefix("2001:db8:8000:4100::/56")
	x.dir.AddClient("e2e-a", map[string]string{"hook6ClientDUID": duid, "hook6DelegatedPrefix": p1.String()})

	ctx := timeout(t, 90*time.Second)
	dh := x.dhclientWithDUID(t, x.clis[0], duid)
	start := time.Now()
	dh.Start(lab.DhclientMode{PD: true})
	got, _, err := dh.WaitPrefix(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	if got != p1 {
		t.Fatalf("bound %v, want the directory's %v", got, p1)
	}
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Errorf("bound after %v: the first Solicit was answered, not dropped", took)
	}
	if n := x.stat(t, "extensions.directory.drops"); n < 1 {
		t.Errorf("directory drops = %v, want ≥ 1 (the first Solicit)", n)
	}
	if l := leaseOf(t, x.d, p1); l.Kind != "pd" || l.State != "leased" || normDUID(l.DUID) != duid {
		t.Errorf("lease of %v: %+v", p1, l)
	}

}

// slapd stopped: a client with a cached entry keeps renewing its prefix,
// a registered client never cached gets nothing, a client of the ordinary
// pool is served at once; slapd restarted: the waiting client gets its
// prefix without anyone acting.
func TestLDAPDirectoryDown(t *testing.T) {
	x := newLDAPLab(t, 3)
	const duidA, duidB, duidC = "000300010200000000b1", "000300010200000000b2", "000300010200000000b3"
	pA := netip.MustParsePrefix("2001:db8:8000:5100::/56")
	pB := netip.MustParsePrefix("2001:db8:8000:5200::/56")
	x.dir.AddClient("e2e-a", map[string]string{"hook6ClientDUID": duidA, "hook6DelegatedPrefix": pA.String()})
	x.dir.AddClient("e2e-b", map[string]string{"hook6ClientDUID": duidB, "hook6DelegatedPrefix": pB.String()})

	ctx := timeout(t, 120*time.Second)
	a := x.dhclientWithDUID(t, x.clis[0], duidA)
	a.Start(lab.DhclientMode{PD: true})
	got, bound, err := a.WaitPrefix(ctx, 0, "BOUND6")
	if err != nil || got != pA {
		t.Fatalf("client A bound %v, %v; want %v", got, err, pA)
	}

	x.dir.Stop()
	down := time.Now()
	// A renews every T1 (4s); its entry goes stale after the TTL and is
	// served while the directory fails.
	from := bound + 1
	for n := 0; n < 3; n++ {
		p, i, err := a.WaitPrefix(ctx, from, "RENEW6")
		if err != nil || p != pA {
			t.Fatalf("client A's renewal %d with slapd down: %v, %v", n+1, p, err)
		}
		from = i + 1
	}
	if time.Since(down) < dirTTL {
		t.Fatalf("renewals came before the entry went stale")
	}

	// C asks only for an address from the ordinary pool: not delayed.
	c := x.dhclientWithDUID(t, x.clis[2], duidC)
	start := time.Now()
	c.Start(lab.DhclientMode{NA: true})
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	addr, _, err := c.WaitAddress(cctx, 0, "BOUND6")
	cancel()
	if err != nil || !lanRange.Contains(addr) {
		t.Fatalf("client C (no directory) with slapd down: %v %v", addr, err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("client C bound after %v with slapd down", took)
	}

	// B is registered but was never cached: nothing while slapd is down.
	b := x.dhclientWithDUID(t, x.clis[1], duidB)
	b.Start(lab.DhclientMode{PD: true})
	bctx, cancel := context.WithTimeout(ctx, 6*time.Second)
	if p, _, err := b.WaitPrefix(bctx, 0, "BOUND6"); err == nil {
		t.Fatalf("client B bound %v with slapd down", p)
	}
	cancel()
	if n := x.stat(t, "extensions.directory.drops"); n < 1 {
		t.Errorf("directory drops = %v with client B waiting", n)
	}

	x.dir.Restart()
	if p, _, err := b.WaitPrefix(ctx, 0, "BOUND6"); err != nil || p != pB {
		t.Fatalf("client B after slapd restart: %v %v, want %v", p, err, pB)
	}
	if p, _, err := a.WaitPrefix(ctx, from, "RENEW6"); err != nil || p != pA {
		t.Fatalf("client A after restart: %v %v", p, err)
	}
}

// perfdhcp, 100,000 clients registered in the directory, each getting its
// /56 from it: once the cache is warm (a first avalanche, in which every
// client's first Solicit is dropped and its retransmission served), the
// server provisions the clients at ≥ 80% of the rate it reaches with no
// directory at all (lan-pd allocating at random). A benchmark, not a test:
// go test -run '^$' -bench LDAPPerfdhcp -benchtime 1x ./e2e/
func BenchmarkLDAPPerfdhcp(b *testing.B) {
	t := b
	const n = 100000
	l := lab.New(t)
	srv, cli := l.Namespace("srv"), l.Namespace("cli")
	l.Link(srv, srvIf, cli, cliIf)
	srv.AddAddr(srvIf, netip.MustParsePrefix("2001:db8:1::1/64"))
	srv.MustLinkLocal(srvIf)
	cli.MustLinkLocal(cliIf)
	loadStart := time.Now()
	dir := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ClientsLDIF(n), Command: func(name string, args ...string) *exec.Cmd {
		return srv.Command(context.Background(), name, args...)
	}})
	t.Logf("slapd with %d clients ready in %v", n, time.Since(loadStart).Round(time.Millisecond))

	// With these bases perfdhcp's client i has DUID-LL 00030001 + the
	// 6-byte i: the DUID of ldaptest's generated client i.
	avalanche := func(ctx context.Context) lab.PerfResult {
		t.Helper()
		res, err := cli.Perfdhcp(ctx, lab.PerfOptions{Iface: cliIf, Rate: 3000, Clients: n,
			Extra: []string{"--scenario", "avalanche", "-e", "prefix-only",
				"-b", "duid=00030001000000000000", "-b", "mac=00:00:00:00:00:00"}})
		if err != nil {
			t.Fatal(err)
		}
		if rr := res.Exchanges["REQUEST-REPLY"]; rr.Received < n*99/100 || rr.RejectedLeases != 0 || rr.NonUnique != 0 {
			t.Fatalf("avalanche: REQUEST-REPLY %+v, want %d clients provisioned:\n%s", rr, n, res.Output)
		}
		return res
	}
	cfg := func() lab.Config {
		c := baseConfig()
		c.Log = &lab.LogConfig{Level: "warn"}
		c.Policies["default"] = lab.Policy{PreferredLifetime: "1h", ValidLifetime: "2h"}
		c.Prefixes[1].Address = "2001:db8:8000::/33" // ldaptest's generated clients' prefixes
		return c
	}
	ctx := timeout(t, 15*time.Minute)

	base := cfg()
	d := l.StartHook6d(srv, bins, base)
	avalanche(ctx) // every client gets a lease
	baseRate := avalanche(ctx).Rate
	d.Stop()

	withDir := cfg()
	withDir.Prefixes[1].AllocationAlgorithms = []string{"extension"}
	withDir.Extensions = []lab.Extension{
		{Name: "directory", Builtin: "ldap-cache", Points: []string{"post-packet-decode", "generate-lease", "pre-packet-encode"},
			InitArgs: map[string]string{
				"urls": dir.URL, "bind-dn": ldaptest.BindDN, "password-file": dir.PasswordFile,
				"base-dn": ldaptest.ClientsDN, "filter": "(hook6ClientDUID={duid})",
				"attributes": "hook6DelegatedPrefix=ldap.prefix", "ttl": "1h",
				"workers": "8", "pool-size": "8", "queue": "4096",
			}},
		{Name: "lease-from-directory", Builtin: "env-lease", Points: []string{"generate-lease"},
			InitArgs: map[string]string{"key": "ldap.address", "pd-key": "ldap.prefix"}},
	}
	d = l.StartHook6d(srv, bins, withDir)
	warm := time.Now()
	avalanche(ctx) // cold: first Solicits dropped, the cache fills
	t.Logf("cold avalanche (directory queried for every client) took %v", time.Since(warm).Round(time.Millisecond))
	dirRate := avalanche(ctx).Rate

	// Every lease is the directory's.
	for _, i := range []int{0, 1, n / 2, n - 1} {
		duid, prefix := ldaptest.GeneratedClient(i)
		if l := leaseOf(t, d, mustPrefix(t, prefix)); normDUID(l.DUID) != duid {
			t.Errorf("lease of %s: DUID %s, want the directory's %s", prefix, l.DUID, duid)
		}
	}
	t.Logf("perfdhcp avalanche, %d clients: %.0f exchanges/s without the directory, %.0f with it (cache warm): %.0f%%",
		n, baseRate, dirRate, 100*dirRate/baseRate)
	b.ReportMetric(baseRate, "exchanges/s-without")
	b.ReportMetric(dirRate, "exchanges/s-ldap")
	if dirRate < 0.8*baseRate {
		t.Errorf("with the directory %.0f exchanges/s, under 80%% of %.0f without", dirRate, baseRate)
	}
}

// TestLDAPChangedEntry: the client's entry changed in the directory gives,
// once the cache's TTL has passed, the new prefix at the next renewal, the
// old one sent with lifetime 0.
func TestLDAPChangedEntry(t *testing.T) {
	x := newLDAPLab(t, 1)
	const duid = "000300010200000000c1"
	p1 := netip.MustParsePrefix("2001:db8:8000:4100::/56")
	p2 := netip.MustParsePrefix("2001:db8:8000:4200::/56")
	x.dir.AddClient("e2e-c", map[string]string{"hook6ClientDUID": duid, "hook6DelegatedPrefix": p1.String()})
	ctx := timeout(t, 90*time.Second)
	dh := x.dhclientWithDUID(t, x.clis[0], duid)
	dh.Start(lab.DhclientMode{PD: true})
	got, bound, err := dh.WaitPrefix(ctx, 0, "BOUND6")
	if err != nil || got != p1 {
		t.Fatalf("bound %v, %v; want %v", got, err, p1)
	}
	x.dir.SetAttr("e2e-c", "hook6DelegatedPrefix", p2.String())
	changed := time.Now()
	// The Renew that finds the cache entry stale is dropped while the
	// directory is asked again; its retransmission, or the Rebind that
	// follows it, carries the new prefix.
	ev, _, err := dh.WaitEvent(ctx, bound+1, "", func(e lab.Event) bool {
		return (e.Reason == "RENEW6" || e.Reason == "REBIND6") && e.Vars["new_ip6_prefix"] == p2.String()
	})
	if err != nil {
		t.Fatalf("no renewal with the new prefix %v: %v", p2, err)
	}
	if took := time.Since(changed); took < dirTTL-time.Second {
		t.Errorf("new prefix %v after %v, before the TTL %v", p2, took, dirTTL)
	}
	if old := ev.Vars["old_ip6_prefix"]; old != "" && old != p1.String() {
		t.Errorf("old prefix %q, want %v", old, p1)
	}
	waitLease(t, ctx, x.d, p1, func(l lab.Lease, found bool) bool { return !found || l.State != "leased" })
	if l := leaseOf(t, x.d, p2); l.State != "leased" {
		t.Errorf("lease of %v: %+v", p2, l)
	}
}
