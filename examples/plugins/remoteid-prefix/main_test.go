package main

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/hook6/hook6/hooks"
)

func newContext(remoteID []byte, ia hooks.IAType, from string, length int) *hooks.Context {
	env := hooks.NewEnv()
	env.AtPoint(hooks.GenerateLease)
	return &hooks.Context{
		Point:      hooks.GenerateLease,
		Request:    &hooks.Request{Relays: []hooks.Relay{{RemoteID: []byte("outer")}, {RemoteID: remoteID}}},
		Allocation: &hooks.Allocation{IA: hooks.IA{Type: ia}, From: netip.MustParsePrefix(from), Length: length},
		Env:        env,
	}
}

func TestGenerateLeasePicksTheLeaseThatFits(t *testing.T) {
	tb := &table{}
	err := tb.Init(map[string]string{
		"0a0b0c":      "2001:db8:8000:100::/56, 2001:db8:1::100",
		"text:port-7": "2001:db8:8000:700::/56",
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		id       []byte
		ia       hooks.IAType
		from     string
		length   int
		want     string
		wantSkip bool
	}{
		{[]byte{0x0a, 0x0b, 0x0c}, hooks.IAPD, "2001:db8:8000::/40", 56, "2001:db8:8000:100::/56", false},
		{[]byte{0x0a, 0x0b, 0x0c}, hooks.IANA, "2001:db8:1::/64", 128, "2001:db8:1::100/128", false},
		{[]byte("port-7"), hooks.IAPD, "2001:db8:8000::/40", 56, "2001:db8:8000:700::/56", false},
		{[]byte("port-7"), hooks.IANA, "2001:db8:1::/64", 128, "invalid Prefix", false}, // nothing fits: next algorithm
		{[]byte("port-9"), hooks.IAPD, "2001:db8:8000::/40", 56, "invalid Prefix", false},
	}
	for _, tc := range cases {
		c := newContext(tc.id, tc.ia, tc.from, tc.length)
		if err := tb.GenerateLease(c); err != nil {
			t.Fatalf("%q: %v", tc.id, err)
		}
		if got := c.Allocation.Candidate.String(); got != tc.want {
			t.Errorf("%q %s: lease %s, want %s", tc.id, tc.ia, got, tc.want)
		}
		if c.Env.IsTrue(hooks.KeySkipLease) != tc.wantSkip {
			t.Errorf("%q: skip-lease %v", tc.id, c.Env.IsTrue(hooks.KeySkipLease))
		}
		if tc.want != "invalid Prefix" && c.Env.Value(KeyLease) != tc.want {
			t.Errorf("%q: env %s = %q", tc.id, KeyLease, c.Env.Value(KeyLease))
		}
	}
}

func TestOnMissSkip(t *testing.T) {
	tb := &table{}
	if err := tb.Init(map[string]string{"0a": "2001:db8:8000:100::/56", "on-miss": "skip"}); err != nil {
		t.Fatal(err)
	}
	c := newContext([]byte{0x0b}, hooks.IAPD, "2001:db8:8000::/40", 56)
	c.Log = slog.New(slog.DiscardHandler)
	if err := tb.GenerateLease(c); err != nil {
		t.Fatal(err)
	}
	if !c.Env.IsTrue(hooks.KeySkipLease) {
		t.Fatal("unknown remote-id with on-miss skip: want skip-lease")
	}
}

func TestInitRefusesBadArgs(t *testing.T) {
	for _, args := range []map[string]string{
		{},
		{"zz": "2001:db8::/56"},
		{"0a": "not-a-prefix"},
		{"0a": "2001:db8::1/56"},
		{"0a": "2001:db8::/56", "on-miss": "maybe"},
	} {
		if err := (&table{}).Init(args); err == nil {
			t.Errorf("Init(%v): want an error", args)
		}
	}
}
