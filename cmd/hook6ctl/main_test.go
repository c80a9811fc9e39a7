package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hook6/hook6/control"
	"github.com/hook6/hook6/core/lease"
)

// fakeBackend is a unit-test stand-in for hook6d behind the control API.
type fakeBackend struct {
	mu        sync.Mutex
	leases    []lease.Lease
	reloadErr error
	stats     map[string]any
}

func (f *fakeBackend) Status() control.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return control.Status{Version: "0.9.1", UptimeSeconds: 90061, ServerDUID: "00:01:00:01:2c:3d:4e:5f",
		ConfigFile: "/etc/hook6/hook6.yaml", Interfaces: []string{"eth0", "eth1"}, Links: 3, Leases: len(f.leases)}
}

func (f *fakeBackend) Leases(flt control.LeaseFilter) ([]control.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []control.Lease
	for _, l := range f.leases {
		if flt.Matches(l.Prefix, l.DUID) {
			out = append(out, control.LeaseOf(l))
		}
	}
	return out, nil
}

func (f *fakeBackend) Lease(p netip.Prefix) (control.Lease, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.leases {
		if l.Prefix == p {
			return control.LeaseOf(l), true
		}
	}
	return control.Lease{}, false
}

func (f *fakeBackend) DeleteLeases(_ context.Context, within netip.Prefix) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var kept []lease.Lease
	for _, l := range f.leases {
		if !control.Within(within, l.Prefix) {
			kept = append(kept, l)
		}
	}
	n := len(f.leases) - len(kept)
	f.leases = kept
	return n, nil
}

func (f *fakeBackend) Reload() error { return f.reloadErr }

func (f *fakeBackend) Stats() map[string]any { return f.stats }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newFake() *fakeBackend {
	mk := func(p string, k lease.Kind, duid []byte, iaid uint32, pref, valid time.Duration) lease.Lease {
		return lease.Lease{Prefix: netip.MustParsePrefix(p), Kind: k, DUID: duid, IAID: iaid, Link: "lan",
			PrefixName: "lan-addr", State: lease.Leased, Preferred: pref, Valid: valid, Start: t0, Expires: t0.Add(valid)}
	}
	return &fakeBackend{
		leases: []lease.Lease{
			mk("2001:db8:1::10/128", lease.NA, []byte{0, 3, 0, 1, 0xaa}, 1, 7*24*time.Hour, 14*24*time.Hour),
			mk("2001:db8:1::1234/128", lease.NA, []byte{0, 3, 0, 1, 0xbb}, 7, 90*time.Minute, 36*time.Hour),
			mk("2001:db8:8000:100::/56", lease.PD, []byte{0, 3, 0, 1, 0xaa}, 3, 7*24*time.Hour, 14*24*time.Hour),
		},
		stats: map[string]any{
			"packets": map[string]any{
				"received": map[string]any{"solicit": 12, "request": 10},
				"dropped":  map[string]any{"malformed": 2},
			},
			"leases":   map[string]any{"active": 3},
			"failover": map[string]any{"state": "normal", "updates-sent": 40},
		},
	}
}

// startFake serves b on a control socket in a temp dir and returns the
// server (for extra routes) and the socket path.
func startFake(t testing.TB, b control.Backend) (*control.Server, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "control.sock")
	s := control.NewServer(b, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, sock) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	for i := 0; ; i++ {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			break
		}
		if i == 200 {
			t.Fatalf("control socket never came up: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s, sock
}

// runCLI runs hook6ctl with args against the socket (passed as
// HOOK6_SOCKET) and returns the exit code, stdout and stderr.
func runCLI(t *testing.T, sock string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		if k == "HOOK6_SOCKET" {
			return sock
		}
		return ""
	}
	code := run(context.Background(), args, &out, &errb, getenv)
	return code, out.String(), errb.String()
}

func TestStatus(t *testing.T) {
	_, sock := startFake(t, newFake())
	code, out, errs := runCLI(t, sock, "status")
	want := `version:      0.9.1
uptime:       1d1h1m1s
server DUID:  00:01:00:01:2c:3d:4e:5f
config file:  /etc/hook6/hook6.yaml
interfaces:   eth0, eth1
links:        3
leases:       3
failover:     none
`
	if code != 0 || out != want {
		t.Errorf("status = %d\n%s\nstderr %q\nwant\n%s", code, out, errs, want)
	}
	code, out, _ = runCLI(t, sock, "status", "-o", "json")
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("status -o json = %d %q: %v", code, out, err)
	}
	if st.Version != "0.9.1" || st.UptimeSeconds != 90061 || st.Leases != 3 || len(st.Interfaces) != 2 {
		t.Errorf("status json = %+v", st)
	}
}

func TestLeaseList(t *testing.T) {
	_, sock := startFake(t, newFake())
	code, out, errs := runCLI(t, sock, "lease", "list")
	want := `PREFIX                  KIND  STATE   DUID            IAID  LINK  PREFIX-NAME  PREFERRED  VALID  EXPIRES
2001:db8:1::10/128      na    leased  00:03:00:01:aa  1     lan   lan-addr     7d         14d    2026-03-15T12:00:00Z
2001:db8:1::1234/128    na    leased  00:03:00:01:bb  7     lan   lan-addr     1h30m      1d12h  2026-03-03T00:00:00Z
2001:db8:8000:100::/56  pd    leased  00:03:00:01:aa  3     lan   lan-addr     7d         14d    2026-03-15T12:00:00Z
`
	if code != 0 || out != want {
		t.Errorf("lease list = %d\n%s\nstderr %q\nwant\n%s", code, out, errs, want)
	}

	code, out, _ = runCLI(t, sock, "lease", "list", "--duid", "0003:0001:AA", "-o", "json")
	var ls []control.Lease
	if err := json.Unmarshal([]byte(out), &ls); err != nil || code != 0 {
		t.Fatalf("lease list --duid -o json = %d %q: %v", code, out, err)
	}
	if len(ls) != 2 || ls[0].Prefix != "2001:db8:1::10/128" || ls[1].Kind != "pd" || ls[1].Valid != 1209600 {
		t.Errorf("by DUID = %+v", ls)
	}

	code, out, _ = runCLI(t, sock, "lease", "list", "--prefix", "2001:db8:8000::/40")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "2001:db8:8000:100::/56  pd") {
		t.Errorf("by prefix = %d %q", code, out)
	}
	code, out, _ = runCLI(t, sock, "lease", "list", "--prefix", "2001:db9::/32")
	if code != 0 || out != "no leases\n" {
		t.Errorf("empty list = %d %q", code, out)
	}
	code, out, _ = runCLI(t, sock, "lease", "list", "--prefix", "2001:db9::/32", "-o", "json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("empty list json = %d %q, want []", code, out)
	}
}

func TestLeaseShow(t *testing.T) {
	_, sock := startFake(t, newFake())
	code, out, errs := runCLI(t, sock, "lease", "show", "2001:db8:1::1234")
	want := `prefix:       2001:db8:1::1234/128
kind:         na
state:        leased
duid:         00:03:00:01:bb
iaid:         7
link:         lan
prefix-name:  lan-addr
preferred:    1h30m
valid:        1d12h
start:        2026-03-01T12:00:00Z
expires:      2026-03-03T00:00:00Z
`
	if code != 0 || out != want {
		t.Errorf("lease show = %d\n%s\nstderr %q\nwant\n%s", code, out, errs, want)
	}
	code, out, _ = runCLI(t, sock, "-o", "json", "lease", "show", "2001:db8:8000:100::/56")
	var l control.Lease
	if err := json.Unmarshal([]byte(out), &l); err != nil || code != 0 {
		t.Fatalf("lease show json = %d %q: %v", code, out, err)
	}
	if l.Kind != "pd" || l.IAID != 3 || !l.Expires.Equal(t0.Add(14*24*time.Hour)) {
		t.Errorf("lease show json = %+v", l)
	}
	code, out, errs = runCLI(t, sock, "lease", "show", "2001:db8::99")
	if code != 1 || out != "" || errs != "hook6ctl: no lease of 2001:db8::99/128\n" {
		t.Errorf("missing lease = %d %q %q, want exit 1 and message", code, out, errs)
	}
}

func TestLeaseDelete(t *testing.T) {
	b := newFake()
	_, sock := startFake(t, b)
	code, out, _ := runCLI(t, sock, "lease", "delete", "2001:db8:1::10")
	if code != 0 || out != "deleted 1 lease within 2001:db8:1::10/128\n" {
		t.Errorf("delete address = %d %q", code, out)
	}
	code, out, _ = runCLI(t, sock, "lease", "delete", "2001:db8:1::/64", "-o", "json")
	if code != 0 || !strings.Contains(out, `"deleted": 1`) {
		t.Errorf("delete json = %d %q", code, out)
	}
	code, out, _ = runCLI(t, sock, "lease", "delete", "::/0")
	if code != 0 || out != "deleted 1 lease within ::/0\n" || len(b.leases) != 0 {
		t.Errorf("delete all = %d %q, backend left %d", code, out, len(b.leases))
	}
	code, out, _ = runCLI(t, sock, "lease", "delete", "::/0")
	if code != 0 || out != "deleted 0 leases within ::/0\n" {
		t.Errorf("delete none = %d %q", code, out)
	}
}

func TestReload(t *testing.T) {
	b := newFake()
	_, sock := startFake(t, b)
	code, out, _ := runCLI(t, sock, "reload")
	if code != 0 || out != "configuration reloaded\n" {
		t.Errorf("reload = %d %q", code, out)
	}
	code, out, _ = runCLI(t, sock, "reload", "-o", "json")
	if code != 0 || !strings.Contains(out, `"reloaded": true`) {
		t.Errorf("reload json = %d %q", code, out)
	}
	b.reloadErr = errors.New("/etc/hook6.yaml:12: prefixes[1].link: no link named \"wan\"\n/etc/hook6.yaml:20: policies.default.valid-lifetime: shorter than preferred-lifetime")
	code, out, errs := runCLI(t, sock, "reload")
	want := `hook6ctl: configuration refused; the server keeps running the previous one:
  /etc/hook6.yaml:12: prefixes[1].link: no link named "wan"
  /etc/hook6.yaml:20: policies.default.valid-lifetime: shorter than preferred-lifetime
`
	if code != 1 || out != "" || errs != want {
		t.Errorf("refused reload = %d %q\n%s\nwant\n%s", code, out, errs, want)
	}
}

func TestStats(t *testing.T) {
	_, sock := startFake(t, newFake())
	code, out, _ := runCLI(t, sock, "stats")
	want := `failover.state             normal
failover.updates-sent      40
leases.active              3
packets.dropped.malformed  2
packets.received.request   10
packets.received.solicit   12
`
	if code != 0 || out != want {
		t.Errorf("stats = %d\n%s\nwant\n%s", code, out, want)
	}
	code, out, _ = runCLI(t, sock, "stats", "failover")
	if want := "state         normal\nupdates-sent  40\n"; code != 0 || out != want {
		t.Errorf("stats failover = %d %q, want %q", code, out, want)
	}
	code, out, _ = runCLI(t, sock, "stats", "packets", "-o", "json")
	var m map[string]map[string]int
	if err := json.Unmarshal([]byte(out), &m); err != nil || code != 0 || m["received"]["solicit"] != 12 {
		t.Errorf("stats packets json = %d %q %v", code, out, err)
	}
	code, _, errs := runCLI(t, sock, "stats", "nosuch")
	if code != 1 || errs != "hook6ctl: no stats section \"nosuch\"; sections: failover, leases, packets\n" {
		t.Errorf("unknown section = %d %q", code, errs)
	}
}

func TestExtraRoute(t *testing.T) {
	// A command group added by another package reaches its route via Do.
	s, sock := startFake(t, newFake())
	s.Handle("GET /v1/failover/status", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		control.WriteJSON(w, http.StatusOK, map[string]string{"state": "normal"})
	}))
	var st map[string]string
	if err := control.NewClient(sock).Do(context.Background(), "GET", "/v1/failover/status", nil, &st); err != nil || st["state"] != "normal" {
		t.Errorf("Do = %v, %v", st, err)
	}
}

func TestUsageErrors(t *testing.T) {
	_, sock := startFake(t, newFake())
	cases := []struct {
		args []string
		msg  string
	}{
		{nil, "missing command: one of failover, lease, plugin, reload, script, stats, status"},
		{[]string{"bogus"}, `unknown command "bogus" for "hook6ctl"`},
		{[]string{"lease"}, "missing command: one of delete, list, show"},
		{[]string{"lease", "lst"}, "did you mean list?"},
		{[]string{"lease", "show"}, "hook6ctl: lease show takes 1 argument, got 0 (usage: hook6ctl lease show ADDR|PREFIX"},
		{[]string{"lease", "delete", "a", "b"}, "hook6ctl: lease delete takes 1 argument, got 2"},
		{[]string{"lease", "delete", "2001:db8::/200"}, `bad prefix "2001:db8::/200"`},
		{[]string{"lease", "list", "--duid", "xyz"}, "not hex"},
		{[]string{"lease", "list", "--prefix", "1.2.3.0/24"}, "not an IPv6"},
		{[]string{"status", "--nope"}, "unknown flag: --nope"},
		{[]string{"status", "extra"}, "hook6ctl: status takes no arguments, got 1"},
		{[]string{"-o", "yaml", "status"}, `--output "yaml": want text or json`},
		{[]string{"stats", "a", "b"}, "hook6ctl: stats takes 0 to 1 arguments, got 2"},
	}
	for _, c := range cases {
		code, out, errs := runCLI(t, sock, c.args...)
		if code != 2 || out != "" || !strings.Contains(errs, c.msg) || !strings.Contains(errs, "--help' for usage") {
			t.Errorf("%q = %d %q %q, want exit 2 with %q", c.args, code, out, errs, c.msg)
		}
	}
	code, out, _ := runCLI(t, sock, "lease", "--help")
	if code != 0 || !strings.Contains(out, "delete") || !strings.Contains(out, "--socket") {
		t.Errorf("lease --help = %d %q", code, out)
	}
}

func TestSocketSelection(t *testing.T) {
	_, sock := startFake(t, newFake())
	// --socket wins over $HOOK6_SOCKET.
	code, _, errs := runCLI(t, filepath.Join(t.TempDir(), "wrong.sock"), "--socket", sock, "status")
	if code != 0 {
		t.Errorf("--socket = %d %q", code, errs)
	}
	missing := filepath.Join(t.TempDir(), "none.sock")
	code, out, errs := runCLI(t, missing, "status")
	if code != 1 || out != "" || !strings.Contains(errs, "cannot reach hook6d on control socket "+missing) {
		t.Errorf("no daemon = %d %q %q", code, out, errs)
	}
	var o, e bytes.Buffer
	root := newRootCmd(&app{stdout: &o, stderr: &e}, func(string) string { return "" })
	if f := root.PersistentFlags().Lookup("socket"); f.DefValue != defaultSocket {
		t.Errorf("default socket = %q, want %q", f.DefValue, defaultSocket)
	}
}

func TestFmtDuration(t *testing.T) {
	for s, want := range map[uint32]string{0: "0s", 59: "59s", 3600: "1h", 3661: "1h1m1s", 604800: "7d", 0xffffffff: "infinite"} {
		if got := fmtSeconds(s); got != want {
			t.Errorf("fmtSeconds(%d) = %q, want %q", s, got, want)
		}
	}
}
