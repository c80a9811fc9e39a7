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
	for k, v := range map[string]string{ // what the engine sets for a relayed Solicit
		hooks.KeyMessageType: "SOLICIT", hooks.KeyClientDUID: "0001000102030405", hooks.KeyInterface: "eth0",
		hooks.KeySource: "2001:db8:ffff::1", hooks.KeyRelayed: "true", hooks.KeyLinkAddress: "2001:db8:1::1",
		hooks.KeyPeerAddress: "fe80::2", hooks.KeyInterfaceID: "706f72742d37", hooks.KeyRemoteID: "0a0b0c",
		hooks.KeyClientMAC: "02:00:00:00:00:01", hooks.KeyLink: "lan", hooks.KeyServerName: "dhcp1",
		hooks.KeyVendorClass: "\xff\xfe not utf-8", hooks.KeyRequestIAIDs: "2",
	} {
		env.SetServer(k, v)
	}
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

func mustEncode(t testing.TB, c *hooks.Context, level slog.Level) *pb.HandleRequest {
	r, err := encodeRequest(c, level)
	if err != nil {
		t.Fatal(err)
	}
	return r
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
		got, err := decodeRequest(context.Background(), wire(t, mustEncode(t, c, slog.LevelInfo)), nil, hooks.NewEnv())
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
	req := wire(t, mustEncode(t, c, slog.LevelDebug))
	var logs recorder
	pc, err := decodeRequest(context.Background(), req, slog.New(&logHandler{min: slog.Level(req.LogLevel), out: &logs}), hooks.NewEnv())
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
		"short prefix":   {hooks.GenerateLease, &pb.HandleResponse{Allocation: &pb.Allocation{Candidate: make([]byte, 7)}}},
		"long prefix":    {hooks.GenerateLease, &pb.HandleResponse{Allocation: &pb.Allocation{Candidate: append(make([]byte, 16), 129)}}},
		"no allocation":  {hooks.PostPacketDecode, &pb.HandleResponse{Allocation: &pb.Allocation{}}},
		"no response":    {hooks.GenerateLease, &pb.HandleResponse{Response: &pb.Response{}}},
		"option data":    {hooks.PrePacketEncode, &pb.HandleResponse{Response: &pb.Response{Add: []byte{0, 24, 0, 9, 'x'}}}},
		"option header":  {hooks.PrePacketEncode, &pb.HandleResponse{Response: &pb.Response{Add: []byte{0, 24, 0}}}},
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

func TestEnvChanges(t *testing.T) {
	before := hooks.NewEnv()
	for _, k := range []string{"b", "d", "f", "h"} {
		before.Set(k, k+"1")
	}
	block := envBlock(before)
	after := hooks.NewEnv()
	if err := decodeEnv(block, after); err != nil {
		t.Fatal(err)
	}
	after.Set("a", "new")  // before every key
	after.Delete("b")      // the first key
	after.Set("d", "d2")   // changed
	after.Set("e", "new")  // in between
	after.Set("f", "f1")   // set to the same value: no change
	after.Delete("h")      // the last key
	after.Set("z", "\xff") // after every key
	set, deleted := envChanges(block, after)
	got := map[string]string{}
	if err := walkEnv(set, func(k, v string) error { got[k] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, map[string]string{"a": "new", "d": "d2", "e": "new", "z": "\xff"}) {
		t.Errorf("set %v", got)
	}
	var del []string
	for _, k := range deleted {
		del = append(del, string(k))
	}
	if !reflect.DeepEqual(del, []string{"b", "h"}) {
		t.Errorf("deleted %v", del)
	}
	long := hooks.NewEnv()
	long.Set(strings.Repeat("k", 300), strings.Repeat("v", 70000))
	back := hooks.NewEnv()
	if err := decodeEnv(envBlock(long), back); err != nil || !reflect.DeepEqual(back.Map(), long.Map()) {
		t.Errorf("long entry: %v", err)
	}
}

func TestCompactEncodings(t *testing.T) {
	ps := []netip.Prefix{netip.MustParsePrefix("2001:db8::/56"), netip.MustParsePrefix("2001:db8::5/128"), netip.MustParsePrefix("::/0")}
	got, err := parsePrefixList(prefixListBytes(ps))
	if err != nil || !reflect.DeepEqual(got, ps) {
		t.Fatalf("prefix list: %v %v", got, err)
	}
	if p, err := parsePrefix(prefixBytes(netip.Prefix{})); err != nil || p.IsValid() {
		t.Fatalf("no prefix: %v %v", p, err)
	}
	if _, err := parsePrefixList(make([]byte, 18)); !errors.Is(err, errGarbage) {
		t.Fatalf("18-byte prefix list: %v", err)
	}
	os := []hooks.Option{{Code: 23, Data: make([]byte, 32)}, {Code: 14}, {Code: 0xffff, Data: []byte{1}}}
	b, err := optionsBytes(os)
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseOptions(b)
	if err != nil || len(back) != 3 || back[0].Code != 23 || len(back[0].Data) != 32 || len(back[1].Data) != 0 || back[2].Code != 0xffff {
		t.Fatalf("options: %+v %v", back, err)
	}
	if _, err := optionsBytes([]hooks.Option{{Code: 1, Data: make([]byte, 70000)}}); err == nil {
		t.Fatal("a 70000-byte option encoded")
	}
}
