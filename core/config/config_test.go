package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

func mustLoad(t *testing.T, path string) *Config {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	return c
}

func dur(d time.Duration) Duration { return Duration(d) }

// TestBriefConfig loads the configuration every helper was given and checks
// what it says and what defaults fill in.
func TestBriefConfig(t *testing.T) {
	c := mustLoad(t, "testdata/brief.yaml")
	if c.File != "testdata/brief.yaml" {
		t.Errorf("File = %q", c.File)
	}
	s := c.Server
	if !slices.Equal(s.Interfaces, []string{"eth1"}) || s.StateDir != "/var/lib/hook6" || s.Listen != "[::]:547" ||
		s.Workers != DefaultWorkers || s.ServerDUID != nil {
		t.Errorf("Server = %+v", s)
	}
	if c.Control.Socket != "/run/hook6/control.sock" || c.Plugins.Dir != "/var/lib/hook6/plugins" ||
		c.Metrics.Listen != "" || c.Log != (Log{Level: "info", Format: "text"}) {
		t.Errorf("control %+v plugins %+v metrics %+v log %+v", c.Control, c.Plugins, c.Metrics, c.Log)
	}
	pol := c.Policy("default")
	if pol == nil || len(c.Policies) != 1 {
		t.Fatalf("policies = %v", c.Policies)
	}
	if pol.PreferredLifetime != dur(time.Hour) || pol.ValidLifetime != dur(2*time.Hour) ||
		*pol.T1 != dur(30*time.Minute) || *pol.T2 != dur(48*time.Minute) || !pol.AllowRapidCommit ||
		pol.MaxLeasesPerBinding != 0 {
		t.Errorf("policy = %+v T1 %v T2 %v", pol, *pol.T1, *pol.T2)
	}
	if *pol.Options.Preference != 255 || !slices.Equal(pol.Options.DNSServers, []netip.Addr{netip.MustParseAddr("2001:db8::53")}) {
		t.Errorf("options = %+v", pol.Options)
	}
	if len(c.Links) != 1 || *c.LinkByName("lan") != (Link{Name: "lan", Interface: "eth1", Policy: "default"}) {
		t.Errorf("links = %+v", c.Links)
	}
	want := []Prefix{{
		Name: "lan-addr", Link: "lan", Address: netip.MustParsePrefix("2001:db8:1::/64"),
		Range: netip.MustParsePrefix("2001:db8:1::/65"), DHCPType: TypeDHCP,
		AllocationAlgorithms: []string{"reservation", "client-request", "random"}, Policy: "default",
	}, {
		Name: "lan-pd", Link: "lan", Address: netip.MustParsePrefix("2001:db8:8000::/40"), DHCPType: TypePrefixDelegation,
		AllocationAlgorithms: []string{"reservation", "client-request", "best-fit"}, PrefixLength: 56, Policy: "default",
	}}
	if len(c.Prefixes) != 2 || !reflect.DeepEqual(*c.Prefixes[0], want[0]) || !reflect.DeepEqual(*c.Prefixes[1], want[1]) {
		t.Errorf("prefixes = %+v %+v", c.Prefixes[0], c.Prefixes[1])
	}
	if c.Prefixes[0].Pool() != want[0].Range || c.Prefixes[1].Pool() != want[1].Address {
		t.Errorf("pools %v %v", c.Prefixes[0].Pool(), c.Prefixes[1].Pool())
	}
	if c.Failover != nil || c.Extensions != nil || c.Reservations != nil {
		t.Errorf("unexpected sections")
	}
}

// TestDesignConfig loads the example of DESIGN.md.
func TestDesignConfig(t *testing.T) {
	c := mustLoad(t, "testdata/design.yaml")
	pol := c.Policy("default")
	if pol.PreferredLifetime != dur(7*24*time.Hour) || pol.ValidLifetime != dur(14*24*time.Hour) || pol.MaxLeasesPerBinding != 1 {
		t.Errorf("policy = %+v", pol)
	}
	e := c.Extensions[0]
	if e.Name != "prefer" || e.Script != filepath.Join("testdata", "examples/scripts/preference.go") ||
		!slices.Equal(e.Points, []string{"pre-packet-encode"}) || e.InitArgs["value"] != "255" ||
		e.Budget != dur(50*time.Millisecond) || e.FailureMode != FailContinue {
		t.Errorf("extension = %+v", e)
	}
}

func TestDefaultConfig(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Server.Interfaces) != 0 || c.Server.StateDir != "./var" || c.Server.Listen != "[::]:547" ||
		c.Control.Socket != "./var/control.sock" || c.Plugins.Dir != "var/plugins" {
		t.Errorf("server %+v control %+v plugins %+v", c.Server, c.Control, c.Plugins)
	}
	l := c.LinkByName("lab")
	if l == nil || len(c.Links) != 1 || len(c.PrefixesOn("lab")) != 2 {
		t.Fatalf("links %+v prefixes %+v", c.Links, c.Prefixes)
	}
}

// TestFullConfig loads a file using every key and checks each value read.
func TestFullConfig(t *testing.T) {
	c := mustLoad(t, "testdata/full.yaml")
	s := c.Server
	if s.StateDir != "/srv/hook6" || s.Listen != "[2001:db8::1]:547" || s.Workers != 16 ||
		s.ServerDUID.String() != "00:01:00:01:2b:3c:4d:5e:00:11:22:33:44:55" {
		t.Errorf("server = %+v", s)
	}
	if c.Control.Socket != "/run/hook6/ctl.sock" || c.Metrics.Listen != "127.0.0.1:9547" ||
		c.Log != (Log{"debug", "json"}) || c.Plugins.Dir != "/opt/hook6/plugins" {
		t.Errorf("control/metrics/log/plugins: %+v %+v %+v %+v", c.Control, c.Metrics, c.Log, c.Plugins)
	}

	gold := c.Policy("gold")
	if !gold.PreferredLifetime.IsInfinite() || !gold.ValidLifetime.IsInfinite() || *gold.T1 != dur(24*time.Hour) ||
		*gold.T2 != dur(48*time.Hour) || !gold.AllowRapidCommit ||
		!slices.Equal(gold.Options.DomainSearch, []string{"example.com", "lab.example.com."}) ||
		gold.Options.SNTPServers[0] != netip.MustParseAddr("2001:db8::123") ||
		*gold.Options.InformationRefreshTime != dur(7*24*time.Hour) {
		t.Errorf("gold = %+v", gold)
	}
	short := c.Policy("short") // merged from gold, lifetimes overridden
	if short.PreferredLifetime != dur(30*time.Minute) || short.ValidLifetime != dur(time.Hour) ||
		*short.T1 != dur(10*time.Minute) || *short.T2 != dur(20*time.Minute) || !short.AllowRapidCommit ||
		len(short.Options.DomainSearch) != 2 {
		t.Errorf("short = %+v", short)
	}
	if d := c.Policy("default"); len(d.Options.DNSServers) != 2 || d.MaxLeasesPerBinding != 1 {
		t.Errorf("default = %+v", d)
	}

	if office := c.LinkByName("office"); office.InterfaceID != "Ethernet0/1" || office.Policy != "gold" {
		t.Errorf("office = %+v", office)
	}
	// "standalone" names no link: it is a link of its own.
	if l := c.LinkByName("standalone"); l == nil || c.PrefixByName("standalone").Link != "standalone" || l.Policy != "default" {
		t.Errorf("standalone link %+v", l)
	}
	if p := c.PrefixByName("office-addr"); p.Policy != "gold" || p.DHCPType != TypeDHCP {
		t.Errorf("office-addr inherits its link's policy: %+v", p)
	}
	if p := c.PrefixByName("lan-pd"); p.PrefixLength != 60 || !slices.Equal(p.AllocationAlgorithms, []string{"reservation", "best-fit"}) {
		t.Errorf("lan-pd = %+v", p)
	}

	r0, r1 := c.Reservations[0], c.Reservations[1]
	if r0.Link != "lan" || r0.Prefix != netip.MustParsePrefix("2001:db8:8000:100::/56") || len(r0.DUID) != 14 {
		t.Errorf("reservation 0 = %+v", r0)
	}
	if r1.Link != "office" || r1.DUID.String() != "00:03:00:01:00:11:22:33:44:ff" {
		t.Errorf("reservation 1 = %+v", r1)
	}

	ldap, prefer, audit := c.Extensions[0], c.Extensions[1], c.Extensions[2]
	if !slices.Equal(ldap.Points, []string{"post-packet-decode", "generate-lease"}) || ldap.InitArgs["ttl"] != "300" ||
		ldap.Budget != dur(200*time.Millisecond) || ldap.FailureMode != FailDrop || ldap.Builtin != "async-cache" {
		t.Errorf("ldap = %+v", ldap)
	}
	if prefer.Script != "testdata/scripts/preference.go" ||
		!slices.Equal(prefer.Allow.Files, []string{"testdata/data/prefs.csv", "/etc/hook6/extra.csv"}) ||
		!prefer.Allow.Network || !prefer.Allow.Goroutines {
		t.Errorf("prefer = %+v", prefer)
	}
	if audit.Plugin != "audit@1.2.0" {
		t.Errorf("audit = %+v", audit)
	}

	f := c.Failover
	if f.Role != RolePrimary || f.Name != "pair-a" || f.Local != "[2001:db8::1]:647" || f.Peer != "[2001:db8::2]:647" ||
		f.MCLT != dur(30*time.Minute) || f.AutoPartnerDown != dur(time.Hour) || f.MaxUnacked != 20 ||
		f.Keepalive != dur(5*time.Second) {
		t.Errorf("failover = %+v", f)
	}
	if *f.TLS != (FailoverTLS{Cert: "testdata/tls/server.pem", Key: "testdata/tls/server.key", CA: "/etc/hook6/ca.pem"}) {
		t.Errorf("tls = %+v", f.TLS)
	}
}

// TestDefaults checks what an almost empty file turns into.
func TestDefaults(t *testing.T) {
	c, err := Parse("/etc/hook6/min.yaml", []byte("prefixes:\n  - {name: p, address: 2001:db8::/64}\nfailover:\n  role: secondary\n  peer: \"peer.example:7647\"\n  tls: {insecure: true}\nextensions:\n  - {name: e, script: e.go, points: [generate-lease]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.StateDir != DefaultStateDir || c.Control.Socket != "/var/lib/hook6/control.sock" ||
		c.Plugins.Dir != "/var/lib/hook6/plugins" || c.Server.Listen != DefaultListen || c.Log.Level != "info" || c.Log.Format != "text" {
		t.Errorf("defaults: %+v %+v %+v %+v", c.Server, c.Control, c.Plugins, c.Log)
	}
	pol := c.Policy(DefaultPolicy)
	if pol == nil || pol.PreferredLifetime != DefaultPreferredLifetime || pol.ValidLifetime != DefaultValidLifetime ||
		*pol.T1 != dur(30*time.Minute) || *pol.T2 != dur(48*time.Minute) || pol.Options.Preference != nil {
		t.Errorf("default policy = %+v", pol)
	}
	p := c.Prefixes[0]
	if p.Link != "p" || p.DHCPType != TypeDHCP || p.Policy != DefaultPolicy || p.Range.IsValid() ||
		!slices.Equal(p.AllocationAlgorithms, DefaultAlgorithms(TypeDHCP)) {
		t.Errorf("prefix = %+v", p)
	}
	if l := c.LinkByName("p"); l == nil || *l != (Link{Name: "p", Policy: DefaultPolicy}) {
		t.Errorf("implicit link = %+v", l)
	}
	if e := c.Extensions[0]; e.Script != "/etc/hook6/e.go" || e.Budget != DefaultBudget || e.FailureMode != FailContinue {
		t.Errorf("extension = %+v", e)
	}
	f := c.Failover
	if f.Name != DefaultFailoverName || f.Local != "[::]:647" || f.Peer != "peer.example:7647" || f.MCLT != DefaultMCLT ||
		f.MaxUnacked != DefaultMaxUnacked || f.Keepalive != DefaultKeepalive || f.AutoPartnerDown != 0 || !f.TLS.Insecure {
		t.Errorf("failover = %+v", f)
	}
	if c.Policy("nope") != nil || c.LinkByName("nope") != nil || c.PrefixByName("nope") != nil {
		t.Error("lookups of unknown names must give nil")
	}
}

func TestEmptyFile(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "---\n", "~\n"} {
		c, err := Parse("e.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if c.Policy(DefaultPolicy) == nil || c.Server.StateDir != DefaultStateDir {
			t.Errorf("%q: defaults not filled: %+v", src, c)
		}
	}
}

// TestRenewalDefaults checks T1/T2 defaults against whichever is given.
func TestRenewalDefaults(t *testing.T) {
	for _, tc := range []struct {
		policy string
		t1, t2 Duration
	}{
		{"{preferred-lifetime: 1h}", dur(30 * time.Minute), dur(48 * time.Minute)},
		{"{preferred-lifetime: 1h, t1: 55m}", dur(55 * time.Minute), dur(55 * time.Minute)},
		{"{preferred-lifetime: 1h, t2: 10m}", dur(10 * time.Minute), dur(10 * time.Minute)},
		{"{preferred-lifetime: 1h, t1: 0, t2: 0}", 0, 0},
		{"{preferred-lifetime: infinity, valid-lifetime: infinity}", Infinity, Infinity},
	} {
		c, err := Parse("r.yaml", []byte("policies:\n  default: "+tc.policy+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", tc.policy, err)
		}
		if p := c.Policy("default"); *p.T1 != tc.t1 || *p.T2 != tc.t2 {
			t.Errorf("%s: T1 %v T2 %v, want %v %v", tc.policy, *p.T1, *p.T2, tc.t1, tc.t2)
		}
	}
}

// TestAddressSpellings checks the ways an IPv6 address or prefix can be
// written, including inside flow collections where goccy's parser splits
// them at the first colon.
func TestAddressSpellings(t *testing.T) {
	src := `policies:
  default:
    options: {dns-servers: [2001:db8::53, fe80::1, 2001:db8::, "::1", 2001:DB8:0:0:1::1, '2001:db8::2']}
  block:
    options:
      dns-servers: [2001:db8::53, ::1]
      sntp-servers:
        - 2001:db8::123
        - ::2
prefixes: [{name: p, address: 2001:db8::/64}, {name: q, address: "2001:db8:1::/64"}]
`
	c, err := Parse("a.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range c.Policy("default").Options.DNSServers {
		got = append(got, a.String())
	}
	want := []string{"2001:db8::53", "fe80::1", "2001:db8::", "::1", "2001:db8::1:0:0:1", "2001:db8::2"}
	if !slices.Equal(got, want) {
		t.Errorf("flow addresses = %v, want %v", got, want)
	}
	b := c.Policy("block").Options
	if b.DNSServers[1] != netip.MustParseAddr("::1") || b.SNTPServers[1] != netip.MustParseAddr("::2") {
		t.Errorf("block addresses = %v %v", b.DNSServers, b.SNTPServers)
	}
	if c.Prefixes[1].Address != netip.MustParsePrefix("2001:db8:1::/64") {
		t.Errorf("prefix = %v", c.Prefixes[1].Address)
	}
	// A real one-pair mapping (space after the colon) is not an address.
	_, err = Parse("a.yaml", []byte("policies:\n  default: {options: {dns-servers: [2001: db8]}}\n"))
	var errs Errors
	if !errors.As(err, &errs) || errs[0].Field != "policies.default.options.dns-servers[0]" {
		t.Errorf("want an error on dns-servers[0], got %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadFromDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hook6.yaml")
	src := "extensions:\n  - name: s\n    script: ../scripts/s.go\n    points: [generate-lease]\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, path)
	if want := filepath.Join(filepath.Dir(dir), "scripts", "s.go"); c.Extensions[0].Script != want {
		t.Errorf("script = %q, want %q", c.Extensions[0].Script, want)
	}
	if err := os.WriteFile(path, []byte("log: {level: loud}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var errs Errors
	if !errors.As(err, &errs) || errs[0].File != path || errs[0].Line != 1 || errs[0].Field != "log.level" {
		t.Fatalf("err = %v", err)
	}
}
