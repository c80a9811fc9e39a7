package ldap_test

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hook6/hook6/extensions/asynccache"
	"github.com/hook6/hook6/extensions/ldap"
	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/ldapsource/ldaptest"
)

// The fixture's clients (examples/ldap/hook6.ldif).
const (
	duid1   = "0003000100163e000001"
	prefix1 = "2001:db8:8000:100::/56"
	addr1   = "2001:db8:1::100"
	duid2   = "0003000100163e000002"
	prefix2 = "2001:db8:8000:200::/56"
)

func args(s *ldaptest.Server, extra map[string]string) map[string]string {
	a := map[string]string{
		"urls":          s.URL,
		"bind-dn":       ldaptest.BindDN,
		"password-file": s.PasswordFile,
		"base-dn":       ldaptest.ClientsDN,
		"filter":        "(&(objectClass=hook6Client)(hook6ClientDUID={duid}))",
		"attributes":    "hook6DelegatedPrefix=ldap.prefix, hook6Address=ldap.address",
		"found-key":     "ldap.found",
		"max-backoff":   "200ms",
	}
	for k, v := range extra {
		a[k] = v
	}
	return a
}

// result is what happened to one packet.
type result struct {
	env     *hooks.Env
	dropped bool
	skipped bool
	err     error
}

// packet runs a Solicit of duid with one IA_PD on prefix "lan-pd"
// through the chain's points as the server does.
func packet(ch *hooks.Chain, duid string) result {
	env := hooks.NewEnv()
	env.SetServer(hooks.KeyClientDUID, duid)
	req := &hooks.Request{MessageType: "SOLICIT"}
	run := func(p hooks.Point, c *hooks.Context) (bool, error) {
		c.Point, c.Env, c.Request = p, env, req
		err := ch.Run(c)
		return err != nil || env.IsTrue(hooks.KeyDrop), err
	}
	if d, err := run(hooks.PostPacketDecode, &hooks.Context{}); d {
		return result{env: env, dropped: true, err: err}
	}
	env.SetServer(hooks.KeyLink, "lan")
	alloc := &hooks.Allocation{IA: hooks.IA{Type: hooks.IAPD, IAID: 1}, PrefixName: "lan-pd",
		From: netip.MustParsePrefix("2001:db8:8000::/40"), Length: 56}
	if _, err := run(hooks.GenerateLease, &hooks.Context{Allocation: alloc}); err != nil {
		return result{env: env, err: err}
	}
	r := result{env: env, skipped: env.IsTrue(hooks.KeySkipLease)}
	r.dropped, r.err = run(hooks.PrePacketEncode, &hooks.Context{Response: &hooks.Response{MessageType: "ADVERTISE"}})
	return r
}

func chain(t *testing.T, x hooks.Extension, mode hooks.FailureMode) *hooks.Chain {
	t.Helper()
	ch, err := hooks.NewChain([]hooks.Member{{Extension: x, Budget: 3 * time.Second, FailureMode: mode}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

// TestSync: the reference's LDAP option: the entry's attributes are in
// the env when generate-lease runs; a failing directory fails the call and
// the failure mode decides.
func TestSync(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	x, err := ldap.NewSync("dir", nil, args(s, nil))
	if err != nil {
		t.Fatal(err)
	}
	ch := chain(t, x, hooks.FailDrop)
	r := packet(ch, duid1)
	if r.err != nil || r.dropped || r.env.Value("ldap.prefix") != prefix1 || r.env.Value("ldap.address") != addr1 || r.env.Value("ldap.found") != "true" {
		t.Fatalf("client 1: %+v env %v", r, r.env.Map())
	}
	r = packet(ch, "00030001ffffffffffff")
	if r.err != nil || r.dropped || r.env.Value("ldap.found") != "false" || r.env.Value("ldap.prefix") != "" {
		t.Fatalf("unknown client: %+v env %v", r, r.env.Map())
	}
	s.Stop()
	r = packet(ch, duid1)
	var ee *hooks.ExtensionError
	if !r.dropped || !errors.As(r.err, &ee) || ee.Extension != "dir" {
		t.Fatalf("directory down with failure mode drop: %+v", r)
	}
	s.Restart()
	time.Sleep(300 * time.Millisecond) // past the reconnection back-off
	if r := packet(ch, duid2); r.err != nil || r.env.Value("ldap.prefix") != prefix2 {
		t.Fatalf("after restart: %+v env %v", r, r.env.Map())
	}
	if st := x.Stats(); st.Found != 2 || st.NotFound != 1 || st.Errors != 1 {
		t.Fatalf("stats %+v", st)
	}
	if c := x.Counters(); c["found"] != 2 || c["errors"] != 1 || c["dials"] < 2 {
		t.Fatalf("counters %v", c)
	}
}

// TestSyncInjection: a field taken from a client-controlled option (the
// vendor class here, which is text) cannot widen the filter.
func TestSyncInjection(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	x, err := ldap.NewSync("dir", nil, args(s, map[string]string{
		"filter": "(&(objectClass=hook6Client)(hook6ClientDUID={request.vendor-class}))",
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, vc := range []string{"*", "*)(objectClass=*", duid1[:10] + "*"} {
		env := hooks.NewEnv()
		env.SetServer(hooks.KeyVendorClass, vc)
		c := &hooks.Context{Point: hooks.PostPacketDecode, Env: env}
		if err := x.Handle(c); err != nil || env.Value("ldap.found") != "false" {
			t.Fatalf("vendor class %q: %v, env %v", vc, err, env.Map())
		}
	}
	x.Close()
}

func cached(t *testing.T, s *ldaptest.Server, extra map[string]string) (*asynccache.Extension, *hooks.Chain) {
	t.Helper()
	x, err := ldap.NewCached("dir-cache", nil, args(s, extra))
	if err != nil {
		t.Fatal(err)
	}
	return x, chain(t, x, hooks.FailContinue)
}

// settle waits until the cache has no query queued or running.
func settle(t *testing.T, x *asynccache.Extension) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for x.Stats().InFlight != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queries still in flight: %+v", x.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestCached: first Solicit dropped, the retransmission gets the
// directory's prefix; a changed entry gives, after the TTL, the new prefix
// (the packet that finds the entry stale waits for the refresh).
func TestCached(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	x, ch := cached(t, s, map[string]string{"ttl": "1s", "negative-ttl": "1s"})

	r := packet(ch, duid1)
	if !r.dropped || !r.skipped || !r.env.IsTrue(asynccache.DefaultFlag) {
		t.Fatalf("first Solicit: %+v env %v", r, r.env.Map())
	}
	settle(t, x)
	r = packet(ch, duid1)
	if r.dropped || r.skipped || r.env.Value("ldap.prefix") != prefix1 {
		t.Fatalf("retransmission: %+v env %v", r, r.env.Map())
	}

	const moved = "2001:db8:8000:4200::/56"
	s.SetAttr("cpe-1", "hook6DelegatedPrefix", moved)
	if r := packet(ch, duid1); r.env.Value("ldap.prefix") != prefix1 {
		t.Fatalf("within the TTL the cached prefix is served: %v", r.env.Map())
	}
	time.Sleep(1100 * time.Millisecond)
	if r := packet(ch, duid1); !r.dropped {
		t.Fatalf("stale entry, directory up: %+v env %v (want dropped while refreshing)", r, r.env.Map())
	}
	settle(t, x)
	if r := packet(ch, duid1); r.dropped || r.env.Value("ldap.prefix") != moved {
		t.Fatalf("after the refresh: %+v env %v", r, r.env.Map())
	}

	// Unknown clients: dropped once, then answered "not found".
	packet(ch, "00030001ffffffffffff")
	settle(t, x)
	if r := packet(ch, "00030001ffffffffffff"); r.dropped || r.env.Value("ldap.found") != "false" {
		t.Fatalf("unknown client: %+v env %v", r, r.env.Map())
	}
	st := x.Stats()
	if st.Queries != 3 || st.Errors != 0 || st.DroppedPending != 3 || st.Hits != 4 || st.Stale != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCachedDirectoryDown: slapd stopped: clients with cached entries are
// still served (fresh or stale), the rest are dropped, errors are counted
// and nothing piles up; slapd restarted: served again, no one acting.
func TestCachedDirectoryDown(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{LDIF: ldaptest.ClientsLDIF(200)})
	x, ch := cached(t, s, map[string]string{"ttl": "1s", "workers": "2", "queue": "8", "pool-size": "2"})

	warmDUIDs := make([]string, 50)
	for i := range warmDUIDs {
		warmDUIDs[i], _ = ldaptest.GeneratedClient(i)
		packet(ch, warmDUIDs[i])
		settle(t, x)
	}
	s.Stop()
	// Fresh entries are served.
	for i, d := range warmDUIDs[:25] {
		_, p := ldaptest.GeneratedClient(i)
		if r := packet(ch, d); r.dropped || r.env.Value("ldap.prefix") != p {
			t.Fatalf("cached client %d with slapd down: %+v env %v", i, r, r.env.Map())
		}
	}
	// A storm of clients never seen: all dropped, the queue stays bounded.
	var wg sync.WaitGroup
	var mu sync.Mutex
	servedCold := 0
	for w := range 4 {
		wg.Go(func() {
			for i := 100 + w; i < 200; i += 4 {
				d, _ := ldaptest.GeneratedClient(i)
				if r := packet(ch, d); !r.dropped {
					mu.Lock()
					servedCold++
					mu.Unlock()
				}
				if n := x.Stats().InFlight; n > 10 {
					t.Errorf("%d queries in flight, want ≤ workers+queue = 10", n)
				}
			}
		})
	}
	wg.Wait()
	if servedCold != 0 {
		t.Fatalf("%d uncached clients served with slapd down", servedCold)
	}
	settle(t, x)
	// Past the TTL the entries are stale: served while the directory fails.
	time.Sleep(1100 * time.Millisecond)
	served := 0
	for i, d := range warmDUIDs {
		_, p := ldaptest.GeneratedClient(i)
		r := packet(ch, d)
		if !r.dropped && r.env.Value("ldap.prefix") == p {
			served++
		}
	}
	if served != len(warmDUIDs) {
		t.Fatalf("%d of %d stale clients served with slapd down", served, len(warmDUIDs))
	}
	settle(t, x)
	st := x.Stats()
	if st.Errors == 0 || st.StaleServed == 0 || st.InFlight != 0 {
		t.Fatalf("stats with slapd down: %+v", st)
	}

	s.Restart()
	cold, coldPrefix := ldaptest.GeneratedClient(150)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := packet(ch, cold)
		if !r.dropped && r.env.Value("ldap.prefix") == coldPrefix {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered 10s after restart: %+v env %v stats %+v", r, r.env.Map(), x.Stats())
		}
		time.Sleep(100 * time.Millisecond) // the client's retransmission
	}
	// The stale entries are refreshed again.
	for i, d := range warmDUIDs[:5] {
		packet(ch, d)
		settle(t, x)
		_, p := ldaptest.GeneratedClient(i)
		if r := packet(ch, d); r.dropped || r.env.Value("ldap.prefix") != p {
			t.Fatalf("client %d after recovery: %+v", i, r)
		}
	}
}

func TestCachedConfigErrors(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.Options{})
	for name, extra := range map[string]map[string]string{
		"unknown key":    {"ttl2": "1s"},
		"bad filter":     {"filter": "(hook6ClientDUID={duid}"},
		"bad attributes": {"attributes": "hook6DelegatedPrefix"},
		"no urls":        {"urls": ""},
	} {
		if x, err := ldap.NewCached("c", nil, args(s, extra)); err == nil {
			x.Close()
			t.Errorf("ldap-cache %s: accepted", name)
		}
		if x, err := ldap.NewSync("c", nil, args(s, extra)); err == nil {
			x.Close()
			t.Errorf("ldap %s: accepted", name)
		} else if name == "unknown key" && !strings.Contains(err.Error(), "ttl2") {
			t.Errorf("unknown key error does not name it: %v", err)
		}
	}
	if _, err := ldap.NewSync("c", []hooks.Point{hooks.PrePacketEncode}, args(s, nil)); err == nil {
		t.Errorf("ldap at pre-packet-encode accepted")
	}
}

// BenchmarkCachedHitLDAP is the cache-hit path over a real directory of
// 100,000 clients, 10,000 of them cached: post-packet-decode and
// pre-packet-encode through the chain.
func BenchmarkCachedHitLDAP(b *testing.B) {
	s := ldaptest.Start(b, ldaptest.Options{LDIF: ldaptest.ClientsLDIF(100000)})
	x, err := ldap.NewCached("dir-cache", nil, map[string]string{
		"urls": s.URL, "bind-dn": ldaptest.BindDN, "password-file": s.PasswordFile,
		"base-dn": ldaptest.ClientsDN, "filter": "(hook6ClientDUID={duid})",
		"attributes": "hook6DelegatedPrefix=ldap.prefix", "workers": "8", "queue": "20000",
	})
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	ch, err := hooks.NewChain([]hooks.Member{{Extension: x}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	const n = 10000
	duids := make([]string, n)
	for i := range duids {
		duids[i], _ = ldaptest.GeneratedClient(i * 7)
		packet(ch, duids[i])
	}
	for x.Stats().InFlight != 0 {
		time.Sleep(5 * time.Millisecond)
	}
	env := hooks.NewEnv()
	c := &hooks.Context{Env: env}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		env.Reset()
		env.SetServer(hooks.KeyClientDUID, duids[i%n])
		c.Point = hooks.PostPacketDecode
		ch.Run(c)
		c.Point = hooks.PrePacketEncode
		ch.Run(c)
		if env.IsTrue(hooks.KeyDrop) || env.Value("ldap.prefix") == "" {
			b.Fatalf("miss for %s: %v", duids[i%n], x.Stats())
		}
	}
}
