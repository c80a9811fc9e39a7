package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/hook6/hook6/e2e/lab"
)

// Issue #3 end to end: the example scripts loaded by hook6d with real
// clients, live reload of a script, and the isolation of scripts that
// loop, panic or fail.

// probe is a DHCPv6 client of the tests' own, sending from an ephemeral
// port (hook6 answers to the source port) so it can run next to dhclient,
// which holds port 546. It sends what dhclient cannot (vendor and user
// classes) and reads the answer's options exactly.
type probe struct {
	conn *net.UDPConn
	dst  *net.UDPAddr
	mac  net.HardwareAddr
}

// newProbe opens a probe on iface in ns whose DUID is the DUID-LL of mac.
func newProbe(t *testing.T, ns *lab.Netns, iface string, mac net.HardwareAddr) *probe {
	t.Helper()
	ifi, err := ns.Interface(iface)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ns.ListenUDP(&net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	dst := &net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers, Port: dhcpv6.DefaultServerPort, Zone: strconv.Itoa(ifi.Index)}
	return &probe{conn: conn, dst: dst, mac: mac}
}

// duidHex is the probe's DUID as hook6 writes it in request.client-duid.
func (p *probe) duidHex() string {
	return fmt.Sprintf("00030001%x", []byte(p.mac))
}

// solicit builds a Solicit for one IA_NA with the probe's DUID, a vendor
// class and a user class when not empty.
func (p *probe) solicit(t *testing.T, vendorClass, userClass string) *dhcpv6.Message {
	t.Helper()
	mods := []dhcpv6.Modifier{dhcpv6.WithClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: p.mac})}
	if vendorClass != "" {
		mods = append(mods, dhcpv6.WithOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 32473, Data: [][]byte{[]byte(vendorClass)}}))
	}
	if userClass != "" {
		mods = append(mods, dhcpv6.WithUserClass([]byte(userClass)))
	}
	m, err := dhcpv6.NewSolicit(p.mac, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// send sends m once.
func (p *probe) send(m *dhcpv6.Message) error {
	if _, err := p.conn.WriteToUDP(m.ToBytes(), p.dst); err != nil {
		return fmt.Errorf("send %s: %w", m.MessageType, err)
	}
	return nil
}

// receive waits until the deadline for the answer to m; other datagrams
// are skipped. It returns nil, nil when none came.
func (p *probe) receive(m *dhcpv6.Message, deadline time.Time) (*dhcpv6.Message, error) {
	buf := make([]byte, 65536)
	for {
		if err := p.conn.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		n, _, err := p.conn.ReadFromUDP(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("receive: %w", err)
		}
		d, err := dhcpv6.FromBytes(buf[:n])
		if err != nil {
			continue
		}
		if r, ok := d.(*dhcpv6.Message); ok && r.TransactionID == m.TransactionID {
			return r, nil
		}
	}
}

// exchange sends m, retransmitting every second, until the answer comes
// or ctx ends.
func (p *probe) exchange(ctx context.Context, m *dhcpv6.Message) (*dhcpv6.Message, error) {
	for {
		if err := p.send(m); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(time.Second)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		r, err := p.receive(m, deadline)
		if err != nil || r != nil {
			return r, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no answer to %s %v: %w", m.MessageType, m.TransactionID, ctx.Err())
		}
	}
}

// mustAnswer exchanges m and fails the test without an answer.
func (p *probe) mustAnswer(t *testing.T, ctx context.Context, m *dhcpv6.Message) *dhcpv6.Message {
	t.Helper()
	r, err := p.exchange(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// noAnswer sends m and fails the test if an answer comes within wait.
func (p *probe) noAnswer(t *testing.T, m *dhcpv6.Message, wait time.Duration) {
	t.Helper()
	if err := p.send(m); err != nil {
		t.Fatal(err)
	}
	r, err := p.receive(m, time.Now().Add(wait))
	if err != nil {
		t.Fatal(err)
	}
	if r != nil {
		t.Fatalf("%s %v was answered, want it dropped:\n%s", m.MessageType, m.TransactionID, r.Summary())
	}
}

// optPreference returns the Preference option of m and whether it has one.
func optPreference(m *dhcpv6.Message) (uint8, bool) {
	if len(m.Options.Get(dhcpv6.OptionPreference)) == 0 {
		return 0, false
	}
	return m.Options.Preference(), true
}

// dnsServers returns the DNS recursive name server option of m as text.
func dnsServers(m *dhcpv6.Message) string {
	var s []string
	for _, ip := range m.Options.DNS() {
		s = append(s, ip.String())
	}
	return strings.Join(s, ",")
}

// probeMAC returns a locally administered MAC address ending in b.
func probeMAC(b byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0x00, 0x5c, 0x00, 0x00, b} }

// exampleScript is the path of an example script of the repository.
func exampleScript(t testing.TB, name string) string {
	t.Helper()
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "examples", "scripts", name)
}

// testScript is the path of a script under e2e/testdata/scripts.
func testScript(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// withoutPreference removes the policy's Preference option, so an
// Advertise carries one only when a script puts it there.
func withoutPreference(c *lab.Config) {
	pol := c.Policies["default"]
	opts := *pol.Options
	opts.Preference = nil
	pol.Options = &opts
	c.Policies["default"] = pol
}

// extStats returns the counters of one extension from `hook6ctl stats`.
func extStats(t *testing.T, d *lab.Hook6d, name string) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := d.Ctl().Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for k, v := range st {
		if c, ok := strings.CutPrefix(k, "extensions."+name+"."); ok {
			out[c] = v
		}
	}
	if len(out) == 0 {
		t.Fatalf("hook6ctl stats has no counters of extension %q: %v", name, st.Keys())
	}
	return out
}

// bindAddress starts dhclient -N on the lab's client and returns the
// address it binds and how long that took from its start.
func bindAddress(t *testing.T, ctx context.Context, x *direct) (*lab.Dhclient, netip.Addr, time.Duration) {
	t.Helper()
	dh := x.lab.Dhclient(x.cli, cliIf)
	start := time.Now()
	dh.Start(lab.DhclientMode{NA: true})
	a, _, err := dh.WaitAddress(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	return dh, a, time.Since(start)
}

// preference.go gives Preference 255 to one vendor class: a client of
// that class finds it in the Advertise, a client of another class or of
// none gets no Preference option, and dhclient still binds.
func TestScriptPreference(t *testing.T) {
	x := newDirect(t, func(c *lab.Config) {
		withoutPreference(c)
		c.Extensions = []lab.Extension{{
			Name: "prefer", Script: exampleScript(t, "preference.go"), Points: []string{"pre-packet-encode"},
			InitArgs: map[string]string{"value": "255", "vendor-class": "acme-cpe"},
		}}
	})
	ctx := timeout(t, 30*time.Second)
	p := newProbe(t, x.cli, cliIf, probeMAC(1))
	for _, tc := range []struct {
		class string
		want  bool
	}{{"acme-cpe", true}, {"other-cpe", false}, {"", false}} {
		adv := p.mustAnswer(t, ctx, p.solicit(t, tc.class, ""))
		if adv.MessageType != dhcpv6.MessageTypeAdvertise {
			t.Fatalf("vendor class %q: answer %s, want ADVERTISE", tc.class, adv.MessageType)
		}
		v, ok := optPreference(adv)
		if tc.want && (!ok || v != 255) {
			t.Errorf("vendor class %q: preference %d (present %v), want 255", tc.class, v, ok)
		}
		if !tc.want && ok {
			t.Errorf("vendor class %q: preference %d, want no Preference option", tc.class, v)
		}
	}
	bindAddress(t, ctx, x)
	if st := extStats(t, x.d, "prefer"); st["calls"] < 3 || st["errors"]+st["panics"]+st["timeouts"] != 0 {
		t.Errorf("prefer counters %v: want at least 3 calls and no failures", st)
	}
}

// drop-vendor.go drops the clients of one vendor class at
// post-packet-decode: no answer, the drop counted, no lease; clients of
// other classes, and dhclient, are served.
func TestScriptDropVendor(t *testing.T) {
	x := newDirect(t, func(c *lab.Config) {
		c.Extensions = []lab.Extension{{
			Name: "dropvendor", Script: exampleScript(t, "drop-vendor.go"), Points: []string{"post-packet-decode"},
			InitArgs: map[string]string{"vendor-class": "evil-cpe, rogue"},
		}}
	})
	ctx := timeout(t, 30*time.Second)
	bad := newProbe(t, x.cli, cliIf, probeMAC(2))
	sol := bad.solicit(t, "rogue", "")
	bad.noAnswer(t, sol, 1500*time.Millisecond)
	bad.noAnswer(t, sol, 500*time.Millisecond)
	if st := extStats(t, x.d, "dropvendor"); st["drops"] != 2 {
		t.Errorf("dropvendor counters %v: want 2 drops", st)
	}
	good := newProbe(t, x.cli, cliIf, probeMAC(3))
	if adv := good.mustAnswer(t, ctx, good.solicit(t, "good-cpe", "")); adv.MessageType != dhcpv6.MessageTypeAdvertise {
		t.Fatalf("vendor class good-cpe: answer %s, want ADVERTISE", adv.MessageType)
	}
	_, a, _ := bindAddress(t, ctx, x)
	ls := leases(t, x.d)
	if len(ls) != 1 || ls[0].Prefix != hostPrefix(a) {
		t.Errorf("leases %+v, want only dhclient's %v (Solicits reserve none)", ls, a)
	}
	for _, l := range ls {
		if normDUID(l.DUID) == bad.duidHex() {
			t.Errorf("the dropped client holds a lease: %+v", l)
		}
	}
}

// duidLeaseLine is dhclient's lease-file line that fixes its DUID: the
// DUID-LL of mac, as octal escapes.
func duidLeaseLine(m net.HardwareAddr) string {
	var b strings.Builder
	for _, c := range append([]byte{0, 3, 0, 1}, m...) {
		fmt.Fprintf(&b, "\\%03o", c)
	}
	return fmt.Sprintf("default-duid \"%s\";\n", b.String())
}

// duid-table.go gives leases from a DUID table at generate-lease: dhclient
// with a DUID in the table gets exactly its address and prefix; a client
// not in the table is dropped (unknown: drop).
func TestScriptDUIDTable(t *testing.T) {
	cliMAC := probeMAC(4)
	duid := fmt.Sprintf("00:03:00:01:%s", cliMAC)
	wantAddr := netip.MustParseAddr("2001:db8:1::4242")
	wantPD := netip.MustParsePrefix("2001:db8:8000:4200::/56")
	x := newDirect(t, func(c *lab.Config) {
		for i := range c.Prefixes {
			c.Prefixes[i].AllocationAlgorithms = []string{"extension", "random"}
			if c.Prefixes[i].DHCPType == "prefix-delegation" {
				c.Prefixes[i].AllocationAlgorithms = []string{"extension", "best-fit"}
			}
		}
		c.Extensions = []lab.Extension{{
			Name: "table", Script: exampleScript(t, "duid-table.go"), Points: []string{"generate-lease", "pre-packet-encode"},
			InitArgs: map[string]string{"unknown": "drop", duid: wantAddr.String() + ", " + wantPD.String()},
		}}
	})
	ctx := timeout(t, 30*time.Second)
	unknown := newProbe(t, x.cli, cliIf, probeMAC(5))
	unknown.noAnswer(t, unknown.solicit(t, "", ""), 1500*time.Millisecond)

	dh := x.lab.Dhclient(x.cli, cliIf)
	if err := os.WriteFile(dh.LeaseFile, []byte(duidLeaseLine(cliMAC)), 0o644); err != nil {
		t.Fatal(err)
	}
	dh.Start(lab.DhclientMode{NA: true, PD: true})
	a, _, err := dh.WaitAddress(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := dh.WaitPrefix(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	if a != wantAddr || p != wantPD {
		t.Errorf("dhclient bound %v and %v, want the table's %v and %v", a, p, wantAddr, wantPD)
	}
	for _, want := range []netip.Prefix{hostPrefix(wantAddr), wantPD} {
		l := leaseOf(t, x.d, want)
		if l.State != "leased" || normDUID(l.DUID) != normDUID(duid) {
			t.Errorf("lease of %v: %+v, want leased to %s", want, l, duid)
		}
	}
	if n := len(leases(t, x.d)); n != 2 {
		t.Errorf("%d leases, want only the table's two", n)
	}
	if st := extStats(t, x.d, "table"); st["drops"] < 1 || st["errors"] != 0 {
		t.Errorf("table counters %v: want the unknown client's drop and no errors", st)
	}
}

// env-handoff.go classifies at post-packet-decode and acts at
// pre-packet-encode: a gold client gets the gold DNS server on the wire,
// the others (dhclient among them) the policy's.
func TestScriptEnvHandoff(t *testing.T) {
	x := newDirect(t, func(c *lab.Config) {
		c.Extensions = []lab.Extension{{
			Name: "tier", Script: exampleScript(t, "env-handoff.go"), Points: []string{"post-packet-decode", "pre-packet-encode"},
			InitArgs: map[string]string{"gold-class": "gold", "gold-dns": "2001:db8::53:99"},
		}}
	})
	ctx := timeout(t, 30*time.Second)
	p := newProbe(t, x.cli, cliIf, probeMAC(6))
	if got := dnsServers(p.mustAnswer(t, ctx, p.solicit(t, "", "gold"))); got != "2001:db8::53:99" {
		t.Errorf("gold client: DNS servers %q, want 2001:db8::53:99", got)
	}
	if got := dnsServers(p.mustAnswer(t, ctx, p.solicit(t, "", "silver"))); got != "2001:db8::53" {
		t.Errorf("silver client: DNS servers %q, want the policy's 2001:db8::53", got)
	}
	dh := x.lab.Dhclient(x.cli, cliIf)
	dh.Start(lab.DhclientMode{NA: true})
	ev, _, err := dh.WaitEvent(ctx, 0, "BOUND6", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Vars["new_dhcp6_name_servers"]; got != "2001:db8::53" {
		t.Errorf("dhclient: DNS servers %q, want the policy's 2001:db8::53", got)
	}
}

// leaseSnapshot is every lease as hook6ctl shows it, by prefix.
func leaseSnapshot(t *testing.T, d *lab.Hook6d) map[netip.Prefix]map[string]any {
	t.Helper()
	out := map[netip.Prefix]map[string]any{}
	for _, l := range leases(t, d) {
		out[l.Prefix] = l.Raw
	}
	return out
}

// ctlReload asks the daemon to reload with hook6ctl and returns its error.
func ctlReload(d *lab.Hook6d) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := d.Ctl().Run(ctx, "reload")
	return err
}

// A script that no longer compiles is refused on reload with its
// file:line, and the old one keeps serving with the leases untouched; a
// valid new version is swapped in by hook6ctl reload, and another by
// SIGHUP.
func TestScriptReload(t *testing.T) {
	orig, err := os.ReadFile(exampleScript(t, "preference.go"))
	if err != nil {
		t.Fatal(err)
	}
	const call = "c.Response.SetPreference(value)"
	if !strings.Contains(string(orig), call) {
		t.Fatalf("preference.go no longer holds %q", call)
	}
	path := filepath.Join(t.TempDir(), "prefer.go")
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(string(orig))
	x := newDirect(t, func(c *lab.Config) {
		withoutPreference(c)
		c.Extensions = []lab.Extension{{
			Name: "prefer", Script: path, Points: []string{"pre-packet-encode"},
			InitArgs: map[string]string{"value": "200"},
		}}
	})
	ctx := timeout(t, 45*time.Second)
	p := newProbe(t, x.cli, cliIf, probeMAC(7))
	wantPref := func(want uint8) {
		t.Helper()
		v, ok := optPreference(p.mustAnswer(t, ctx, p.solicit(t, "", "")))
		if !ok || v != want {
			t.Fatalf("preference %d (present %v), want %d", v, ok, want)
		}
	}
	wantPref(200)
	dh, _, _ := bindAddress(t, ctx, x)
	if err := dh.Process().Stop(); err != nil {
		t.Fatal(err)
	}
	before := leaseSnapshot(t, x.d)

	broken := strings.Replace(string(orig), call, "c.Response.SetPreference(valeu)", 1)
	line := strings.Count(broken[:strings.Index(broken, "valeu")], "\n") + 1
	write(broken)
	err = ctlReload(x.d)
	if err == nil {
		t.Fatal("reload accepted a script that does not compile")
	}
	t.Logf("refused: %v", err)
	if want := fmt.Sprintf("prefer.go:%d:", line); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "valeu") {
		t.Errorf("refused reload says %q, want the compiler error at %s naming valeu", err, want)
	}
	wantPref(200)
	if after := leaseSnapshot(t, x.d); !reflect.DeepEqual(after, before) {
		t.Errorf("leases changed by a refused reload:\nbefore %v\nafter  %v", before, after)
	}

	write(strings.Replace(string(orig), call, "c.Response.SetPreference(value / 2)", 1))
	if err := ctlReload(x.d); err != nil {
		t.Fatalf("reload of a valid new version: %v", err)
	}
	wantPref(100)
	if after := leaseSnapshot(t, x.d); !reflect.DeepEqual(after, before) {
		t.Errorf("leases changed by a reload:\nbefore %v\nafter  %v", before, after)
	}

	write(strings.Replace(string(orig), call, "c.Response.SetPreference(value / 4)", 1))
	if err := x.d.Process().Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for {
		v, _ := optPreference(p.mustAnswer(t, ctx, p.solicit(t, "", "")))
		if v == 50 {
			break
		}
		if v != 100 || ctx.Err() != nil {
			t.Fatalf("after SIGHUP: preference %d, want 100 until the swap, then 50", v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if after := leaseSnapshot(t, x.d); !reflect.DeepEqual(after, before) {
		t.Errorf("leases changed by a SIGHUP reload:\nbefore %v\nafter  %v", before, after)
	}
}

// rtts does n Solicit-Advertise exchanges, 30ms apart, and returns their
// round-trip times, sorted.
func (p *probe) rtts(t *testing.T, ctx context.Context, n int) []time.Duration {
	t.Helper()
	var d []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		p.mustAnswer(t, ctx, p.solicit(t, "", ""))
		d = append(d, time.Since(start))
		time.Sleep(30 * time.Millisecond)
	}
	slices.Sort(d)
	return d
}

// loopResult is what a looping client saw.
type loopResult struct {
	sent, answered int
	err            error
}

// loop sends Solicits with vendor class "looper" every 50ms until stop is
// closed, counting the answers.
func (p *probe) loop(stop <-chan struct{}) loopResult {
	var r loopResult
	for {
		select {
		case <-stop:
			return r
		default:
		}
		m, err := dhcpv6.NewSolicit(p.mac, dhcpv6.WithOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 32473, Data: [][]byte{[]byte("looper")}}))
		if err != nil {
			r.err = err
			return r
		}
		if r.err = p.send(m); r.err != nil {
			return r
		}
		r.sent++
		a, err := p.receive(m, time.Now().Add(50*time.Millisecond))
		if err != nil {
			r.err = err
			return r
		}
		if a != nil {
			r.answered++
		}
	}
}

// misbehaving is the extension of misbehave.go that fails in mode for
// vendor class class.
func misbehaving(t testing.TB, name, mode, class, failureMode string) lab.Extension {
	return lab.Extension{
		Name: name, Script: testScript(t, "misbehave.go"), Points: []string{"post-packet-decode"},
		InitArgs: map[string]string{"mode": mode, "vendor-class": class},
		Budget:   "100ms", FailureMode: failureMode,
	}
}

// A script that loops forever for one client costs that client's packets
// only: while it runs away on every Solicit of that client, another client
// is answered at once and dhclient binds in its usual time; the timeouts
// are counted. A script that panics (failure mode drop) drops that packet,
// one that returns an error (failure mode continue) lets it be answered;
// both are counted and the server keeps answering.
func TestScriptIsolation(t *testing.T) {
	x := newDirect(t, func(c *lab.Config) {
		c.Extensions = []lab.Extension{
			misbehaving(t, "loop", "loop", "looper", "drop"),
			misbehaving(t, "panic", "panic", "panicker", "drop"),
			misbehaving(t, "error", "error", "erring", "continue"),
		}
	})
	ctx := timeout(t, 45*time.Second)

	good := newProbe(t, x.cli, cliIf, probeMAC(12))
	quiet := good.rtts(t, ctx, 10)
	looper := newProbe(t, x.cli, cliIf, probeMAC(8))
	stop := make(chan struct{})
	done := make(chan loopResult, 1)
	go func() { done <- looper.loop(stop) }()
	for extStats(t, x.d, "loop")["timeouts"] < 2 {
		if ctx.Err() != nil {
			t.Fatal("the looping script never ran past its budget")
		}
		time.Sleep(20 * time.Millisecond)
	}

	rtts := good.rtts(t, ctx, 10)
	_, _, took := bindAddress(t, ctx, x)
	close(stop)
	lr := <-done
	if lr.err != nil {
		t.Fatal(lr.err)
	}
	t.Logf("Solicit-Advertise of a well-behaved client: median %v, max %v alone; median %v, max %v next to a script looping on %d Solicits (2 cores); dhclient bound in %v",
		quiet[len(quiet)/2].Round(time.Microsecond), quiet[len(quiet)-1].Round(time.Microsecond),
		rtts[len(rtts)/2].Round(time.Microsecond), rtts[len(rtts)-1].Round(time.Microsecond), lr.sent, took.Round(time.Millisecond))
	if rtts[len(rtts)-1] > 500*time.Millisecond {
		t.Errorf("a well-behaved Solicit took %v next to the looping script (retransmitted?), want an answer to the first send", rtts[len(rtts)-1])
	}
	// dhclient waits 0-1s before its first Solicit (RFC 8415 SOL_MAX_DELAY);
	// a lost packet would cost it a further second.
	if took > 2*time.Second {
		t.Errorf("dhclient took %v to bind next to a looping script, want its usual time (under 2s)", took)
	}
	if lr.answered != 0 {
		t.Errorf("the looping client got %d answers, want none (failure mode drop)", lr.answered)
	}
	// Every looping Solicit, and nothing else, is dropped: it ran past its
	// budget, or was cut short when another looping call stopped the
	// interpreter (counted as an error).
	var st map[string]float64
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st = extStats(t, x.d, "loop")
		if st["drops"] >= float64(lr.sent) || time.Now().After(deadline) {
			break
		}
	}
	if st["drops"] != float64(lr.sent) || st["timeouts"] < 2 || st["timeouts"]+st["errors"] != st["drops"] || st["panics"] != 0 {
		t.Errorf("loop counters %v after %d looping Solicits: want each dropped after a timeout (or cut short by one), nothing else", st, lr.sent)
	}

	panicker := newProbe(t, x.cli, cliIf, probeMAC(9))
	panicker.noAnswer(t, panicker.solicit(t, "panicker", ""), time.Second)
	if st := extStats(t, x.d, "panic"); st["panics"] != 1 || st["drops"] != 1 {
		t.Errorf("panic counters %v: want 1 panic and 1 drop", st)
	}
	erring := newProbe(t, x.cli, cliIf, probeMAC(10))
	if adv := erring.mustAnswer(t, ctx, erring.solicit(t, "erring", "")); adv.MessageType != dhcpv6.MessageTypeAdvertise {
		t.Errorf("erring client: answer %s, want ADVERTISE (failure mode continue)", adv.MessageType)
	}
	if st := extStats(t, x.d, "error"); st["errors"] != 1 || st["drops"] != 0 {
		t.Errorf("error counters %v: want 1 error and no drop", st)
	}
	other := newProbe(t, x.cli, cliIf, probeMAC(11))
	if adv := other.mustAnswer(t, ctx, other.solicit(t, "", "")); adv.MessageType != dhcpv6.MessageTypeAdvertise {
		t.Errorf("well-behaved client after the failures: answer %s, want ADVERTISE", adv.MessageType)
	}
	if x.d.Process().Exited() {
		t.Fatalf("hook6d exited: %v", x.d.Process().Err())
	}
}

// perfPoints are the points of the load benchmark's scripts, one small
// script extension (testdata/scripts/perf.go) at each.
var perfPoints = []string{"post-packet-decode", "post-client-lookup", "lease-state-change", "pre-packet-encode"}

// startDirect is newDirect for benchmarks: hook6d with cfg on a fresh
// two-namespace lab.
func startDirect(tb testing.TB, cfg lab.Config) *direct {
	tb.Helper()
	l := lab.New(tb)
	srv, cli := l.Namespace("srv"), l.Namespace("cli")
	l.Link(srv, srvIf, cli, cliIf)
	srv.AddAddr(srvIf, netip.MustParsePrefix("2001:db8:1::1/64"))
	srv.MustLinkLocal(srvIf)
	cli.MustLinkLocal(cliIf)
	return &direct{lab: l, srv: srv, cli: cli, d: l.StartHook6d(srv, bins, cfg)}
}

// perfRun is one perfdhcp run at an asked rate.
type perfRun struct {
	asked int
	rate  float64 // completed exchanges per second
	lost  float64 // percent of Solicits or Requests unanswered, the worse
	cpu   time.Duration
	done  int // exchanges completed (Replies)
}

// ok reports whether the server kept up: under 1% lost and the asked rate
// reached.
func (r perfRun) ok() bool { return r.lost <= 1 && r.rate >= 0.95*float64(r.asked) }

// runPerf runs perfdhcp -6 for 3s at rate against x and measures hook6d's
// CPU time meanwhile.
func runPerf(b *testing.B, x *direct, rate int) perfRun {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cpu0, over0 := procCPU(b, x.d.Process().Pid()), rcvbufErrors(b, x.cli)
	res, err := x.cli.Perfdhcp(ctx, lab.PerfOptions{Iface: cliIf, Rate: rate, Clients: 10000000, Duration: 3 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	sa, rr := res.Exchanges["SOLICIT-ADVERTISE"], res.Exchanges["REQUEST-REPLY"]
	r := perfRun{asked: rate, rate: res.Rate, lost: max(sa.DropsRatio, rr.DropsRatio), cpu: procCPU(b, x.d.Process().Pid()) - cpu0, done: rr.Received}
	b.Logf("  asked %5d/s: %5.0f exchanges/s, %4.1f%% lost, latency Solicit %v Request %v, hook6d CPU %v, answers perfdhcp could not read %d",
		rate, r.rate, r.lost, sa.AvgDelay.Round(10*time.Microsecond), rr.AvgDelay.Round(10*time.Microsecond), r.cpu.Round(time.Millisecond),
		rcvbufErrors(b, x.cli)-over0)
	return r
}

// rcvbufErrors counts the UDP datagrams ns dropped because a socket's
// receive buffer was full: answers the load generator was too slow to read.
func rcvbufErrors(b *testing.B, ns *lab.Netns) int {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := ns.UDP6RcvbufErrors(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// procCPU is the CPU time (user and system) process pid has used.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name (in parentheses): utime and stime
	// are the 12th and 13th, in clock ticks of 1/100s.
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("parse /proc/%d/stat: %q", pid, st)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// perfRates are the steps of the load benchmark, exchanges per second.
var perfRates = []int{2000, 2500, 3000, 3500, 4000, 4500, 5000, 6000, 7000, 8000, 10000, 12000, 15000}

// perfSide is one server of the load benchmark.
type perfSide struct {
	name   string
	x      *direct
	best   float64       // highest rate sustained
	cpu    time.Duration // hook6d CPU per exchange at the first step
	failed bool
}

// step runs perfdhcp at rate against the side, once more if it loses
// too much (a stall of the shared machine), and records the outcome.
func (s *perfSide) step(b *testing.B, rate int) {
	b.Helper()
	for try := 0; try < 2; try++ {
		r := runPerf(b, s.x, rate)
		if s.cpu == 0 && r.done > 0 {
			s.cpu = r.cpu / time.Duration(r.done)
		}
		if r.ok() {
			s.best = max(s.best, r.rate)
			time.Sleep(500 * time.Millisecond)
			return
		}
		// Let the server drain its queue before the next run.
		time.Sleep(3 * time.Second)
	}
	s.failed = true
}

// BenchmarkScriptPerfdhcp measures what scripts cost a loaded server:
// the highest rate of perfdhcp -6 exchanges (Solicit-Advertise-Request-
// Reply, under 1% lost, stepped up from 2000/s) that hook6d sustains
// without extensions and with one small script at each of four points
// (post-packet-decode, post-client-lookup, lease-state-change,
// pre-packet-encode), and hook6d's CPU time per exchange at 2000/s. Both
// servers run side by side in labs of their own and take each step in
// turn, so a busy machine weighs on both alike. The target of issue #3
// is at least 80% of the rate without scripts. Run it alone, as root:
//
//	go test -run '^$' -bench ScriptPerfdhcp -benchtime 1x ./e2e/
func BenchmarkScriptPerfdhcp(b *testing.B) {
	base := baseConfig()
	base.Log.Level = "warn"
	scripted := baseConfig()
	scripted.Log.Level = "warn"
	for _, p := range perfPoints {
		scripted.Extensions = append(scripted.Extensions, lab.Extension{
			Name: "perf-" + p, Script: testScript(b, "perf.go"), Points: []string{p},
		})
	}
	var without, with float64
	var cpuWithout, cpuWith time.Duration
	for i := 0; i < b.N; i++ {
		sides := []*perfSide{
			{name: "without extensions", x: startDirect(b, base)},
			{name: "a script at each of 4 points", x: startDirect(b, scripted)},
		}
		for _, rate := range perfRates {
			for _, s := range sides {
				if !s.failed {
					b.Logf("%s:", s.name)
					s.step(b, rate)
				}
			}
			if sides[0].failed && sides[1].failed {
				break
			}
		}
		st, err := sides[1].x.d.Ctl().Stats(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("with scripts: extension calls %.0f, timeouts %.0f, errors %.0f; %d interpreters stopped",
			st.Sum("extensions.", ".calls"), st.Sum("extensions.", ".timeouts"), st.Sum("extensions.", ".errors"),
			strings.Count(sides[1].x.d.Logs(), `msg="script stopped"`))
		without, cpuWithout = without+sides[0].best, cpuWithout+sides[0].cpu
		with, cpuWith = with+sides[1].best, cpuWith+sides[1].cpu
	}
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(without/n, "exch/s-bare")
	b.ReportMetric(with/n, "exch/s-scripts")
	b.ReportMetric(100*with/without, "%-of-bare")
	b.ReportMetric(float64(cpuWithout.Microseconds())/n, "cpu-µs/exch-bare")
	b.ReportMetric(float64(cpuWith.Microseconds())/n, "cpu-µs/exch-scripts")
}
