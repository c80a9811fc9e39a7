package failover

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hook6/hook6/core"
	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/core/lease"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

const pairConfig = `
server: {interfaces: [eth1], state-dir: /tmp/unused}
policies:
  default:
    preferred-lifetime: 1h
    valid-lifetime: 2h
    max-leases-per-binding: 1
links:
  - {name: lan, interface: eth1}
prefixes:
  - {name: lan-addr, link: lan, address: 2001:db8:1::/64, dhcp-type: dhcp}
  - {name: lan-pd, link: lan, address: 2001:db8:8000::/40, dhcp-type: prefix-delegation, prefix-length: 56}
`

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("FAILOVER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// layoutOf is the daemon's conversion of a configuration, for tests.
func layoutOf(cfg *config.Config) *Layout {
	lo := &Layout{}
	for _, p := range cfg.Prefixes {
		k, length := lease.NA, 128
		if p.DHCPType == config.TypePrefixDelegation {
			k, length = lease.PD, p.PrefixLength
		}
		lo.Prefixes = append(lo.Prefixes, Prefix{Name: p.Name, Link: p.Link, Kind: k, Address: p.Address,
			Pool: p.Pool(), Length: length, Valid: time.Duration(cfg.Policy(p.Policy).ValidLifetime)})
	}
	return lo
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// node is one server of a test pair: a real bbolt store, a failover
// endpoint and the DHCP engine wired to it.
type node struct {
	t      testing.TB
	name   string
	dir    string
	cfg    Config
	store  *lease.BoltStore
	ep     *Endpoint
	srv    *core.Server
	duid   []byte
	cancel context.CancelFunc
	done   chan error
	yaml   string
	synced []byte
	clock  *testClock
}

// testClock is the wall clock moved forward by an offset the test sets.
type testClock struct{ off atomic.Int64 }

func (c *testClock) now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

func (c *testClock) advance(d time.Duration) { c.off.Add(int64(d)) }

type pairOpts struct {
	yaml       string
	tlsPri     *tlsFiles
	tlsSec     *tlsFiles
	mclt       time.Duration
	maxUnacked int
	queue      int
	noSync     bool
	viaProxy   bool
	clock      *testClock
	// prepare, when set, fills the state directories before the servers
	// open them (leases of the split-range era).
	prepare func(priDir, secDir string)
}

func (o *pairOpts) defaults() {
	if o.yaml == "" {
		o.yaml = pairConfig
	}
	if o.mclt == 0 {
		o.mclt = 2 * time.Second
	}
}

// newNode opens the store and endpoint of one server (not running yet).
func newNode(t testing.TB, name, dir string, cfg Config, yamlText string, noSync bool, clock *testClock) *node {
	t.Helper()
	n := &node{t: t, name: name, dir: dir, cfg: cfg, yaml: yamlText, clock: clock}
	n.open(noSync)
	return n
}

func (n *node) open(noSync bool) {
	t := n.t
	t.Helper()
	c, err := config.Parse("test.yaml", []byte(n.yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	n.store, err = lease.Open(filepath.Join(n.dir, "leases.db"), lease.Options{NoSync: noSync})
	if err != nil {
		t.Fatal(err)
	}
	n.cfg.StateDir = n.dir
	now := time.Now
	if n.clock != nil {
		now = n.clock.now
	}
	n.ep, err = New(n.cfg, Options{Store: n.store, Layout: layoutOf(c), Logger: testLogger(t).With("node", n.name), Now: now,
		ApplyConfig: func(b []byte, exact bool) error {
			merged, err := MergeConfig([]byte(n.yaml), b, exact)
			if err != nil {
				return err
			}
			if _, err := config.Parse("merged.yaml", merged); err != nil {
				return err
			}
			n.synced = merged
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	n.duid = duidOf(n.name)
	n.srv, err = core.New(c, core.Options{Store: n.store, ServerDUID: n.duid, Filter: n.ep.Filter, Now: now,
		OnCommit: n.ep.OnCommit, CapLifetime: n.ep.CapLifetime})
	if err != nil {
		t.Fatal(err)
	}
}

func duidOf(name string) []byte { return []byte{0, 3, 0, 1, 2, 0, 0, 0, 0, byte(len(name))} }

// start runs the endpoint.
func (n *node) start() {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan error, 1)
	go func() { n.done <- n.ep.Run(ctx) }()
}

// stop ends the endpoint gracefully (DISCONNECT) and closes everything.
func (n *node) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	if err := <-n.done; err != nil {
		n.t.Errorf("%s: Run: %v", n.name, err)
	}
	n.cancel = nil
	n.ep.Close()
	n.store.Close()
}

// restart stops and reopens the node on the same state.
func (n *node) restart(noSync bool) {
	n.stop()
	n.open(noSync)
	n.start()
}

// pair is a primary and a secondary connected over loopback.
type pair struct {
	pri, sec *node
	proxy    *proxy
}

func newPair(t testing.TB, o pairOpts) *pair {
	t.Helper()
	o.defaults()
	secAddr := freePort(t)
	peerOfPri := secAddr
	var px *proxy
	if o.viaProxy {
		px = newProxy(t, secAddr)
		peerOfPri = px.addr
	}
	base := Config{Name: "pair-1", MCLT: o.mclt, Keepalive: 2 * time.Second, MaxUnacked: o.maxUnacked,
		StartupTime: 300 * time.Millisecond, Tick: 20 * time.Millisecond, QueueSize: o.queue}
	pc, sc := base, base
	pc.Role, pc.Local, pc.Peer = Primary, "127.0.0.1:0", peerOfPri
	sc.Role, sc.Local, sc.Peer = Secondary, secAddr, "127.0.0.1:647"
	if o.tlsPri != nil {
		pc.TLS = o.tlsPri.config(t, Primary)
		sc.TLS = o.tlsSec.config(t, Secondary)
	}
	p := &pair{proxy: px}
	priDir, secDir := t.TempDir(), t.TempDir()
	if o.prepare != nil {
		o.prepare(priDir, secDir)
	}
	p.pri = newNode(t, "primary", priDir, pc, o.yaml, o.noSync, o.clock)
	p.sec = newNode(t, "secondary", secDir, sc, o.yaml, o.noSync, o.clock)
	t.Cleanup(func() { p.pri.stop(); p.sec.stop() })
	return p
}

func (p *pair) start() { p.sec.start(); p.pri.start() }

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitState(t testing.TB, n *node, want State, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, n.name+" in "+want.String(), func() bool { return n.ep.State() == want })
}

// passedThrough reports whether n's endpoint has been in s.
func passedThrough(n *node, s State) bool {
	for _, tr := range n.ep.Status().History {
		if tr.To == s.String() {
			return true
		}
	}
	return false
}

// waitNormal waits until both servers are in NORMAL.
func (p *pair) waitNormal(t testing.TB, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "both in normal", func() bool {
		return p.pri.ep.State() == Normal && p.sec.ep.State() == Normal
	})
}

// leaseView is a lease as both servers must agree on it.
type leaseView struct {
	Prefix  netip.Prefix
	DUID    string
	IAID    uint32
	State   lease.State
	Expires int64 // seconds
}

func viewOf(s lease.Store) []leaseView {
	var out []leaseView
	s.Range(func(l lease.Lease) bool {
		out = append(out, leaseView{Prefix: l.Prefix, DUID: string(l.DUID), IAID: l.IAID, State: l.State,
			Expires: l.Expires.Unix()})
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix.String() < out[j].Prefix.String() })
	return out
}

// waitSame waits until both stores hold the same leases (to the second).
func (p *pair) waitSame(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		a, b := viewOf(p.pri.store), viewOf(p.sec.store)
		if equalViews(a, b) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("databases differ after %s (%d and %d leases):\n%s", timeout, len(a), len(b), viewDiff(a, b))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// viewDiff lists the leases the two views disagree on.
func viewDiff(a, b []leaseView) string {
	ma, mb := map[netip.Prefix]leaseView{}, map[netip.Prefix]leaseView{}
	for _, v := range a {
		ma[v.Prefix] = v
	}
	for _, v := range b {
		mb[v.Prefix] = v
	}
	var out []string
	show := func(v leaseView, ok bool) string {
		if !ok {
			return "none"
		}
		return fmt.Sprintf("%x/%d %s exp %d", v.DUID, v.IAID, v.State, v.Expires)
	}
	for p, x := range ma {
		y, ok := mb[p]
		if !ok || !equalViews([]leaseView{x}, []leaseView{y}) {
			out = append(out, fmt.Sprintf("%s: primary %s, secondary %s", p, show(x, true), show(y, ok)))
		}
	}
	for p, y := range mb {
		if _, ok := ma[p]; !ok {
			out = append(out, fmt.Sprintf("%s: primary none, secondary %s", p, show(y, true)))
		}
	}
	sort.Strings(out)
	if len(out) > 12 {
		out = append(out[:12], fmt.Sprintf("… and %d more", len(out)-12))
	}
	return strings.Join(out, "\n")
}

func equalViews(a, b []leaseView) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		d := x.Expires - y.Expires
		if x.Prefix != y.Prefix || x.DUID != y.DUID || x.IAID != y.IAID || x.State != y.State || d > 1 || d < -1 {
			return false
		}
	}
	return true
}

// DHCP client side.

var clientLL = netip.MustParseAddrPort("[fe80::211:22ff:fe33:4455]:546")

func clientDUID(n int) []byte {
	return []byte{0, 3, 0, 1, 0, 0x11, 0x22, 0x33, byte(n >> 8), byte(n)}
}

func newMsg(t dhcpv6.MessageType, n int, opts ...dhcpv6.Option) *dhcpv6.Message {
	m := &dhcpv6.Message{MessageType: t, TransactionID: dhcpv6.TransactionID{1, byte(n >> 8), byte(n)}}
	m.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionClientID, OptionData: clientDUID(n)})
	for _, o := range opts {
		m.Options.Add(o)
	}
	return m
}

func iaNA(iaid uint32, hints ...netip.Addr) *dhcpv6.OptIANA {
	o := &dhcpv6.OptIANA{IaId: [4]byte{byte(iaid >> 24), byte(iaid >> 16), byte(iaid >> 8), byte(iaid)}}
	for _, h := range hints {
		o.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.IP(h.AsSlice())})
	}
	return o
}

func iaPD(iaid uint32) *dhcpv6.OptIAPD {
	return &dhcpv6.OptIAPD{IaId: [4]byte{byte(iaid >> 24), byte(iaid >> 16), byte(iaid >> 8), byte(iaid)}}
}

func (n *node) serverID() dhcpv6.Option {
	return &dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionServerID, OptionData: n.duid}
}

// exchange hands m to the node's engine and decodes the answer (nil when
// none).
func (n *node) exchange(m *dhcpv6.Message) *dhcpv6.Message {
	n.t.Helper()
	out := n.srv.Handle(context.Background(), &core.Packet{Data: m.ToBytes(), Source: clientLL, Interface: "eth1"})
	if out == nil {
		return nil
	}
	d, err := dhcpv6.FromBytes(out)
	if err != nil {
		n.t.Fatalf("answer does not decode: %v", err)
	}
	r, ok := d.(*dhcpv6.Message)
	if !ok {
		n.t.Fatalf("answer is %T", d)
	}
	return r
}

// exchangeAdmitted is exchange behind the endpoint's Admit, as the daemon
// runs it.
func (n *node) exchangeAdmitted(m *dhcpv6.Message) *dhcpv6.Message {
	n.t.Helper()
	sid := m.Options.GetOne(dhcpv6.OptionServerID)
	toUs := sid != nil && string(sid.ToBytes()) == string(n.duid)
	if !n.ep.Admit(strings.ToUpper(m.MessageType.String()), toUs) {
		return nil
	}
	return n.exchange(m)
}

// grant is an address or prefix in an answer.
type grant struct {
	p     netip.Prefix
	valid time.Duration
}

func grants(m *dhcpv6.Message) ([]grant, *dhcpv6.OptStatusCode) {
	var out []grant
	var st *dhcpv6.OptStatusCode
	if ia := m.Options.OneIANA(); ia != nil {
		for _, a := range ia.Options.Addresses() {
			ad, _ := netip.AddrFromSlice(a.IPv6Addr)
			out = append(out, grant{p: netip.PrefixFrom(ad.Unmap(), 128), valid: a.ValidLifetime})
		}
		st = ia.Options.Status()
	}
	if ia := m.Options.OneIAPD(); ia != nil {
		for _, p := range ia.Options.Prefixes() {
			ad, _ := netip.AddrFromSlice(p.Prefix.IP)
			ones, _ := p.Prefix.Mask.Size()
			out = append(out, grant{p: netip.PrefixFrom(ad.Unmap(), ones), valid: p.ValidLifetime})
		}
		if st == nil {
			st = ia.Options.Status()
		}
	}
	return out, st
}

// bind runs Solicit/Request for client c (an address, or a prefix with pd)
// and returns what was granted.
func (n *node) bind(c int, pd bool) grant {
	n.t.Helper()
	var ia dhcpv6.Option = iaNA(1)
	if pd {
		ia = iaPD(1)
	}
	adv := n.exchange(newMsg(dhcpv6.MessageTypeSolicit, c, ia))
	if adv == nil {
		n.t.Fatalf("%s: no Advertise for client %d (state %s)", n.name, c, n.ep.State())
	}
	gs, st := grants(adv)
	if len(gs) != 1 {
		n.t.Fatalf("%s: Advertise for client %d: %v %v", n.name, c, gs, st)
	}
	if pd {
		ia = &dhcpv6.OptIAPD{IaId: [4]byte{0, 0, 0, 1}, Options: dhcpv6.PDOptions{Options: dhcpv6.Options{
			&dhcpv6.OptIAPrefix{Prefix: &net.IPNet{IP: net.IP(gs[0].p.Addr().AsSlice()), Mask: net.CIDRMask(gs[0].p.Bits(), 128)}}}}}
	} else {
		ia = iaNA(1, gs[0].p.Addr())
	}
	rep := n.exchange(newMsg(dhcpv6.MessageTypeRequest, c, n.serverID(), ia))
	if rep == nil {
		n.t.Fatalf("%s: no Reply for client %d", n.name, c)
	}
	gs, st = grants(rep)
	if len(gs) != 1 || (st != nil && st.StatusCode != iana.StatusSuccess) {
		n.t.Fatalf("%s: Reply for client %d: %v %v", n.name, c, gs, st)
	}
	return gs[0]
}

// splitEra serves clients from a server without failover (the
// split-range era of the reference's upgrade procedure) on the store in
// dir, and returns what each client got.
func splitEra(t testing.TB, dir, name, yamlText string, clients []int) map[int]grant {
	t.Helper()
	c, err := config.Parse("era.yaml", []byte(yamlText))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	store, err := lease.Open(filepath.Join(dir, "leases.db"), lease.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv, err := core.New(c, core.Options{Store: store, ServerDUID: duidOf(name)})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, name: name, srv: srv, duid: duidOf(name), ep: nil}
	out := map[int]grant{}
	for _, cl := range clients {
		out[cl] = n.bindPlain(cl)
	}
	return out
}

// bindPlain is bind for a server without failover.
func (n *node) bindPlain(c int) grant {
	n.t.Helper()
	adv := n.exchange(newMsg(dhcpv6.MessageTypeSolicit, c, iaNA(1)))
	gs, _ := grants(adv)
	if len(gs) != 1 {
		n.t.Fatalf("%s: advertise for %d: %v", n.name, c, gs)
	}
	rep := n.exchange(newMsg(dhcpv6.MessageTypeRequest, c, n.serverID(), iaNA(1, gs[0].p.Addr())))
	gs, _ = grants(rep)
	if len(gs) != 1 {
		n.t.Fatalf("%s: reply for %d: %v", n.name, c, gs)
	}
	return gs[0]
}

// proxy forwards TCP to target and can cut the link.
type proxy struct {
	t      testing.TB
	addr   string
	target string
	ln     net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

func newProxy(t testing.TB, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, addr: ln.Addr().String(), target: target, ln: ln}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go pipe(c, u)
		go pipe(u, c)
	}
}

func pipe(a, b net.Conn) {
	_, _ = io.Copy(a, b)
	a.Close()
	b.Close()
}

// setCut cuts (closing every connection, refusing new ones) or restores
// the link.
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// open2WithoutFailover replaces the node's engine by one without failover
// (the baseline of the exchange benchmark).
func (n *node) open2WithoutFailover(t testing.TB) {
	t.Helper()
	c, err := config.Parse("test.yaml", []byte(n.yaml))
	if err != nil {
		t.Fatal(err)
	}
	n.srv, err = core.New(c, core.Options{Store: n.store, ServerDUID: n.duid})
	if err != nil {
		t.Fatal(err)
	}
}
