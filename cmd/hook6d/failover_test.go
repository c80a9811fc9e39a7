package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hook6/hook6/core"
	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/lease"
	"github.com/hook6/hook6/failover"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// reloadFixture is this server's failover side (the primary) and a
// partner endpoint (the secondary) on loopback.
type reloadFixture struct {
	t        *testing.T
	dir      string
	partner  string // the secondary's address
	f        *failoverSide
	opts     core.Options
	store    *lease.BoltStore
	pstore   *lease.BoltStore
	pep      *failover.Endpoint
	stopped  chan struct{}
	stopPeer context.CancelFunc
	peerDone chan struct{}
}

func (x *reloadFixture) config(section string) *config.Config {
	x.t.Helper()
	text := fmt.Sprintf(`
server: {interfaces: [eth1], state-dir: %s}
policies:
  default: {preferred-lifetime: 1h, valid-lifetime: 2h}
links:
  - {name: lan, interface: eth1}
prefixes:
  - {name: lan-addr, link: lan, address: 2001:db8:1::/64, dhcp-type: dhcp}
%s`, x.dir, section)
	cfg, err := config.Parse(filepath.Join(x.dir, "hook6.yaml"), []byte(text))
	if err != nil {
		x.t.Fatalf("config: %v\n%s", err, text)
	}
	return cfg
}

// section is a failover section for the primary; over replaces or adds
// fields ("key: value").
func (x *reloadFixture) section(over ...string) string {
	fields := []string{"role: primary", "name: pair-1", `local: "127.0.0.1"`, fmt.Sprintf("peer: %q", x.partner),
		"mclt: 30s", "keepalive: 2s", "tls: {insecure: true}"}
	for _, o := range over {
		key, _, _ := strings.Cut(o, ":")
		found := false
		for i, f := range fields {
			if strings.HasPrefix(f, key+":") {
				fields[i], found = o, true
			}
		}
		if !found {
			fields = append(fields, o)
		}
	}
	return "failover: {" + strings.Join(fields, ", ") + "}\n"
}

func newReloadFixture(t *testing.T, section func(x *reloadFixture) string) *reloadFixture {
	x := &reloadFixture{t: t, dir: t.TempDir(), partner: freeAddr(t), stopped: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("FAILOVER_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	var err error
	if x.store, err = lease.Open(filepath.Join(x.dir, "leases.db"), lease.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	cfg := x.config(section(x))
	if x.f, err = newFailover(&daemon{log: log}, cfg, x.store, log.With("node", "primary")); err != nil {
		t.Fatal(err)
	}
	x.f.engineOptions(&x.opts)
	ctx, cancel := context.WithCancel(context.Background())
	x.f.start(ctx, func() { close(x.stopped) })
	t.Cleanup(func() {
		cancel()
		if err := x.f.wait(); err != nil {
			t.Errorf("failover ended with %v", err)
		}
		x.store.Close()
	})

	pdir := t.TempDir()
	if x.pstore, err = lease.Open(filepath.Join(pdir, "leases.db"), lease.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	x.startPartner(pdir, log, "pair-1")
	t.Cleanup(func() { x.stopPartner(); x.pstore.Close() })
	return x
}

func (x *reloadFixture) startPartner(dir string, log *slog.Logger, name string) {
	pfx := netip.MustParsePrefix("2001:db8:1::/64")
	ep, err := failover.New(failover.Config{Role: failover.Secondary, Name: name, Local: x.partner, Peer: "127.0.0.1",
		MCLT: 30 * time.Second, Keepalive: 2 * time.Second, StartupTime: 300 * time.Millisecond, Tick: 20 * time.Millisecond,
		StateDir: dir},
		failover.Options{Store: x.pstore, Logger: log.With("node", "secondary"), Layout: &failover.Layout{Prefixes: []failover.Prefix{
			{Name: "lan-addr", Link: "lan", Kind: lease.NA, Address: pfx, Pool: pfx, Length: 128, Valid: 2 * time.Hour}}}})
	if err != nil {
		x.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	x.pep, x.stopPeer, x.peerDone = ep, cancel, make(chan struct{})
	go func() {
		defer close(x.peerDone)
		if err := ep.Run(ctx); err != nil {
			x.t.Errorf("partner: %v", err)
		}
		ep.Close()
	}()
}

func (x *reloadFixture) stopPartner() {
	x.stopPeer()
	<-x.peerDone
}

func (x *reloadFixture) waitNormal(what string) *failover.Endpoint {
	x.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ep := x.f.cur.Load()
		if ep != nil && ep.State() == failover.Normal && x.pep.State() == failover.Normal {
			return ep
		}
		if time.Now().After(deadline) {
			st := "none"
			if ep != nil {
				st = ep.State().String()
			}
			x.t.Fatalf("%s: not both in normal (this server %s, partner %s)", what, st, x.pep.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (x *reloadFixture) reload(cfg *config.Config) error {
	p, err := x.f.plan(cfg, true)
	if err != nil {
		return err
	}
	return x.f.apply(p, cfg)
}

// A reload applies a changed failover section: the endpoint is replaced
// (the partner is told DISCONNECT and the pair meets again), its state is
// kept; a role change and a section that does not build are refused and
// the running endpoint stays; removing the section stops failover and
// adding it starts it again.
func TestReloadFailoverSection(t *testing.T) {
	x := newReloadFixture(t, func(x *reloadFixture) string { return x.section() })
	first := x.waitNormal("start")

	// The same section: nothing happens.
	if err := x.reload(x.config(x.section())); err != nil {
		t.Fatal(err)
	}
	if x.f.cur.Load() != first {
		t.Fatal("an unchanged failover section replaced the endpoint")
	}

	// Another MCLT and max-unacked: a new endpoint with the same state.
	if err := x.reload(x.config(x.section("mclt: 45s", "max-unacked: 64"))); err != nil {
		t.Fatal(err)
	}
	second := x.f.cur.Load()
	if second == first {
		t.Fatal("a changed failover section did not replace the endpoint")
	}
	x.waitNormal("after the MCLT change")
	if got := second.Status().MCLT; got != "45s" {
		t.Errorf("MCLT after reload %s, want 45s", got)
	}
	if h := second.Status().History; len(h) == 0 || h[0].To == "partner-down" || h[0].To == "recover" {
		t.Errorf("the new endpoint did not keep the stored state: %+v", h)
	}

	// A role change is refused.
	sec := x.section("mclt: 45s", "max-unacked: 64", "role: secondary", `local: "127.0.0.1:1"`)
	if err := x.reload(x.config(sec)); err == nil || !strings.Contains(err.Error(), "failover.role cannot change") {
		t.Fatalf("role change: %v", err)
	}
	// TLS files that do not load: refused, the old endpoint keeps going.
	bad := x.section("mclt: 45s", "max-unacked: 64", "tls: {cert: /nonexistent/f.pem, key: /nonexistent/f.key, ca: /nonexistent/ca.pem}")
	if err := x.reload(x.config(bad)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("missing certificate: %v", err)
	}
	if x.f.cur.Load() != second || second.State() != failover.Normal {
		t.Fatalf("a refused reload touched the endpoint (state %s)", second.State())
	}

	// Removed: failover stops, the server is on its own.
	if err := x.reload(x.config("")); err != nil {
		t.Fatal(err)
	}
	if x.f.cur.Load() != nil {
		t.Fatal("failover still runs without its section")
	}
	if !x.opts.Filter(netip.MustParsePrefix("2001:db8:1::2/128"), lease.NA) || !x.opts.Admit("SOLICIT", false) {
		t.Error("without failover the engine is still restricted")
	}
	waitFor(t, "the partner to notice", func() bool { return x.pep.State() == failover.CommInterrupted })

	// Added again: it starts and meets the partner.
	if err := x.reload(x.config(x.section())); err != nil {
		t.Fatal(err)
	}
	x.waitNormal("after adding the section back")
	select {
	case <-x.stopped:
		t.Fatal("the daemon was stopped")
	default:
	}
}

// A new relationship name starts afresh (the previous relationship's
// state is set aside as failover.db.NAME); going back to the old name
// takes its state back.
func TestReloadFailoverName(t *testing.T) {
	x := newReloadFixture(t, func(x *reloadFixture) string { return x.section() })
	x.waitNormal("start")
	if err := x.reload(x.config(x.section("name: pair-2"))); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(x.dir, "failover.db.pair-1")); err != nil {
		t.Fatalf("the state of pair-1 was not set aside: %v", err)
	}
	if st := x.f.cur.Load().Status(); st.Name != "pair-2" {
		t.Fatalf("relationship %q after reload", st.Name)
	}
	if err := x.reload(x.config(x.section())); err != nil {
		t.Fatal(err)
	}
	ep := x.waitNormal("back to pair-1")
	if h := ep.Status().History; len(h) == 0 || h[0].To == "partner-down" {
		t.Errorf("pair-1's state was not taken back: %+v", h)
	}
	if _, err := os.Stat(filepath.Join(x.dir, "failover.db.pair-2")); err != nil {
		t.Errorf("the state of pair-2 was not set aside: %v", err)
	}
}

// hook6ctl lease delete on a server of a pair reaches the partner.
func TestDeleteLeasesReachesPartner(t *testing.T) {
	x := newReloadFixture(t, func(x *reloadFixture) string { return x.section() })
	x.waitNormal("start")
	now := time.Now()
	l := lease.Lease{Prefix: netip.MustParsePrefix("2001:db8:1::1/128"), Kind: lease.NA, DUID: []byte{0, 3, 0, 1, 1, 2, 3, 4, 5, 6},
		IAID: 1, Link: "lan", PrefixName: "lan-addr", State: lease.Leased, Preferred: time.Hour, Valid: 2 * time.Hour,
		Start: now, Expires: now.Add(2 * time.Hour), Updated: now}
	if err := x.store.Put(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	x.opts.OnCommit([]lease.Lease{l})
	waitFor(t, "the lease on the partner", func() bool { _, ok := x.pstore.Get(l.Prefix); return ok })

	del := func(ctx context.Context, p netip.Prefix) (int, error) {
		return 1, x.store.Delete(ctx, l.Prefix)
	}
	if n, err := x.f.deleteWithin(context.Background(), netip.MustParsePrefix("2001:db8:1::/64"), del); err != nil || n != 1 {
		t.Fatalf("delete: %d, %v", n, err)
	}
	waitFor(t, "the lease gone from the partner", func() bool { _, ok := x.pstore.Get(l.Prefix); return !ok })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
