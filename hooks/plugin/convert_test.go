package plugin

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hook6/hook6/hooks"
	pb "github.com/hook6/hook6/hooks/plugin/proto"
)

// sampleContext is a relayed Request at generate-lease with every field
// set, as the engine builds it.
func sampleContext(p hooks.Point) *hooks.Context {
	env := hooks.NewEnv()
	env.SetServer(hooks.KeyMessageType, "SOLICIT")
	env.SetServer(hooks.KeyRemoteID, "0a0b0c")
	env.SetServer(hooks.KeyVendorClass, "\xff\xfe not utf-8")
	env.Set("ldap.class", "gold")
	env.Set("gone", "soon")
	env.AtPoint(p)
	c := &hooks.Context{
		Point: p,
		Request: &hooks.Request{
			MessageType: "SOLICIT", TransactionID: 0xabcdef, ClientDUID: []byte{0, 1, 0, 1, 2, 3, 4, 5},
			IAs: []hooks.IA{
				{Type: hooks.IANA, IAID: 1, Hints: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::5/128")}},
				{Type: hooks.IAPD, IAID: 2, Hints: []netip.Prefix{netip.MustParsePrefix("::/56")}},
			},
			Options: []hooks.Option{{Code: 6, Data: []byte{0, 23, 0, 24}}, {Code: 8, Data: []byte{0, 0}}},
			Relays: []hooks.Relay{
				{HopCount: 1, LinkAddress: netip.MustParseAddr("2001:db8:ffff::1"), PeerAddress: netip.MustParseAddr("fe80::1"), InterfaceID: []byte("agg-1")},
				{HopCount: 0, LinkAddress: netip.MustParseAddr("2001:db8:1::1"), PeerAddress: netip.MustParseAddr("fe80::2"),
					InterfaceID: []byte("port-7"), RemoteID: []byte{0x0a, 0x0b, 0x0c}, ClientLinkLayer: []byte{2, 0, 0, 0, 0, 1},
					Options: []hooks.Option{{Code: 37, Data: []byte{0, 0, 0, 9, 0x0a, 0x0b, 0x0c}}}},
			},
			Source:    netip.MustParseAddrPort("[2001:db8:ffff::1]:547"),
			Interface: "eth0", Link: "lan",
		},
		Env: env,
		Ctx: context.Background(),
		Log: slog.New(slog.DiscardHandler),
	}
	switch p {
	case hooks.GenerateLease, hooks.CheckLeaseAcceptable:
		c.Allocation = &hooks.Allocation{IA: c.Request.IAs[1], PrefixName: "lan-pd",
			From: netip.MustParsePrefix("2001:db8:8000::/40"), Length: 56, Acceptable: p == hooks.CheckLeaseAcceptable}
		if p == hooks.CheckLeaseAcceptable {
			c.Allocation.Candidate = netip.MustParsePrefix("2001:db8:8000:100::/56")
		}
	case hooks.PrePacketEncode, hooks.PostPacketEncode:
		c.Response = &hooks.Response{MessageType: "ADVERTISE", Options: []hooks.Option{{Code: 23, Data: make([]byte, 16)}, {Code: 7, Data: []byte{0}}},
			Add: []hooks.Option{{Code: 21, Data: []byte("x")}}, Remove: []uint16{31}}
		if p == hooks.PostPacketEncode {
			c.Packet = []byte{2, 0xab, 0xcd, 0xef}
		}
	case hooks.LeaseStateChange:
		c.Event = &hooks.LeaseEvent{Prefix: netip.MustParsePrefix("2001:db8:8000:100::/56"), Type: hooks.IAPD, IAID: 2,
			DUID: []byte{0, 1}, From: "offered", To: "leased", Valid: 14 * 24 * time.Hour, Preferred: 7 * 24 * time.Hour}
	}
	return c
}

// wire sends m through protobuf encoding, as gRPC does.
func wire[M proto.Message](t testing.TB, m M) M {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := m.ProtoReflect().New().Interface().(M)
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestContextSurvivesTheWire(t *testing.T) {
	for _, p := range hooks.Points() {
		c := sampleContext(p)
		got, err := decodeRequest(context.Background(), wire(t, encodeRequest(c, slog.LevelInfo)), nil)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if got.Point != p || !reflect.DeepEqual(got.Request, c.Request) || !reflect.DeepEqual(got.Allocation, c.Allocation) ||
			!reflect.DeepEqual(got.Event, c.Event) || !reflect.DeepEqual(got.Response, c.Response) || string(got.Packet) != string(c.Packet) {
			t.Errorf("%s: the plugin sees\n%+v\n%+v %+v %+v\nnot\n%+v\n%+v %+v %+v", p, got.Request, got.Allocation, got.Event, got.Response,
				c.Request, c.Allocation, c.Event, c.Response)
		}
		if !reflect.DeepEqual(got.Env.Map(), c.Env.Map()) {
			t.Errorf("%s: env %v, want %v", p, got.Env.Map(), c.Env.Map())
		}
		if err := got.Env.Set(hooks.KeyRemoteID, "x"); err == nil {
			t.Errorf("%s: a server key is writable in the plugin", p)
		}
	}
}

// roundTrip runs f as a plugin would on a copy of c sent over the wire and
// applies its answer to c.
func roundTrip(t *testing.T, c *hooks.Context, f Func) error {
	t.Helper()
	req := wire(t, encodeRequest(c, slog.LevelDebug))
	var logs recorder
	pc, err := decodeRequest(context.Background(), req, slog.New(&logHandler{min: slog.Level(req.LogLevel), out: &logs}))
	if err != nil {
		t.Fatal(err)
	}
	callErr := protect(func() error { return f(pc) })
	return applyResponse(c, wire(t, encodeResponse(pc, req.Env, callErr, logs.records)), c.Log)
}

func TestAnswerAppliedBack(t *testing.T) {
	c := sampleContext(hooks.PrePacketEncode)
	var rec logRecorder
	c.Log = slog.New(&rec)
	err := roundTrip(t, c, func(pc *hooks.Context) error {
		pc.Response.SetPreference(255)
		pc.Response.RemoveOption(21)
		pc.Response.AddOption(24, []byte("example"))
		pc.Env.Delete("gone")
		pc.Env.Set("ldap.class", "silver")
		pc.Env.Set("new", "\xff")
		pc.Log.With("ext", "t").WithGroup("g").Info("edited", "n", 3, slog.Group("h", "x", "y"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Response
	if !r.PreferenceSet || r.Preference != 255 || !reflect.DeepEqual(r.Add, []hooks.Option{{Code: 24, Data: []byte("example")}}) ||
		!reflect.DeepEqual(r.Remove, []uint16{31, 21}) {
		t.Fatalf("response after the call: %+v", r)
	}
	if _, ok := c.Env.Get("gone"); ok || c.Env.Value("ldap.class") != "silver" || c.Env.Value("new") != "\xff" {
		t.Fatalf("env after the call: %v", c.Env.Map())
	}
	attrs, ok := rec.find("edited")
	if !ok || attrs["ext"] != "t" || attrs["g.n"] != "3" || attrs["g.h.x"] != "y" {
		t.Fatalf("plugin log record: %v %v", attrs, ok)
	}
}

func TestAnswerAtAllocationPoints(t *testing.T) {
	c := sampleContext(hooks.GenerateLease)
	if err := roundTrip(t, c, func(pc *hooks.Context) error { return pc.SetLeaseString("2001:db8:8000:4200::/56") }); err != nil {
		t.Fatal(err)
	}
	if c.Allocation.Candidate.String() != "2001:db8:8000:4200::/56" {
		t.Fatalf("candidate %v", c.Allocation.Candidate)
	}
	c = sampleContext(hooks.CheckLeaseAcceptable)
	if err := roundTrip(t, c, func(pc *hooks.Context) error { pc.Allocation.Acceptable = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if c.Allocation.Acceptable {
		t.Fatal("refusal not applied")
	}
}

func TestRefusedAnswers(t *testing.T) {
	cases := map[string]struct {
		point   hooks.Point
		f       Func
		want    string
		garbage bool
	}{
		"read-only key": {hooks.PostPacketDecode, func(pc *hooks.Context) error {
			pc.Env.SetServer(hooks.KeyRemoteID, "forged") // the plugin side cannot refuse what it cannot see
			return nil
		}, "read-only", false},
		"candidate outside": {hooks.GenerateLease, func(pc *hooks.Context) error {
			pc.Allocation.Candidate = netip.MustParsePrefix("2001:db9::/56")
			return nil
		}, "outside", false},
		"candidate at check": {hooks.CheckLeaseAcceptable, func(pc *hooks.Context) error {
			pc.Allocation.Candidate = netip.MustParsePrefix("2001:db8:8000:200::/56")
			return nil
		}, "candidate changed", true},
		"error and panic": {hooks.PostPacketDecode, func(pc *hooks.Context) error { panic("boom") }, "panic: boom", false},
	}
	for name, tc := range cases {
		c := sampleContext(tc.point)
		err := roundTrip(t, c, tc.f)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errGarbage) != tc.garbage {
			t.Errorf("%s: %v, want %q (garbage %v)", name, err, tc.want, tc.garbage)
		}
	}
}

func TestGarbageOnTheWire(t *testing.T) {
	cases := map[string]struct {
		point hooks.Point
		r     *pb.HandleResponse
	}{
		"short address":  {hooks.GenerateLease, &pb.HandleResponse{Allocation: &pb.Allocation{Candidate: &pb.Prefix{Addr: make([]byte, 7), Bits: 56}}}},
		"long prefix":    {hooks.GenerateLease, &pb.HandleResponse{Allocation: &pb.Allocation{Candidate: &pb.Prefix{Addr: make([]byte, 16), Bits: 129}}}},
		"no allocation":  {hooks.PostPacketDecode, &pb.HandleResponse{Allocation: &pb.Allocation{}}},
		"no response":    {hooks.GenerateLease, &pb.HandleResponse{Response: &pb.Response{}}},
		"option code":    {hooks.PrePacketEncode, &pb.HandleResponse{Response: &pb.Response{Add: []*pb.Option{{Code: 70000}}}}},
		"remove code":    {hooks.PrePacketEncode, &pb.HandleResponse{Response: &pb.Response{Remove: []uint32{1 << 20}}}},
		"preference 256": {hooks.PrePacketEncode, &pb.HandleResponse{Response: &pb.Response{Preference: 256, PreferenceSet: true}}},
	}
	for name, tc := range cases {
		c := sampleContext(tc.point)
		before := *c.Request
		if err := applyResponse(c, wire(t, tc.r), c.Log); !errors.Is(err, errGarbage) {
			t.Errorf("%s: %v, want garbage", name, err)
		}
		if !reflect.DeepEqual(before, *c.Request) {
			t.Errorf("%s: request changed", name)
		}
	}
	var bad pb.HandleResponse
	if err := proto.Unmarshal([]byte{0x0a, 0xff, 0x01}, &bad); err == nil {
		t.Fatal("truncated message decoded")
	}
}
