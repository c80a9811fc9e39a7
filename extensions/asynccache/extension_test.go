package asynccache

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/hook6/hook6/hooks"
)

// packet runs one packet through the chain's points like the server
// does: post-packet-decode, generate-lease for one PD IA on prefix, then
// pre-packet-encode unless dropped before. It returns the env and whether
// the packet was dropped, and whether the IA's lease was skipped.
func packet(t *testing.T, ch *hooks.Chain, duid, link, prefix string) (env *hooks.Env, dropped, skipped bool) {
	t.Helper()
	env = hooks.NewEnv()
	env.SetServer(hooks.KeyClientDUID, duid)
	req := &hooks.Request{MessageType: "SOLICIT"}
	run := func(p hooks.Point, c *hooks.Context) bool {
		c.Point, c.Env, c.Request = p, env, req
		if err := ch.Run(c); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return env.IsTrue(hooks.KeyDrop)
	}
	if run(hooks.PostPacketDecode, &hooks.Context{}) {
		return env, true, false
	}
	env.SetServer(hooks.KeyLink, link)
	if run(hooks.PreClientLookup, &hooks.Context{}) {
		return env, true, false
	}
	alloc := &hooks.Allocation{IA: hooks.IA{Type: hooks.IAPD, IAID: 1}, PrefixName: prefix,
		From: netip.MustParsePrefix("2001:db8:8000::/40"), Length: 56}
	run(hooks.GenerateLease, &hooks.Context{Allocation: alloc})
	skipped = env.IsTrue(hooks.KeySkipLease)
	dropped = run(hooks.PrePacketEncode, &hooks.Context{Response: &hooks.Response{MessageType: "ADVERTISE"}})
	return env, dropped, skipped
}

func chainOf(t *testing.T, x hooks.Extension) *hooks.Chain {
	t.Helper()
	ch, err := hooks.NewChain([]hooks.Member{{Extension: x}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func build(t *testing.T, args map[string]string, points []hooks.Point, src Source) *Extension {
	t.Helper()
	x, err := Build("cache", points, NewArgs(args), src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func TestExtensionPendingThenServed(t *testing.T) {
	src := newFake()
	src.set("01", map[string]string{"ext.prefix": "2001:db8:8000:100::/56"})
	x := build(t, map[string]string{"key-fields": "duid", "found-key": "ext.found"}, nil, src)
	ch := chainOf(t, x)

	env, dropped, skipped := packet(t, ch, "01", "lan", "lan-pd")
	if !dropped || !skipped || !env.IsTrue(DefaultFlag) {
		t.Fatalf("first packet: dropped %v skipped %v env %v", dropped, skipped, env.Map())
	}
	settle(t, x.Cache())
	env, dropped, skipped = packet(t, ch, "01", "lan", "lan-pd")
	if dropped || skipped || env.Value("ext.prefix") != "2001:db8:8000:100::/56" || env.Value("ext.found") != "true" {
		t.Fatalf("retransmission: dropped %v skipped %v env %v", dropped, skipped, env.Map())
	}
	// An unknown client is answered (negatively) and served without values.
	packet(t, ch, "02", "lan", "lan-pd")
	settle(t, x.Cache())
	env, dropped, _ = packet(t, ch, "02", "lan", "lan-pd")
	if dropped || env.Value("ext.found") != "false" || env.Value("ext.prefix") != "" {
		t.Fatalf("unknown client: dropped %v env %v", dropped, env.Map())
	}
	if st := x.Stats(); st.DroppedPending != 2 || st.Hits != 2 || st.Misses != 2 {
		t.Fatalf("stats %+v", st)
	}
	if c := x.Counters(); c["dropped_pending"] != 2 || c["hits"] != 2 || c["entries"] != 2 || len(c) != 11 {
		t.Fatalf("counters %v", c)
	}
}

func TestExtensionDropEarly(t *testing.T) {
	src := newFake()
	x := build(t, map[string]string{"key-fields": "duid", "drop-early": "true"}, nil, src)
	_, dropped, skipped := packet(t, chainOf(t, x), "01", "lan", "lan-pd")
	if !dropped || skipped {
		t.Fatalf("drop-early: dropped %v, skipped %v (want dropped at post-packet-decode)", dropped, skipped)
	}
	if st := x.Stats(); st.DroppedPending != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestExtensionScope: with links or prefixes, clients elsewhere are not
// looked up and never dropped.
func TestExtensionScope(t *testing.T) {
	src := newFake()
	src.setFail(errSourceDown)
	byLink := build(t, map[string]string{"key-fields": "duid", "links": "lan"},
		[]hooks.Point{hooks.PreClientLookup, hooks.GenerateLease, hooks.PrePacketEncode}, src)
	if _, dropped, _ := packet(t, chainOf(t, byLink), "01", "other", "other-pd"); dropped {
		t.Fatalf("client of another link dropped")
	}
	if _, dropped, _ := packet(t, chainOf(t, byLink), "01", "lan", "lan-pd"); !dropped {
		t.Fatalf("client of the link not dropped")
	}
	byPrefix := build(t, map[string]string{"key-fields": "duid", "prefixes": "lan-pd"},
		[]hooks.Point{hooks.GenerateLease, hooks.PrePacketEncode}, src)
	if _, dropped, skipped := packet(t, chainOf(t, byPrefix), "02", "lan", "lan-addr"); dropped || skipped {
		t.Fatalf("IA of another prefix: dropped %v skipped %v", dropped, skipped)
	}
	if _, dropped, skipped := packet(t, chainOf(t, byPrefix), "02", "lan", "lan-pd"); !dropped || !skipped {
		t.Fatalf("IA of the prefix: dropped %v skipped %v", dropped, skipped)
	}
}

func TestExtensionMissingField(t *testing.T) {
	src := newFake()
	x := build(t, map[string]string{"key-fields": "duid,remote-id", "found-key": "f"}, nil, src)
	env, dropped, _ := packet(t, chainOf(t, x), "01", "lan", "lan-pd")
	if dropped || env.Value("f") != "false" || x.Stats().Misses != 0 {
		t.Fatalf("client without remote-id: dropped %v env %v stats %+v", dropped, env.Map(), x.Stats())
	}
}

func TestExtensionReadOnlyKey(t *testing.T) {
	src := newFake()
	src.set("01", map[string]string{hooks.KeyLink: "evil"})
	x := build(t, map[string]string{"key-fields": "duid"}, nil, src)
	env := hooks.NewEnv()
	env.SetServer(hooks.KeyClientDUID, "01")
	env.SetServer(hooks.KeyLink, "lan")
	c := &hooks.Context{Point: hooks.PostPacketDecode, Env: env}
	x.Handle(c)
	settle(t, x.Cache())
	env.Delete(DefaultFlag)
	if err := x.Handle(c); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("source overwrote a server key: %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	src := newFake()
	for name, tc := range map[string]struct {
		args   map[string]string
		points []hooks.Point
	}{
		"unknown key":      {map[string]string{"key-fields": "duid", "tll": "5m"}, nil},
		"bad duration":     {map[string]string{"key-fields": "duid", "ttl": "five"}, nil},
		"bad bool":         {map[string]string{"key-fields": "duid", "serve-stale": "maybe"}, nil},
		"no fields":        {map[string]string{}, nil},
		"links too early":  {map[string]string{"key-fields": "duid", "links": "lan"}, nil},
		"prefixes early":   {map[string]string{"key-fields": "duid", "prefixes": "p"}, nil},
		"bad point":        {map[string]string{"key-fields": "duid"}, []hooks.Point{hooks.LeaseStateChange}},
		"no lookup point":  {map[string]string{"key-fields": "duid"}, []hooks.Point{hooks.PrePacketEncode}},
		"negative integer": {map[string]string{"key-fields": "duid", "workers": "-1"}, nil},
	} {
		if x, err := Build("c", tc.points, NewArgs(tc.args), src); err == nil {
			x.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestExtensionCheckLeaseAcceptable: a renewal runs only
// check-lease-acceptable for the client's existing lease; the cache is
// looked up there too (scoped by prefix), so a renewal whose entry is
// missing or stale is dropped and its retransmission carries the answer.
func TestExtensionCheckLeaseAcceptable(t *testing.T) {
	src := newFake()
	src.set("01", map[string]string{"ext.prefix": "2001:db8:8000:200::/56"})
	x := build(t, map[string]string{"key-fields": "duid", "prefixes": "lan-pd"},
		[]hooks.Point{hooks.GenerateLease, hooks.CheckLeaseAcceptable, hooks.PrePacketEncode}, src)
	ch := chainOf(t, x)
	renew := func(prefix string) (*hooks.Env, bool, bool) {
		env := hooks.NewEnv()
		env.SetServer(hooks.KeyClientDUID, "01")
		alloc := &hooks.Allocation{IA: hooks.IA{Type: hooks.IAPD, IAID: 1}, PrefixName: prefix,
			From: netip.MustParsePrefix("2001:db8:8000::/40"), Length: 56,
			Candidate: netip.MustParsePrefix("2001:db8:8000:100::/56"), Acceptable: true}
		if err := ch.Run(&hooks.Context{Point: hooks.CheckLeaseAcceptable, Env: env, Allocation: alloc}); err != nil {
			t.Fatal(err)
		}
		if err := ch.Run(&hooks.Context{Point: hooks.PrePacketEncode, Env: env, Response: &hooks.Response{}}); err != nil {
			t.Fatal(err)
		}
		return env, env.IsTrue(hooks.KeyDrop), alloc.Acceptable
	}
	if _, dropped, ok := renew("lan-pd"); !dropped || !ok {
		t.Fatalf("first renewal: dropped %v acceptable %v", dropped, ok)
	}
	settle(t, x.Cache())
	env, dropped, ok := renew("lan-pd")
	if dropped || !ok || env.Value("ext.prefix") != "2001:db8:8000:200::/56" {
		t.Fatalf("retransmitted renewal: dropped %v acceptable %v env %v", dropped, ok, env.Map())
	}
	if env, dropped, _ := renew("other-pd"); dropped || env.Value("ext.prefix") != "" {
		t.Fatalf("renewal on another prefix: dropped %v env %v", dropped, env.Map())
	}
}

// TestExtensionOneLookupPerPacket: generate-lease then
// check-lease-acceptable in one packet use one answer, even when it was
// fetched after the TTL ran out for a slow client.
func TestExtensionOneLookupPerPacket(t *testing.T) {
	src := newFake()
	src.set("01", map[string]string{"ext.prefix": "2001:db8:8000:100::/56"})
	x := build(t, map[string]string{"key-fields": "duid", "prefixes": "lan-pd", "ttl": "1ns"},
		[]hooks.Point{hooks.GenerateLease, hooks.CheckLeaseAcceptable, hooks.PrePacketEncode}, src)
	ch := chainOf(t, x)
	solicit := func() bool {
		env := hooks.NewEnv()
		env.SetServer(hooks.KeyClientDUID, "01")
		alloc := &hooks.Allocation{IA: hooks.IA{Type: hooks.IAPD, IAID: 1}, PrefixName: "lan-pd",
			From: netip.MustParsePrefix("2001:db8:8000::/40"), Length: 56}
		for _, p := range []hooks.Point{hooks.GenerateLease, hooks.CheckLeaseAcceptable, hooks.PrePacketEncode} {
			if err := ch.Run(&hooks.Context{Point: p, Env: env, Allocation: alloc, Response: &hooks.Response{}}); err != nil {
				t.Fatal(err)
			}
		}
		return env.IsTrue(hooks.KeyDrop)
	}
	if !solicit() {
		t.Fatalf("first Solicit not dropped")
	}
	settle(t, x.Cache())
	if solicit() {
		t.Fatalf("retransmission dropped: %+v", x.Stats())
	}
}
