package hooks

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fake is an extension whose behaviour at each call is a function.
type fake struct {
	name   string
	points []Point
	fn     func(c *Context) error
	closed atomic.Int32
}

func (f *fake) Name() string            { return f.name }
func (f *fake) Points() []Point         { return f.points }
func (f *fake) Handle(c *Context) error { return f.fn(c) }
func (f *fake) Close() error            { f.closed.Add(1); return nil }

// budgeted is a fake that enforces its budget itself.
type budgeted struct {
	fake
	got time.Duration
}

func (b *budgeted) HandleWithin(c *Context, budget time.Duration) error {
	b.got = budget
	return b.fn(c)
}

func appendEnv(v string) func(*Context) error {
	return func(c *Context) error { return c.Env.Set("trail", c.Env.Value("trail")+v) }
}

func newChain(t *testing.T, ms ...Member) *Chain {
	t.Helper()
	ch, err := NewChain(ms, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestChainRunsInConfigOrder(t *testing.T) {
	ch := newChain(t,
		Member{Extension: &fake{name: "b", points: []Point{PostPacketDecode, PrePacketEncode}, fn: appendEnv("b")}},
		Member{Extension: &fake{name: "a", points: []Point{PostPacketDecode}, fn: appendEnv("a")}},
	)
	if !ch.Has(PostPacketDecode) || !ch.Has(PrePacketEncode) || ch.Has(GenerateLease) {
		t.Fatal("Has does not match the points")
	}
	c := &Context{Point: PostPacketDecode, Env: NewEnv()}
	if err := ch.Run(c); err != nil {
		t.Fatal(err)
	}
	c.Point = PrePacketEncode
	if err := ch.Run(c); err != nil {
		t.Fatal(err)
	}
	if got := c.Env.Value("trail"); got != "bab" {
		t.Errorf("trail %q, want bab", got)
	}
	s := ch.Stats()
	if s["b"].Calls != 2 || s["a"].Calls != 1 || s["a"].TotalNs == 0 {
		t.Errorf("stats %+v", s)
	}
	if got := strings.Join(ch.Names(), ","); got != "b,a" {
		t.Errorf("names %s", got)
	}
}

func TestNilChainRunsNothing(t *testing.T) {
	var ch *Chain
	if ch.Has(PostPacketDecode) || ch.Run(&Context{Point: PostPacketDecode}) != nil || len(ch.Stats()) != 0 || ch.Close() != nil {
		t.Fatal("nil chain did something")
	}
	empty := newChain(t)
	for _, p := range Points() {
		if empty.Has(p) {
			t.Fatalf("empty chain has %v", p)
		}
	}
}

func TestChainFailureModes(t *testing.T) {
	boom := &fake{name: "boom", points: []Point{PostPacketDecode}, fn: func(*Context) error { panic("boom") }}
	bad := &fake{name: "bad", points: []Point{PostPacketDecode}, fn: func(*Context) error { return errors.New("no") }}
	after := &fake{name: "after", points: []Point{PostPacketDecode}, fn: appendEnv("after")}
	ch := newChain(t, Member{Extension: boom}, Member{Extension: bad}, Member{Extension: after})
	c := &Context{Point: PostPacketDecode, Env: NewEnv()}
	if err := ch.Run(c); err != nil {
		t.Fatalf("failure mode continue returned %v", err)
	}
	if c.Env.Value("trail") != "after" {
		t.Error("the extension after the failing ones did not run")
	}
	s := ch.Stats()
	if s["boom"].Panics != 1 || s["bad"].Errors != 1 || s["after"].Errors != 0 {
		t.Errorf("stats %+v", s)
	}

	after2 := &fake{name: "after", points: []Point{PostPacketDecode}, fn: appendEnv("after")}
	ch = newChain(t, Member{Extension: bad, FailureMode: FailDrop}, Member{Extension: after2})
	c = &Context{Point: PostPacketDecode, Env: NewEnv()}
	err := ch.Run(c)
	var ee *ExtensionError
	if !errors.As(err, &ee) || ee.Extension != "bad" || ee.Point != PostPacketDecode {
		t.Fatalf("failure mode drop returned %v", err)
	}
	if c.Env.Value("trail") != "" {
		t.Error("an extension ran after a drop")
	}
	if s := ch.Stats()["bad"]; s.Drops != 1 || s.Errors != 1 {
		t.Errorf("stats %+v", s)
	}

	ch = newChain(t, Member{Extension: boom, FailureMode: FailDrop})
	err = ch.Run(&Context{Point: PostPacketDecode, Env: NewEnv()})
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Fatalf("panic with drop returned %v", err)
	}
}

func TestChainTimeouts(t *testing.T) {
	// An extension that is not Budgeted gets a Ctx bounded by its budget.
	waits := &fake{name: "waits", points: []Point{PreClientLookup}, fn: func(c *Context) error {
		<-c.Ctx.Done()
		return c.Ctx.Err()
	}}
	late := &fake{name: "late", points: []Point{PreClientLookup}, fn: func(c *Context) error {
		time.Sleep(20 * time.Millisecond)
		return nil
	}}
	own := &budgeted{fake: fake{name: "own", points: []Point{PreClientLookup}, fn: func(c *Context) error { return ErrTimeout }}}
	ch := newChain(t,
		Member{Extension: waits, Budget: 5 * time.Millisecond},
		Member{Extension: late, Budget: 5 * time.Millisecond},
		Member{Extension: own, Budget: 7 * time.Millisecond, FailureMode: FailDrop})
	parent := context.WithValue(context.Background(), ctxKey{}, "packet")
	c := &Context{Point: PreClientLookup, Env: NewEnv(), Ctx: parent}
	start := time.Now()
	err := ch.Run(c)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Run returned %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Run took %v", took)
	}
	if c.Ctx != parent {
		t.Error("Run did not restore the packet's Ctx")
	}
	if own.got != 7*time.Millisecond {
		t.Errorf("Budgeted extension got budget %v", own.got)
	}
	s := ch.Stats()
	if s["waits"].Timeouts != 1 || s["late"].Timeouts != 1 || s["own"].Timeouts != 1 || s["own"].Drops != 1 {
		t.Errorf("stats %+v", s)
	}
}

type ctxKey struct{}

func TestChainEnvDropEndsPoint(t *testing.T) {
	dropper := &fake{name: "dropper", points: []Point{PrePacketEncode}, fn: func(c *Context) error { return c.Drop() }}
	never := &fake{name: "never", points: []Point{PrePacketEncode}, fn: appendEnv("never")}
	ch := newChain(t, Member{Extension: dropper}, Member{Extension: never})
	c := &Context{Point: PrePacketEncode, Env: NewEnv()}
	if err := ch.Run(c); err != nil {
		t.Fatal(err)
	}
	if !c.Env.IsTrue(KeyDrop) || c.Env.Value("trail") != "" {
		t.Errorf("env %v", c.Env.Map())
	}
	if s := ch.Stats(); s["dropper"].Drops != 1 || s["never"].Calls != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestChainGenerateLeaseFirstAnswerWins(t *testing.T) {
	from := netip.MustParsePrefix("2001:db8:1::/64")
	first := &fake{name: "first", points: []Point{GenerateLease}, fn: func(c *Context) error {
		if c.Env.Set(KeyDrop, "true") == nil {
			t.Error("drop was accepted at generate-lease")
		}
		return c.SetLeaseString("2001:db8:1::5")
	}}
	second := &fake{name: "second", points: []Point{GenerateLease}, fn: func(c *Context) error {
		return c.SetLeaseString("2001:db8:1::6")
	}}
	ch := newChain(t, Member{Extension: first}, Member{Extension: second})
	c := &Context{Point: GenerateLease, Env: NewEnv(), Allocation: &Allocation{From: from, Length: 128}}
	if err := ch.Run(c); err != nil {
		t.Fatal(err)
	}
	if c.Allocation.Candidate != netip.MustParsePrefix("2001:db8:1::5/128") || ch.Stats()["second"].Calls != 0 {
		t.Errorf("candidate %v, stats %+v", c.Allocation.Candidate, ch.Stats())
	}

	skip := &fake{name: "skip", points: []Point{GenerateLease}, fn: func(c *Context) error { return c.SkipLease() }}
	ch = newChain(t, Member{Extension: skip}, Member{Extension: second})
	c = &Context{Point: GenerateLease, Env: NewEnv(), Allocation: &Allocation{From: from, Length: 128}}
	if err := ch.Run(c); err != nil || c.Allocation.Candidate.IsValid() {
		t.Errorf("skip-lease: err %v candidate %v", err, c.Allocation.Candidate)
	}

	refuse := &fake{name: "refuse", points: []Point{CheckLeaseAcceptable}, fn: func(c *Context) error {
		c.Allocation.Acceptable = false
		return nil
	}}
	accept := &fake{name: "accept", points: []Point{CheckLeaseAcceptable}, fn: func(c *Context) error {
		c.Allocation.Acceptable = true
		return nil
	}}
	ch = newChain(t, Member{Extension: refuse}, Member{Extension: accept})
	c = &Context{Point: CheckLeaseAcceptable, Env: NewEnv(), Allocation: &Allocation{Acceptable: true}}
	if err := ch.Run(c); err != nil || c.Allocation.Acceptable {
		t.Errorf("a refusal was overturned: err %v", err)
	}
}

func TestNewChainRefusesBadMembers(t *testing.T) {
	a := &fake{name: "a", points: []Point{PostPacketDecode}}
	if _, err := NewChain([]Member{{Extension: a}, {Extension: a}}, nil); err == nil {
		t.Error("duplicate names accepted")
	}
	if _, err := NewChain([]Member{{}}, nil); err == nil {
		t.Error("nil extension accepted")
	}
	if _, err := NewChain([]Member{{Extension: &fake{name: "x", points: []Point{numPoints}}}}, nil); err == nil {
		t.Error("invalid point accepted")
	}
	if m, err := ParseFailureMode("drop"); err != nil || m != FailDrop || m.String() != "drop" {
		t.Error("ParseFailureMode(drop)", m, err)
	}
	if _, err := ParseFailureMode("explode"); err == nil {
		t.Error("unknown failure mode accepted")
	}
}

func TestChainCloseAndRetire(t *testing.T) {
	a := &fake{name: "a", points: []Point{PostPacketDecode}}
	ch := newChain(t, Member{Extension: a})
	if err := ch.Close(); err != nil || ch.Close() != nil || a.closed.Load() != 1 {
		t.Fatalf("closed %d times", a.closed.Load())
	}
	b := &fake{name: "b", points: []Point{PostPacketDecode}}
	ch = newChain(t, Member{Extension: b})
	done := ch.Retire(10 * time.Millisecond)
	if b.closed.Load() != 0 {
		t.Fatal("Retire closed at once")
	}
	if err := <-done; err != nil || b.closed.Load() != 1 {
		t.Fatalf("Retire: %v, closed %d", err, b.closed.Load())
	}
}

func BenchmarkPointNoExtension(b *testing.B) {
	ch := newChain(&testing.T{})
	var r Runner = ch
	c := &Context{Point: PostPacketDecode}
	b.ReportAllocs()
	for b.Loop() {
		if r.Has(c.Point) {
			_ = r.Run(c)
		}
	}
}

func BenchmarkPointInlineExtension(b *testing.B) {
	ext := &budgeted{fake: fake{name: "x", points: []Point{PostPacketDecode}, fn: func(c *Context) error {
		if c.Env.Value(KeyVendorClass) == "x" {
			return c.Drop()
		}
		return nil
	}}}
	ch, err := NewChain([]Member{{Extension: ext}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	c := &Context{Point: PostPacketDecode, Env: NewEnv()}
	b.ReportAllocs()
	for b.Loop() {
		if ch.Has(c.Point) {
			_ = ch.Run(c)
		}
	}
}

// counting is a fake with counters of its own.
type counting struct{ fake }

func (c *counting) Counters() map[string]uint64 { return map[string]uint64{"hits": 7} }

func TestChainStatsIncludeOwnCounters(t *testing.T) {
	c := &counting{fake{name: "cache", points: []Point{PostPacketDecode}, fn: func(*Context) error { return nil }}}
	ch := newChain(t, Member{Extension: c, Budget: time.Second})
	if got := ch.Stats()["cache"].Own["hits"]; got != 7 {
		t.Errorf("own counter hits = %d, want 7", got)
	}
}
