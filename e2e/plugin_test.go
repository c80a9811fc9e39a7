package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"golang.org/x/net/ipv6"

	"github.com/hook6/hook6/e2e/lab"
)

// The plugin lab: clients on two ports of a relay that tags each port with
// a remote-id; hook6d, behind the relay, delegates prefixes through the
// example plugin examples/plugins/remoteid-prefix, built, packed,
// verified and installed here as an operator would.
const (
	pluginName    = "remoteid-prefix"
	pluginVersion = "1.0.0"
	pluginExt     = "by-port"
	// pluginBudget is the extension's budget: a call takes about 0.2 ms,
	// but the 2-core test machine, busy with other tests, now and then
	// leaves the plugin without a CPU for tens of milliseconds.
	// pluginSlack is what a relayed Solicit may take beyond the budget
	// (the wire, the relay in the test process, scheduling).
	pluginBudget = 200 * time.Millisecond
	pluginSlack  = 150 * time.Millisecond
	// pluginProbes remote-ids are in the plugin's table for the test's
	// own relayed Solicits, each with its own prefix.
	pluginProbes = 4096
)

var (
	pluginLinkAddr = netip.MustParseAddr("2001:db8:2::1")
	pluginAddrPool = netip.MustParsePrefix("2001:db8:2::/64")
	pluginPDPool   = netip.MustParsePrefix("2001:db8:9000::/40")
	pluginSrvAddr  = netip.MustParsePrefix("2001:db8:ff::1/64")
	pluginRelAddr  = netip.MustParsePrefix("2001:db8:ff::2/64")
)

// pluginPort is one relay port: the relay's interface towards a client
// namespace, the remote-id it adds, and the prefix the plugin's table
// gives that remote-id.
type pluginPort struct {
	iface    string
	remoteID []byte
	key      string // the init-args key naming remoteID
	prefix   netip.Prefix
}

var pluginPorts = []pluginPort{
	{"rd1", []byte{0, 0, 0, 0x0a, 0x0b, 0x0c}, "0000000a0b0c", netip.MustParsePrefix("2001:db8:90f0:100::/56")},
	{"rd2", []byte("port-2"), "text:port-2", netip.MustParsePrefix("2001:db8:90f0:200::/56")},
}

// pluginProbeRemoteID and pluginProbePrefix are the remote-id of probe i
// and the /56 the plugin's table gives it (2001:db8:9010::/56 onwards).
func pluginProbeRemoteID(i int) []byte { return []byte(fmt.Sprintf("probe-%d", i)) }

func pluginProbePrefix(i int) netip.Prefix {
	b := pluginPDPool.Addr().As16()
	b[5] = byte(0x10 + i>>8)
	b[6] = byte(i)
	return netip.PrefixFrom(netip.AddrFrom16(b), 56)
}

// pluginInitArgs is the plugin's table: the ports and the probes.
func pluginInitArgs() map[string]string {
	args := map[string]string{"on-miss": "continue"}
	for _, p := range pluginPorts {
		args[p.key] = p.prefix.String()
	}
	for i := range pluginProbes {
		args["text:"+string(pluginProbeRemoteID(i))] = pluginProbePrefix(i).String()
	}
	return args
}

// pluginCtl runs hook6ctl without a daemon (the plugin subcommands work on
// files) and returns its standard output.
func pluginCtl(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.Hook6ctl, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("hook6ctl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// pluginManifest is the part of a manifest the tests check.
type pluginManifest struct {
	Name            string   `json:"name"`
	Version         string   `json:"version"`
	ProtocolVersion int      `json:"protocol-version"`
	Points          []string `json:"points"`
	SHA256          string   `json:"sha256"`
	OS              string   `json:"os"`
	Arch            string   `json:"arch"`
}

// pluginPack builds the example plugin with go build, packs it with
// `hook6ctl plugin pack` (which asks the binary for its points) and checks
// the archive with `hook6ctl plugin verify`. It returns the archive.
func pluginPack(t testing.TB) string {
	t.Helper()
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, pluginName)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/plugins/"+pluginName)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build the example plugin: %v\n%s", err, out)
	}
	out, err := pluginCtl(t, "plugin", "pack", bin, "--name", pluginName, "--version", pluginVersion, "--out", dir, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var packed struct {
		Archive  string         `json:"archive"`
		Manifest pluginManifest `json:"manifest"`
	}
	if err := json.Unmarshal(out, &packed); err != nil {
		t.Fatalf("plugin pack -o json: %v: %s", err, out)
	}
	m := packed.Manifest
	sum := pluginFileSHA256(t, bin)
	wantArchive := filepath.Join(dir, fmt.Sprintf("%s-%s-%s-%s.tar.gz", pluginName, pluginVersion, m.OS, m.Arch))
	if packed.Archive != wantArchive || m.Name != pluginName || m.Version != pluginVersion || m.SHA256 != sum ||
		strings.Join(m.Points, ",") != "generate-lease" || m.ProtocolVersion < 1 {
		t.Fatalf("plugin pack wrote %s with manifest %+v; want %s, points [generate-lease] (asked from the binary), sha256 %s",
			packed.Archive, m, wantArchive, sum)
	}
	out, err = pluginCtl(t, "plugin", "verify", packed.Archive)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("ok: %s@%s", pluginName, pluginVersion); !strings.Contains(string(out), want) {
		t.Fatalf("plugin verify said %q, want %q", out, want)
	}
	return packed.Archive
}

func pluginFileSHA256(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// pluginInstall installs archive into dir with `hook6ctl plugin install`
// and checks that `plugin list` shows it; it returns the installed binary.
func pluginInstall(t testing.TB, archive, dir string) string {
	t.Helper()
	out, err := pluginCtl(t, "plugin", "install", archive, "--dir", dir, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		pluginManifest
		Binary string `json:"binary"`
	}
	if err := json.Unmarshal(out, &in); err != nil {
		t.Fatalf("plugin install -o json: %v: %s", err, out)
	}
	if want := filepath.Join(dir, pluginName, pluginVersion, pluginName); in.Binary != want {
		t.Fatalf("plugin install put the binary at %s, want %s", in.Binary, want)
	}
	if got := pluginFileSHA256(t, in.Binary); got != in.SHA256 {
		t.Fatalf("installed binary has sha256 %s, its manifest says %s", got, in.SHA256)
	}
	out, err = pluginCtl(t, "plugin", "list", "--dir", dir, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list []pluginManifest
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("plugin list -o json: %v: %s", err, out)
	}
	if len(list) != 1 || list[0].Name != pluginName || list[0].Version != pluginVersion || list[0].SHA256 != in.SHA256 {
		t.Fatalf("plugin list shows %+v, want only %s@%s", list, pluginName, pluginVersion)
	}
	return in.Binary
}

// pluginLab is the relayed lab with the plugin installed and hook6d
// serving through it.
type pluginLab struct {
	lab    *lab.Lab
	srv    *lab.Netns
	clis   []*lab.Netns // one per pluginPorts entry, on interface cliIf
	d      *lab.Hook6d
	relay  *pluginRelay
	dir    string // the plugin directory
	binary string // the installed plugin binary
}

// pluginConfig serves the relay's link: addresses as usual, delegated
// prefixes from the extension first (best-fit when it gives none).
func pluginConfig(dir string, ext lab.Extension) lab.Config {
	cfg := baseConfig()
	cfg.Server.Interfaces = nil
	cfg.Links = []lab.Link{{Name: "remote"}}
	cfg.Prefixes = []lab.Prefix{
		{Name: "remote-addr", Link: "remote", Address: pluginAddrPool.String(), DHCPType: "dhcp", Policy: "default"},
		{Name: "remote-pd", Link: "remote", Address: pluginPDPool.String(), DHCPType: "prefix-delegation", PrefixLength: 56,
			AllocationAlgorithms: []string{"extension", "best-fit"}, Policy: "default"},
	}
	cfg.Plugins = &lab.PluginsConfig{Dir: dir}
	cfg.Extensions = []lab.Extension{ext}
	return cfg
}

// pluginExtension names the installed plugin. With failure mode drop a
// Solicit the plugin cannot answer gets no Advertise, so every answer
// carries the plugin's choice; with continue it gets best-fit's.
func pluginExtension(failureMode string) lab.Extension {
	return lab.Extension{Name: pluginExt, Plugin: pluginName, Points: []string{"generate-lease"},
		InitArgs: pluginInitArgs(), Budget: pluginBudget.String(), FailureMode: failureMode}
}

// newPluginLab packs and installs the plugin and starts hook6d with it,
// and the relay; failureMode is the extension's.
func newPluginLab(t *testing.T, failureMode string) *pluginLab {
	t.Helper()
	archive := pluginPack(t)
	l := lab.New(t)
	x := &pluginLab{lab: l, dir: l.MkdirTemp("plugins-")}
	x.binary = pluginInstall(t, archive, x.dir)
	x.srv = l.Namespace("srv")
	rel := l.Namespace("rel")
	l.Link(x.srv, "up0", rel, "rup")
	x.srv.AddAddr("up0", pluginSrvAddr)
	rel.AddAddr("rup", pluginRelAddr)
	for i, p := range pluginPorts {
		cli := l.Namespace(fmt.Sprintf("c%d", i+1))
		l.Link(rel, p.iface, cli, cliIf)
		rel.MustLinkLocal(p.iface)
		cli.MustLinkLocal(cliIf)
		x.clis = append(x.clis, cli)
	}
	x.d = l.StartHook6d(x.srv, bins, pluginConfig(x.dir, pluginExtension(failureMode)))
	if !regexp.MustCompile(`plugin started.*plugin=` + pluginExt).MatchString(x.d.Logs()) {
		t.Fatalf("hook6d's log has no 'plugin started' line for %s", pluginExt)
	}
	x.relay = startPluginRelay(t, rel, pluginSrvAddr.Addr())
	return x
}

// dhclient starts dhclient -6 -P on port i and returns the prefix it binds.
func (x *pluginLab) dhclient(t *testing.T, ctx context.Context, i int) netip.Prefix {
	t.Helper()
	dh := x.lab.Dhclient(x.clis[i], cliIf)
	dh.Start(lab.DhclientMode{PD: true})
	p, _, err := dh.WaitPrefix(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatalf("dhclient on %s: %v", pluginPorts[i].iface, err)
	}
	return p
}

// pluginPID is the pid of hook6d's plugin child other than not, waited for
// until ctx ends.
func (x *pluginLab) pluginPID(t *testing.T, ctx context.Context, not int) int {
	t.Helper()
	for {
		if pid := pluginChild(x.d.Process().Pid()); pid != 0 && pid != not {
			return pid
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %s process under hook6d (pid %d) other than %d: %v", pluginName, x.d.Process().Pid(), not, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pluginChild finds a live child of parent running the plugin, 0 if none.
func pluginChild(parent int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut at the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		j := strings.IndexByte(s, '(')
		if i < 0 || j < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] == "Z" || s[j+1:i] != pluginName {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == parent {
			return pid
		}
	}
	return 0
}

// extCounter sums one counter of the plugin extension in `hook6ctl stats`.
func (x *pluginLab) extCounter(t *testing.T, name string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := x.d.Ctl().Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sum("extensions", pluginExt, name)
}

// A real client behind a relay that adds a remote-id gets exactly the
// delegated prefix the plugin's table gives that remote-id, with the
// plugin built, packed, verified and installed by hook6ctl.
func TestPluginRemoteIDPrefix(t *testing.T) {
	x := newPluginLab(t, "drop")
	ctx := timeout(t, 60*time.Second)
	for i, p := range pluginPorts {
		got := x.dhclient(t, ctx, i)
		if got != p.prefix {
			t.Errorf("dhclient -P behind port %s (remote-id %x) bound %v, want the plugin's %v", p.iface, p.remoteID, got, p.prefix)
		}
		if l := leaseOf(t, x.d, p.prefix); l.Kind != "pd" || l.State != "leased" || l.Link != "remote" {
			t.Errorf("lease of %v: %s %s on link %q, want a leased pd on remote", p.prefix, l.Kind, l.State, l.Link)
		}
	}
	// The relay's own Solicits with remote-ids from the table.
	for i := range 5 {
		r := x.relay.probe(i, 2*time.Second)
		if !r.answered || r.prefix != pluginProbePrefix(i) {
			t.Errorf("probe %d: answered %v with %v, want %v", i, r.answered, r.prefix, pluginProbePrefix(i))
		}
	}
	if n := x.extCounter(t, "calls"); n < float64(len(pluginPorts)+5) {
		t.Errorf("stats: %s made %v calls, want at least %d", pluginExt, n, len(pluginPorts)+5)
	}
}

// Killing the plugin process while relayed Solicits arrive every 10 ms:
// no Solicit waits longer than the budget (each is answered on time with
// the plugin's prefix, or dropped by the failure mode while the plugin is
// down), hook6 restarts the plugin, Solicits after the restart are all
// answered, and a client started at the kill binds to its prefix.
func TestPluginKilledUnderLoad(t *testing.T) {
	x := newPluginLab(t, "drop")
	ctx := timeout(t, 90*time.Second)
	if got := x.dhclient(t, ctx, 0); got != pluginPorts[0].prefix {
		t.Fatalf("dhclient bound %v before the kill, want %v", got, pluginPorts[0].prefix)
	}
	pid := x.pluginPID(t, ctx, 0)
	late := x.lab.Dhclient(x.clis[1], cliIf)
	restarted := make(chan time.Time, 1)
	ld := x.load(2*time.Second, 4*time.Second, func() {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Errorf("kill plugin %d: %v", pid, err)
		}
		go pluginWaitLog(x.d, "plugin restarted", 0, restarted)
		// A client that starts now binds once the plugin is back.
		late.Start(lab.DhclientMode{PD: true})
	})
	back := ld.backAt(t, restarted)
	t.Logf("plugin %d killed; %d in service %v later", pid, x.pluginPID(t, ctx, pid), back.Sub(ld.fault).Round(time.Millisecond))

	dropped := 0
	var outside []string
	for _, r := range ld.results {
		if !r.answered {
			dropped++
			// Solicits in flight at the kill or sent while the plugin was
			// down may go unanswered.
			if r.sent.Before(ld.fault.Add(-pluginBudget)) || r.sent.After(back) {
				outside = append(outside, fmt.Sprintf("probe %d sent %v after the kill (plugin back at %v) got no answer",
					r.i, r.sent.Sub(ld.fault).Round(time.Millisecond), back.Sub(ld.fault).Round(time.Millisecond)))
			}
			continue
		}
		if r.prefix != pluginProbePrefix(r.i) {
			t.Errorf("probe %d was offered %v, want the plugin's %v", r.i, r.prefix, pluginProbePrefix(r.i))
		}
	}
	pluginExplained(t, x.d, outside, ld.fault.Add(-pluginBudget), back)
	ld.checkLatency(t, x.d)
	t.Logf("%d relayed Solicits: %d dropped while the plugin was down", len(ld.results), dropped-len(outside))
	if !regexp.MustCompile(`plugin failed: restarting it.*pid=` + strconv.Itoa(pid)).MatchString(x.d.Logs()) {
		t.Errorf("hook6d's log does not say it restarts plugin %d", pid)
	}
	if errs := x.extCounter(t, "errors"); dropped > 0 && errs < 1 {
		t.Errorf("stats: %d Solicits dropped but no errors counted for %s", dropped, pluginExt)
	}
	got, _, err := late.WaitPrefix(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatalf("dhclient started at the kill: %v", err)
	}
	if got != pluginPorts[1].prefix {
		t.Errorf("dhclient started at the kill bound %v, want the plugin's %v", got, pluginPorts[1].prefix)
	}
	if x.d.Process().Exited() {
		t.Fatalf("hook6d exited: %v", x.d.Process().Err())
	}
}

// A plugin frozen under load (SIGSTOP: it takes calls and never answers)
// costs each Solicit at most the budget: with failure mode continue every
// Solicit is answered on time, by best-fit while the plugin does not
// answer. After three calls in a row without an answer hook6 replaces the
// plugin, and the Solicits after that get the plugin's prefixes again.
func TestPluginHangsUnderLoad(t *testing.T) {
	x := newPluginLab(t, "continue")
	ctx := timeout(t, 90*time.Second)
	pid := x.pluginPID(t, ctx, 0)
	restarted := make(chan time.Time, 1)
	ld := x.load(2*time.Second, 4*time.Second, func() {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Errorf("stop plugin %d: %v", pid, err)
		}
		go pluginWaitLog(x.d, "plugin restarted", 0, restarted)
	})
	back := ld.backAt(t, restarted)
	t.Logf("plugin %d frozen; %d in service %v later", pid, x.pluginPID(t, ctx, pid), back.Sub(ld.fault).Round(time.Millisecond))
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(st), ") Z") {
		t.Errorf("the frozen plugin %d still runs after its replacement: %s", pid, st)
	}
	bestFit := 0
	var outside []string
	for _, r := range ld.results {
		since := r.sent.Sub(ld.fault).Round(time.Millisecond)
		switch {
		case !r.answered:
			t.Errorf("probe %d sent %v after the freeze got no answer; failure mode continue answers every Solicit", r.i, since)
		case r.prefix == pluginProbePrefix(r.i):
		case r.sent.Before(ld.fault) || r.sent.After(back):
			outside = append(outside, fmt.Sprintf("probe %d sent %v after the freeze (plugin back at %v) was offered %v, want the plugin's %v",
				r.i, since, back.Sub(ld.fault).Round(time.Millisecond), r.prefix, pluginProbePrefix(r.i)))
		case !pluginPDPool.Contains(r.prefix.Addr()) || r.prefix.Bits() != 56:
			t.Errorf("probe %d was offered %v, want a /56 of %v", r.i, r.prefix, pluginPDPool)
		default:
			bestFit++
		}
	}
	pluginExplained(t, x.d, outside, ld.fault, back)
	ld.checkLatency(t, x.d)
	t.Logf("%d relayed Solicits: %d answered by best-fit while the plugin did not answer", len(ld.results), bestFit)
	if bestFit == 0 {
		t.Errorf("no Solicit was answered without the plugin while it was frozen")
	}
	if !regexp.MustCompile(`plugin failed: restarting it.*pid=` + strconv.Itoa(pid) + `.*calls in a row without a valid answer`).MatchString(x.d.Logs()) {
		t.Errorf("hook6d's log does not say it restarts the frozen plugin %d", pid)
	}
	if n := x.extCounter(t, "timeouts"); n < 3 {
		t.Errorf("stats: %v timeouts counted for %s, want at least 3", n, pluginExt)
	}
}

// One byte changed in the installed binary makes the plugin refuse to
// load, with a log line saying so, wherever hook6 starts it: `hook6ctl
// reload` reports the error and the running plugin keeps serving; a
// restart after a crash keeps failing (Solicits dropped) until the binary
// is put back; `hook6d -t` and hook6d's start refuse the config.
func TestPluginTamperedBinaryRefused(t *testing.T) {
	x := newPluginLab(t, "drop")
	ctx := timeout(t, 90*time.Second)
	next := 0
	answered := func(want bool, when string) {
		t.Helper()
		r := x.relay.probe(next, time.Second)
		next++
		switch {
		case want && (!r.answered || r.prefix != pluginProbePrefix(r.i)):
			t.Fatalf("%s: Solicit answered %v with %v, want the plugin's %v", when, r.answered, r.prefix, pluginProbePrefix(r.i))
		case !want && r.answered:
			t.Fatalf("%s: Solicit answered with %v, want it dropped (no plugin, failure mode drop)", when, r.prefix)
		}
	}
	answered(true, "before tampering")
	pid := x.pluginPID(t, ctx, 0)

	orig, err := os.ReadFile(x.binary)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(orig)
	bad[len(bad)/2] ^= 0x01
	origSum, badSum := sha256.Sum256(orig), sha256.Sum256(bad)
	refusal := regexp.MustCompile(`level=ERROR msg="plugin binary does not match the sha256 in its manifest: refusing to load it" plugin=` +
		pluginExt + ` path=` + regexp.QuoteMeta(x.binary) + ` sha256=` + hex.EncodeToString(badSum[:]) +
		` manifest-sha256=` + hex.EncodeToString(origSum[:]))
	pluginReplaceFile(t, x.binary, bad)

	// Reload: refused, the running plugin keeps serving.
	_, err = x.d.Ctl().Run(ctx, "reload")
	if err == nil || !strings.Contains(err.Error(), "sha256 does not match the manifest: refusing to load it") {
		t.Fatalf("hook6ctl reload with a tampered plugin: %v, want the checksum refusal", err)
	}
	if n := len(refusal.FindAllString(x.d.Logs(), -1)); n != 1 {
		t.Fatalf("hook6d logged the refusal %d times after the reload, want once:\n%s", n, x.d.Logs())
	}
	answered(true, "after the refused reload")
	if now := pluginChild(x.d.Process().Pid()); now != pid {
		t.Fatalf("the plugin serving is %d, want the one before the reload, %d", now, pid)
	}

	// A crash: every restart is refused until the binary is back.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	failed := regexp.MustCompile(`msg="plugin restart failed" plugin=` + pluginExt + ` attempt=1 .*sha256 does not match the manifest: refusing to load it`)
	if err := x.d.WaitLog(ctx, failed); err != nil {
		t.Fatal(err)
	}
	if n := len(refusal.FindAllString(x.d.Logs(), -1)); n < 2 {
		t.Fatalf("no refusal log line for the restart")
	}
	answered(false, "while the tampered plugin cannot restart")
	restarted := make(chan time.Time, 1)
	go pluginWaitLog(x.d, "plugin restarted", 0, restarted)
	pluginReplaceFile(t, x.binary, orig)
	select {
	case <-restarted:
	case <-ctx.Done():
		t.Fatal("the plugin did not restart once its binary was put back")
	}
	answered(true, "after the binary was put back")

	// hook6d -t and a fresh start refuse the tampered binary too.
	pluginReplaceFile(t, x.binary, bad)
	out, err := x.srv.Run(ctx, bins.Hook6d, "-t", "-c", x.d.ConfigPath)
	if err == nil || !strings.Contains(out, "sha256 does not match the manifest: refusing to load it") {
		t.Fatalf("hook6d -t with a tampered plugin: %v: %s", err, out)
	}
	x.d.Stop()
	out, err = x.srv.Run(ctx, bins.Hook6d, "-c", x.d.ConfigPath)
	if err == nil || !refusal.MatchString(out) {
		t.Fatalf("hook6d started with a tampered plugin (%v), want the refusal log line:\n%s", err, out)
	}
	pluginReplaceFile(t, x.binary, orig)
	x.d.Start()
	answered(true, "after a start with the binary put back")
}

// pluginReplaceFile puts data at path as a new file renamed over the old:
// a running binary cannot be opened for writing (ETXTBSY), and an
// operator or attacker replaces one this way.
func pluginReplaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// pluginLoad is one run of relayed Solicits every 10 ms with a fault
// injected part way.
type pluginLoad struct {
	results []pluginProbeResult
	fault   time.Time // when the fault was injected
}

// load sends a probe every 10 ms for before+after, calling fault at
// before, and returns once every probe is answered or given up.
func (x *pluginLab) load(before, after time.Duration, fault func()) pluginLoad {
	const every = 10 * time.Millisecond
	wait := pluginBudget + pluginSlack + time.Second // longer than any answer on time
	var (
		ld pluginLoad
		mu sync.Mutex
		wg sync.WaitGroup
	)
	tick := time.NewTicker(every)
	defer tick.Stop()
	start := time.Now()
	for i := 0; time.Since(start) < before+after; i++ {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := x.relay.probe(i, wait)
			mu.Lock()
			ld.results = append(ld.results, r)
			mu.Unlock()
		}()
		if ld.fault.IsZero() && time.Since(start) >= before {
			ld.fault = time.Now()
			fault()
		}
	}
	wg.Wait()
	return ld
}

// backAt is when the plugin was in service again, from ch.
func (ld pluginLoad) backAt(t *testing.T, ch <-chan time.Time) time.Time {
	t.Helper()
	select {
	case at := <-ch:
		return at
	case <-time.After(10 * time.Second):
		t.Fatalf("no 'plugin restarted' in hook6d's log after the fault")
		return time.Time{}
	}
}

// checkLatency fails the test for every answer that came later than the
// budget (plus slack), for every failed plugin call that hook6d logs as
// taking longer (those include the Solicits dropped), and for a run where
// most Solicits went unanswered.
func (ld pluginLoad) checkLatency(t *testing.T, d *lab.Hook6d) {
	t.Helper()
	failed := regexp.MustCompile(`msg="extension failed" extension=` + pluginExt + ` .*took=(\S+)`)
	var calls int
	for _, m := range failed.FindAllStringSubmatch(d.Logs(), -1) {
		calls++
		took, err := time.ParseDuration(m[1])
		if err != nil {
			t.Errorf("hook6d logs a failed call that took %q: %v", m[1], err)
		} else if took > pluginBudget+pluginSlack {
			t.Errorf("hook6d logs a failed plugin call that took %v, over the budget %v (+%v slack): %s", took, pluginBudget, pluginSlack, m[0])
		}
	}
	if calls == 0 {
		t.Errorf("hook6d logs no failed call of %s", pluginExt)
	}
	var answered int
	var slowest time.Duration
	for _, r := range ld.results {
		if !r.answered {
			continue
		}
		answered++
		slowest = max(slowest, r.latency)
		if r.latency > pluginBudget+pluginSlack {
			t.Errorf("probe %d sent %v after the fault waited %v for its answer, over the budget %v (+%v slack)",
				r.i, r.sent.Sub(ld.fault).Round(time.Millisecond), r.latency, pluginBudget, pluginSlack)
		}
	}
	t.Logf("%d of %d relayed Solicits answered, the slowest in %v (budget %v)", answered, len(ld.results), slowest, pluginBudget)
	if answered < len(ld.results)*9/10 {
		t.Errorf("only %d of %d Solicits answered", answered, len(ld.results))
	}
}

// pluginCPU returns the CPU time (user and system) of each process.
func pluginCPU(b *testing.B, pids []int) []time.Duration {
	b.Helper()
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			b.Fatal(err)
		}
		s := string(st)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		// f[0] is field 3 (state); utime and stime are fields 14 and 15,
		// in clock ticks of 10 ms.
		for _, v := range f[11:13] {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("/proc/%d/stat: %v", pid, err)
			}
			out[i] += time.Duration(n) * 10 * time.Millisecond
		}
	}
	return out
}

// pluginExplained fails the test with the failures outside the fault's
// window [from, to) beyond the calls hook6d logs as over budget that
// started outside it: on this busy machine a healthy plugin is now and
// then left without a CPU for its whole budget, and its Solicit then
// follows the failure mode like any failed call. Anything else is an
// error.
func pluginExplained(t *testing.T, d *lab.Hook6d, failures []string, from, to time.Time) {
	t.Helper()
	line := regexp.MustCompile(`time=(\S+) level=WARN msg="extension failed" extension=` + pluginExt + ` .*took=(\S+) error="time budget exceeded`)
	starved := 0
	for _, m := range line.FindAllStringSubmatch(d.Logs(), -1) {
		at, err1 := time.Parse(time.RFC3339Nano, m[1])
		took, err2 := time.ParseDuration(m[2])
		if err1 != nil || err2 != nil {
			t.Errorf("unreadable log line %q: %v %v", m[0], err1, err2)
			continue
		}
		if start := at.Add(-took); start.Before(from) || !start.Before(to) {
			starved++
		}
	}
	if len(failures) > starved {
		t.Errorf("%d Solicits failed outside the fault's window, %d of them explained by calls over budget:\n%s",
			len(failures), starved, strings.Join(failures, "\n"))
	} else if len(failures) > 0 {
		t.Logf("%d Solicits outside the fault's window followed the failure mode after calls over budget (a starved CPU)", len(failures))
	}
}

// pluginWaitLog sends on at the time when the daemon's log holds more than
// seen lines containing line (polled every 10 ms, for at most a minute).
func pluginWaitLog(d *lab.Hook6d, line string, seen int, at chan<- time.Time) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Count(d.Logs(), line) > seen {
			at <- time.Now()
			return
		}
	}
}

// pluginRelay is a DHCPv6 relay agent (RFC 8415 section 19) that adds a
// Remote-ID (RFC 4649) per port, which ISC dhcrelay -6 cannot. It runs in
// the relay namespace on port 547, relays its ports' clients to the server
// and the server's Relay-repl back, and sends Solicits of its own (probe)
// whose answers it times.
type pluginRelay struct {
	logf   func(format string, args ...any)
	conn   *net.UDPConn
	pc     *ipv6.PacketConn
	server *net.UDPAddr
	ports  map[int]pluginPort // by interface index
	index  map[string]int     // interface index by name

	mu      sync.Mutex
	pending map[dhcpv6.TransactionID]chan pluginAnswer
}

// pluginProbeIface is the Interface-ID of the relay's own Solicits.
const pluginProbeIface = "probe"

type pluginAnswer struct {
	msg *dhcpv6.Message
	at  time.Time
}

// pluginProbeResult is one probe: when it was sent, whether and how fast
// it was answered, and the delegated prefix offered.
type pluginProbeResult struct {
	i        int
	sent     time.Time
	answered bool
	latency  time.Duration
	prefix   netip.Prefix
}

func startPluginRelay(t *testing.T, ns *lab.Netns, server netip.Addr) *pluginRelay {
	t.Helper()
	conn, err := ns.ListenUDP(&net.UDPAddr{IP: net.IPv6unspecified, Port: dhcpv6.DefaultServerPort})
	if err != nil {
		t.Fatal(err)
	}
	r := &pluginRelay{
		logf: t.Logf, conn: conn, pc: ipv6.NewPacketConn(conn),
		server:  &net.UDPAddr{IP: server.AsSlice(), Port: dhcpv6.DefaultServerPort},
		ports:   map[int]pluginPort{},
		index:   map[string]int{},
		pending: map[dhcpv6.TransactionID]chan pluginAnswer{},
	}
	if err := r.pc.SetControlMessage(ipv6.FlagInterface, true); err != nil {
		t.Fatalf("relay: %v", err)
	}
	for _, p := range pluginPorts {
		ifi, err := ns.Interface(p.iface)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.pc.JoinGroup(ifi, &net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers}); err != nil {
			t.Fatalf("relay: join ff02::1:2 on %s: %v", p.iface, err)
		}
		r.ports[ifi.Index] = p
		r.index[p.iface] = ifi.Index
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.serve()
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return r
}

// serve relays until the socket is closed.
func (r *pluginRelay) serve() {
	buf := make([]byte, 65536)
	for {
		n, cm, src, err := r.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		at := time.Now()
		d, err := dhcpv6.FromBytes(buf[:n])
		if err != nil {
			continue
		}
		if rm, ok := d.(*dhcpv6.RelayMessage); ok {
			if rm.MessageType == dhcpv6.MessageTypeRelayReply {
				r.fromServer(rm, at)
			}
			continue
		}
		ua, ok := src.(*net.UDPAddr)
		if cm == nil || !ok {
			continue
		}
		if p, ok := r.ports[cm.IfIndex]; ok {
			r.forward([]byte(p.iface), p.remoteID, ua.IP, d)
		}
	}
}

// forward sends a client's message to the server in a Relay-forw.
func (r *pluginRelay) forward(iface, remoteID []byte, peer net.IP, m dhcpv6.DHCPv6) {
	rf := &dhcpv6.RelayMessage{
		MessageType: dhcpv6.MessageTypeRelayForward,
		LinkAddr:    pluginLinkAddr.AsSlice(),
		PeerAddr:    peer,
	}
	rf.AddOption(dhcpv6.OptInterfaceID(iface))
	rf.AddOption(&dhcpv6.OptRemoteID{EnterpriseNumber: 3561, RemoteID: remoteID})
	rf.AddOption(dhcpv6.OptRelayMessage(m))
	if _, err := r.conn.WriteToUDP(rf.ToBytes(), r.server); err != nil {
		r.logf("relay: forward to %v: %v", r.server, err)
	}
}

// fromServer hands a Relay-repl's message to the probe waiting for it, or
// sends it to the client on the port its Interface-ID names.
func (r *pluginRelay) fromServer(rm *dhcpv6.RelayMessage, at time.Time) {
	inner, ok := rm.Options.RelayMessage().(*dhcpv6.Message)
	if !ok {
		return
	}
	iface := string(rm.Options.InterfaceID())
	if iface == pluginProbeIface {
		r.mu.Lock()
		ch := r.pending[inner.TransactionID]
		delete(r.pending, inner.TransactionID)
		r.mu.Unlock()
		if ch != nil {
			ch <- pluginAnswer{msg: inner, at: at}
		}
		return
	}
	idx, ok := r.index[iface]
	if !ok {
		return
	}
	// A numeric zone: a name would be resolved in the test's namespace.
	dst := &net.UDPAddr{IP: rm.PeerAddr, Port: dhcpv6.DefaultClientPort, Zone: strconv.Itoa(idx)}
	if _, err := r.conn.WriteToUDP(inner.ToBytes(), dst); err != nil {
		r.logf("relay: answer %v: %v", dst, err)
	}
}

// probe sends, as the relay, the Solicit of a new client (DUID-LL made
// from i) for one delegated prefix, with probe i's remote-id, and waits
// up to wait for the Advertise.
func (r *pluginRelay) probe(i int, wait time.Duration) pluginProbeResult {
	mac := net.HardwareAddr{0x02, 0x6b, 0x36, byte(i >> 16), byte(i >> 8), byte(i)}
	sol, err := dhcpv6.NewMessage()
	res := pluginProbeResult{i: i}
	if err != nil {
		return res
	}
	sol.MessageType = dhcpv6.MessageTypeSolicit
	sol.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: 1, LinkLayerAddr: mac}))
	sol.AddOption(dhcpv6.OptElapsedTime(0))
	sol.AddOption(&dhcpv6.OptIAPD{IaId: [4]byte{0, 0, 0, 1}})
	ch := make(chan pluginAnswer, 1)
	r.mu.Lock()
	r.pending[sol.TransactionID] = ch
	r.mu.Unlock()
	peer := net.IP{0xfe, 0x80, 14: byte(i >> 8), 15: byte(i)}
	res.sent = time.Now()
	r.forward([]byte(pluginProbeIface), pluginProbeRemoteID(i), peer, sol)
	select {
	case a := <-ch:
		res.answered, res.latency = true, a.at.Sub(res.sent)
		if pd := a.msg.Options.OneIAPD(); pd != nil {
			if ps := pd.Options.Prefixes(); len(ps) > 0 && ps[0].Prefix != nil {
				res.prefix = pluginIPNetPrefix(ps[0].Prefix)
			}
		}
	case <-time.After(wait):
		r.mu.Lock()
		delete(r.pending, sol.TransactionID)
		r.mu.Unlock()
	}
	return res
}

func pluginIPNetPrefix(n *net.IPNet) netip.Prefix {
	a, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

// BenchmarkPluginPerfdhcp measures perfdhcp's 4-way exchanges per second
// against hook6d on the direct lab, without extensions and with the
// example plugin at generate-lease (first allocation algorithm of the
// address pool: one plugin call per new client; perfdhcp sends no
// remote-id, so the plugin gives nothing and random allocates). Run:
//
//	go test -run '^$' -bench PluginPerfdhcp -benchtime 1x ./e2e/
//
// HOOK6_PERF_RATE sets perfdhcp's offered rate (default 4000/s). Reported:
// exchanges/s achieved, drops-% (of Solicits and Requests), exchange-ms
// (average Solicit-Advertise plus Request-Reply delay), the CPU time of
// hook6d and of the plugin per completed exchange, and the plugin's calls
// and calls over its budget (50 ms).
func BenchmarkPluginPerfdhcp(b *testing.B) {
	rate := 4000
	if s := os.Getenv("HOOK6_PERF_RATE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("HOOK6_PERF_RATE=%q: %v", s, err)
		}
		rate = n
	}
	archive := pluginPack(b)
	for _, withPlugin := range []bool{false, true} {
		name := "no-extension"
		if withPlugin {
			name = "plugin-generate-lease"
		}
		b.Run(name, func(b *testing.B) {
			l := lab.New(b)
			srv := l.Namespace("srv")
			cli := l.Namespace("cli")
			l.Link(srv, srvIf, cli, cliIf)
			srv.AddAddr(srvIf, netip.MustParsePrefix("2001:db8:1::1/64"))
			srv.MustLinkLocal(srvIf)
			cli.MustLinkLocal(cliIf)
			cfg := baseConfig()
			if withPlugin {
				dir := l.MkdirTemp("plugins-")
				pluginInstall(b, archive, dir)
				cfg.Plugins = &lab.PluginsConfig{Dir: dir}
				cfg.Extensions = []lab.Extension{{Name: pluginExt, Plugin: pluginName, Points: []string{"generate-lease"},
					InitArgs: map[string]string{pluginPorts[0].key: pluginPorts[0].prefix.String()}}}
				cfg.Prefixes[0].AllocationAlgorithms = []string{"extension", "client-request", "random"}
			}
			d := l.StartHook6d(srv, bins, cfg)
			pids := []int{d.Process().Pid()}
			if withPlugin {
				pids = append(pids, pluginChild(pids[0]))
			}
			var rateSum, dropSum, delaySum float64
			var cpu [2]time.Duration
			exchanges := 0
			for range b.N {
				before := pluginCPU(b, pids)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				res, err := cli.Perfdhcp(ctx, lab.PerfOptions{Iface: cliIf, Rate: rate, Clients: 1000000, Duration: 10 * time.Second})
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				after := pluginCPU(b, pids)
				for i := range after {
					cpu[i] += after[i] - before[i]
				}
				exchanges += res.Exchanges["REQUEST-REPLY"].Received
				sa, rr := res.Exchanges["SOLICIT-ADVERTISE"], res.Exchanges["REQUEST-REPLY"]
				if sa.Sent == 0 || rr.Sent == 0 {
					b.Fatalf("perfdhcp sent no exchanges:\n%s", res.Output)
				}
				rateSum += res.Rate
				dropSum += 100 * float64(sa.Drops+rr.Drops) / float64(sa.Sent+rr.Sent)
				delaySum += float64(sa.AvgDelay+rr.AvgDelay) / float64(time.Millisecond)
			}
			n := float64(b.N)
			b.ReportMetric(rateSum/n, "exchanges/s")
			b.ReportMetric(dropSum/n, "drops-%")
			b.ReportMetric(delaySum/n, "exchange-ms")
			if exchanges > 0 {
				b.ReportMetric(float64(cpu[0]/time.Microsecond)/float64(exchanges), "hook6d-cpu-us/exchange")
				if withPlugin {
					b.ReportMetric(float64(cpu[1]/time.Microsecond)/float64(exchanges), "plugin-cpu-us/exchange")
				}
			}
			if withPlugin {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				st, err := d.Ctl().Stats(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if calls := st.Sum("extensions", pluginExt, "calls"); calls == 0 {
					b.Fatalf("the plugin was not called: %v", st)
				}
				b.ReportMetric(st.Sum("extensions", pluginExt, "calls")/n, "plugin-calls/op")
				b.ReportMetric(st.Sum("extensions", pluginExt, "timeouts")/n, "plugin-timeouts/op")
			}
		})
	}
}
