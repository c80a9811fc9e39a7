package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hook6/hook6/core/lease"
)

// fakeBackend keeps leases in a slice; a unit-test stand-in for the daemon.
type fakeBackend struct {
	mu        sync.Mutex
	leases    []lease.Lease
	reloadErr error
	reloads   int
	deleteErr error
}

func (f *fakeBackend) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Status{Version: "1.2.3", UptimeSeconds: 3661, ServerDUID: "00:01:02", ConfigFile: "/etc/hook6.yaml",
		Interfaces: []string{"eth0"}, Links: 2, Leases: len(f.leases), Failover: "normal"}
}

func (f *fakeBackend) Leases(flt LeaseFilter) ([]Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Lease
	for _, l := range f.leases {
		if flt.Matches(l.Prefix, l.DUID) {
			out = append(out, LeaseOf(l))
		}
	}
	return out, nil
}

func (f *fakeBackend) Lease(p netip.Prefix) (Lease, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.leases {
		if l.Prefix == p {
			return LeaseOf(l), true
		}
	}
	return Lease{}, false
}

func (f *fakeBackend) DeleteLeases(ctx context.Context, within netip.Prefix) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deleteErr != nil {
		return 0, f.deleteErr
	}
	kept := f.leases[:0]
	for _, l := range f.leases {
		if !Within(within, l.Prefix) {
			kept = append(kept, l)
		}
	}
	n := len(f.leases) - len(kept)
	f.leases = kept
	return n, nil
}

func (f *fakeBackend) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	return f.reloadErr
}

func (f *fakeBackend) Stats() map[string]any {
	return map[string]any{
		"packets": map[string]any{"received": map[string]any{"solicit": 7, "request": 5}, "dropped": map[string]any{"malformed": 1}},
		"leases":  map[string]any{"active": 3},
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testLeases() []lease.Lease {
	mk := func(p string, k lease.Kind, duid []byte, iaid uint32) lease.Lease {
		return lease.Lease{Prefix: netip.MustParsePrefix(p), Kind: k, DUID: duid, IAID: iaid, Link: "lan",
			PrefixName: "lan-addr", State: lease.Leased, Preferred: 7 * 24 * time.Hour, Valid: 14 * 24 * time.Hour,
			Start: t0, Expires: t0.Add(14 * 24 * time.Hour)}
	}
	return []lease.Lease{
		mk("2001:db8:1::10/128", lease.NA, []byte{0, 1, 0xaa}, 1),
		mk("2001:db8:1::11/128", lease.NA, []byte{0, 1, 0xbb}, 2),
		mk("2001:db8:8000:100::/56", lease.PD, []byte{0, 1, 0xaa}, 3),
	}
}

// startServer serves a fake backend on a socket in a temp dir.
func startServer(t *testing.T, b Backend) (*Server, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "run", "control.sock")
	s := NewServer(b, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, sock) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket %s left behind after shutdown (err %v)", sock, err)
		}
	})
	waitSocket(t, sock)
	return s, sock
}

func waitSocket(t *testing.T, sock string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("socket %s never came up", sock)
}

// raw does one request and returns status and body.
func raw(t *testing.T, sock, method, path string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequest(method, "http://x"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, string(b)
}

func TestSocketModeAndDir(t *testing.T) {
	_, sock := startServer(t, &fakeBackend{})
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want socket 0600", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(sock))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("created dir mode %v, want 0700", di.Mode().Perm())
	}
	ents, _ := os.ReadDir(filepath.Dir(sock))
	if len(ents) != 1 {
		t.Errorf("socket dir holds %d entries, want only the socket", len(ents))
	}
}

func TestStaleSocketReplacedLiveRefused(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "c.sock")
	// A stale socket: bound, then the listener closed without unlinking.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("stale socket not there: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServer(&fakeBackend{}, nil).Serve(ctx, sock) }()
	waitSocket(t, sock)
	if _, err := NewClient(sock).Status(ctx); err != nil {
		t.Fatalf("status over replaced socket: %v", err)
	}
	// A second server on the live socket must refuse and leave it alone.
	err = NewServer(&fakeBackend{}, nil).Serve(context.Background(), sock)
	if err == nil || !strings.Contains(err.Error(), "another server") {
		t.Errorf("second Serve: %v, want another-server error", err)
	}
	if _, err := NewClient(sock).Status(ctx); err != nil {
		t.Errorf("first server broken by second: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A regular file is not ours to remove.
	if err := os.WriteFile(sock, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := NewServer(&fakeBackend{}, nil).Serve(context.Background(), sock); err == nil {
		t.Error("Serve over a regular file succeeded")
	}
}

func TestRoutesJSON(t *testing.T) {
	b := &fakeBackend{leases: testLeases()}
	_, sock := startServer(t, b)

	code, body := raw(t, sock, "GET", "/v1/status")
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 {
		t.Fatalf("status: %d %s %v", code, body, err)
	}
	for k, want := range map[string]any{"version": "1.2.3", "uptime-seconds": 3661.0, "server-duid": "00:01:02",
		"config-file": "/etc/hook6.yaml", "links": 2.0, "leases": 3.0, "failover": "normal"} {
		if st[k] != want {
			t.Errorf("status[%q] = %v, want %v", k, st[k], want)
		}
	}

	code, body = raw(t, sock, "GET", "/v1/leases/2001:db8:8000:100::%2F56")
	var l map[string]any
	if err := json.Unmarshal([]byte(body), &l); err != nil || code != 200 {
		t.Fatalf("lease: %d %s %v", code, body, err)
	}
	for k, want := range map[string]any{"prefix": "2001:db8:8000:100::/56", "kind": "pd", "duid": "00:01:aa",
		"iaid": 3.0, "state": "leased", "link": "lan", "prefix-name": "lan-addr", "preferred": 604800.0,
		"valid": 1209600.0, "start": "2026-03-01T12:00:00Z", "expires": "2026-03-15T12:00:00Z"} {
		if l[k] != want {
			t.Errorf("lease[%q] = %v, want %v", k, l[k], want)
		}
	}

	code, body = raw(t, sock, "GET", "/v1/leases?prefix=2001:db8:1::/64&duid=0001aa")
	var ls []Lease
	if err := json.Unmarshal([]byte(body), &ls); err != nil || code != 200 {
		t.Fatalf("leases: %d %s %v", code, body, err)
	}
	if len(ls) != 1 || ls[0].Prefix != "2001:db8:1::10/128" {
		t.Errorf("filtered leases = %+v", ls)
	}
	code, body = raw(t, sock, "GET", "/v1/leases?prefix=2001:db9::/32")
	if code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("empty list: %d %q, want []", code, body)
	}

	code, body = raw(t, sock, "GET", "/v1/stats")
	if code != 200 || !strings.Contains(body, `"solicit": 7`) {
		t.Errorf("stats: %d %s", code, body)
	}

	code, body = raw(t, sock, "DELETE", "/v1/leases?within=2001:db8:1::/64")
	if code != 200 || !strings.Contains(body, `"deleted": 2`) {
		t.Errorf("delete: %d %s", code, body)
	}
	if len(b.leases) != 1 {
		t.Errorf("backend holds %d leases after delete, want 1", len(b.leases))
	}

	code, body = raw(t, sock, "POST", "/v1/reload")
	if code != 200 || !strings.Contains(body, `"reloaded": true`) || b.reloads != 1 {
		t.Errorf("reload: %d %s (reloads %d)", code, body, b.reloads)
	}
}

func TestErrorStatuses(t *testing.T) {
	b := &fakeBackend{leases: testLeases(), reloadErr: errors.New("a.yaml:3: links[0].name: duplicate\na.yaml:9: prefixes: empty")}
	_, sock := startServer(t, b)
	cases := []struct {
		method, path string
		code         int
		msg          string
	}{
		{"GET", "/v1/leases/2001:db8::99", 404, "no lease of 2001:db8::99/128"},
		{"GET", "/v1/leases/nonsense", 400, "nonsense"},
		{"GET", "/v1/leases/10.0.0.1", 400, "not an IPv6"},
		{"GET", "/v1/leases/", 400, "missing address"},
		{"GET", "/v1/leases?prefix=zz", 400, "zz"},
		{"GET", "/v1/leases?duid=xyz", 400, "not hex"},
		{"DELETE", "/v1/leases", 400, "missing within"},
		{"DELETE", "/v1/leases?within=2001:db8::/999", 400, "999"},
		{"POST", "/v1/reload", 422, "a.yaml:3: links[0].name: duplicate\na.yaml:9: prefixes: empty"},
		{"GET", "/v1/nothing", 404, "no such route"},
		{"POST", "/v1/status", 405, "Method Not Allowed"},
	}
	for _, c := range cases {
		code, body := raw(t, sock, c.method, c.path)
		var eb ErrorBody
		if err := json.Unmarshal([]byte(body), &eb); err != nil {
			t.Errorf("%s %s: body %q not JSON: %v", c.method, c.path, body, err)
			continue
		}
		if code != c.code || !strings.Contains(eb.Error, c.msg) {
			t.Errorf("%s %s = %d %q, want %d containing %q", c.method, c.path, code, eb.Error, c.code, c.msg)
		}
	}
	b.deleteErr = errors.New("disk full")
	if code, body := raw(t, sock, "DELETE", "/v1/leases?within=::/0"); code != 500 || !strings.Contains(body, "disk full") {
		t.Errorf("failing delete = %d %s, want 500 disk full", code, body)
	}
}

func TestClient(t *testing.T) {
	b := &fakeBackend{leases: testLeases()}
	s, sock := startServer(t, b)
	s.Handle("POST /v1/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			WriteError(w, http.StatusBadRequest, err)
			return
		}
		WriteJSON(w, http.StatusOK, v)
	}))
	c := NewClient(sock)
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil || st.Version != "1.2.3" || st.Leases != 3 || st.Interfaces[0] != "eth0" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	ls, err := c.Leases(ctx, LeaseFilter{DUID: []byte{0, 1, 0xaa}})
	if err != nil || len(ls) != 2 {
		t.Fatalf("Leases by DUID = %+v, %v", ls, err)
	}
	l, err := c.Lease(ctx, netip.MustParsePrefix("2001:db8:8000:100::/56"))
	if err != nil || l.Kind != "pd" || l.IAID != 3 || !l.Expires.Equal(t0.Add(14*24*time.Hour)) {
		t.Fatalf("Lease = %+v, %v", l, err)
	}
	_, err = c.Lease(ctx, netip.MustParsePrefix("2001:db8::1/128"))
	if StatusOf(err) != 404 {
		t.Errorf("missing Lease err = %v, want 404", err)
	}
	stats, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := stats["leases"].(map[string]any)["active"]; n != json.Number("3") {
		t.Errorf("stats leases.active = %#v, want json.Number 3", n)
	}
	var echo map[string]string
	if err := c.Do(ctx, "POST", "/v1/echo", map[string]string{"a": "b"}, &echo); err != nil || echo["a"] != "b" {
		t.Errorf("Do echo = %v, %v", echo, err)
	}
	if err := c.Do(ctx, "POST", "/v1/echo", strings.NewReader("not json"), nil); StatusOf(err) != 400 {
		t.Errorf("Do bad body err = %v, want 400", err)
	}
	n, err := c.DeleteLeases(ctx, netip.MustParsePrefix("::/0"))
	if err != nil || n != 3 || len(b.leases) != 0 {
		t.Errorf("DeleteLeases(::/0) = %d, %v; backend left %d", n, err, len(b.leases))
	}
	b.reloadErr = errors.New("x.yaml:1: server: unknown key")
	if err := c.Reload(ctx); StatusOf(err) != 422 || err.Error() != "x.yaml:1: server: unknown key" {
		t.Errorf("Reload err = %v, want 422 with config error", err)
	}
}

func TestClientNoServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := NewClient(sock).Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), sock) || StatusOf(err) != 0 {
		t.Errorf("err = %v, want dial error naming the socket", err)
	}
}

func TestParseHelpers(t *testing.T) {
	if d, err := ParseDUID("00:01:AA"); err != nil || FormatDUID(d) != "00:01:aa" {
		t.Errorf("ParseDUID = %x, %v", d, err)
	}
	if p, err := ParsePrefix("2001:db8::1/64"); err != nil || p.String() != "2001:db8::/64" {
		t.Errorf("ParsePrefix masks: %v, %v", p, err)
	}
	if p, err := ParsePrefix("2001:db8::1"); err != nil || p.Bits() != 128 {
		t.Errorf("ParsePrefix address: %v, %v", p, err)
	}
	all := netip.MustParsePrefix("::/0")
	if !Within(all, netip.MustParsePrefix("2001:db8::/56")) || Within(netip.MustParsePrefix("2001:db8::/64"), netip.MustParsePrefix("2001:db8::/56")) {
		t.Error("Within wrong")
	}
}
