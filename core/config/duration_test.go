package config

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"30s", 30 * time.Second},
		{"1h", time.Hour},
		{"90m", 90 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"7d", 7 * 24 * time.Hour},
		{"14d", 14 * 24 * time.Hour},
		{"1w", 7 * 24 * time.Hour},
		{"1w2d3h", 9*24*time.Hour + 3*time.Hour},
		{"1.5h", 90 * time.Minute},
		{"50ms", 50 * time.Millisecond},
		{"250us", 250 * time.Microsecond},
		{"0", 0},
		{"3600", time.Hour},
		{"4294967294", 4294967294 * time.Second},
		{"infinity", math.MaxUint32 * time.Second},
		{"4294967295", math.MaxUint32 * time.Second},
		{" 2h ", 2 * time.Hour},
	} {
		got, err := ParseDuration(tc.in)
		if err != nil || got != Duration(tc.want) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, msg string }{
		{"", "empty duration"},
		{"-5", "negative"},
		{"-1h", "negative"},
		{"5x", "unknown unit"},
		{"1h5", "missing or unknown unit after 5"},
		{"h", "want a number"},
		{"1y", "unknown unit"},
		{"4294967296", "longer than 4294967295 seconds; use infinity"},
		{"50000d", "longer than 4294967295 seconds"},
		{"99999999999999999999w", "longer than"},
		{"Infinity", "want a number"},
	} {
		_, err := ParseDuration(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseDuration(%q) error = %v, want …%s…", tc.in, err, tc.msg)
		}
	}
}

func TestDurationMethods(t *testing.T) {
	for _, tc := range []struct {
		d    Duration
		s    string
		secs uint32
	}{
		{0, "0s", 0},
		{Duration(7 * 24 * time.Hour), "7d", 604800},
		{Duration(26*time.Hour + 30*time.Minute + 5*time.Second), "1d2h30m5s", 95405},
		{Duration(50 * time.Millisecond), "50ms", 0},
		{Duration(1500 * time.Millisecond), "1.5s", 1},
		{Infinity, "infinity", math.MaxUint32},
	} {
		if got := tc.d.String(); got != tc.s {
			t.Errorf("%d.String() = %q, want %q", tc.d, got, tc.s)
		}
		if got := tc.d.Seconds32(); got != tc.secs {
			t.Errorf("%v.Seconds32() = %d, want %d", tc.d, got, tc.secs)
		}
		back, err := ParseDuration(tc.s)
		if err != nil || back != tc.d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.s, back, err, tc.d)
		}
	}
	if Infinity.Scale(0.5) != Infinity || Duration(time.Hour).Scale(0.8) != Duration(48*time.Minute) {
		t.Error("Scale")
	}
	if Duration(time.Hour).Std() != time.Hour || Duration(time.Hour).IsInfinite() {
		t.Error("Std/IsInfinite")
	}
	var v struct{ D Duration }
	if err := json.Unmarshal([]byte(`{"D":"2w"}`), &v); err != nil || v.D != Duration(14*24*time.Hour) {
		t.Fatalf("json in: %v %v", v.D, err)
	}
	if b, _ := json.Marshal(v); string(b) != `{"D":"14d"}` {
		t.Errorf("json out: %s", b)
	}
	if err := json.Unmarshal([]byte(`{"D":"soon"}`), &v); err == nil {
		t.Error("json accepted a bad duration")
	}
}

func TestHexBytes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"00:01:00:01:2b:3c", "00:01:00:01:2b:3c"},
		{"000100012B3C", "00:01:00:01:2b:3c"},
		{"ff", "ff"},
	} {
		h, err := ParseHexBytes(tc.in)
		if err != nil || h.String() != tc.want {
			t.Errorf("ParseHexBytes(%q) = %v, %v", tc.in, h, err)
		}
	}
	for _, in := range []string{"", "0", "0:01", "00:1:02", "zz", "00::01", "00:01:"} {
		if _, err := ParseHexBytes(in); err == nil {
			t.Errorf("ParseHexBytes(%q) accepted", in)
		}
	}
	var v struct{ H HexBytes }
	if err := json.Unmarshal([]byte(`{"H":"0a0b"}`), &v); err != nil || v.H.String() != "0a:0b" {
		t.Fatalf("json in: %v %v", v.H, err)
	}
	if b, _ := json.Marshal(v); string(b) != `{"H":"0a:0b"}` {
		t.Errorf("json out: %s", b)
	}
}

// TestDurationFields checks how durations are written in the YAML itself.
func TestDurationFields(t *testing.T) {
	c, err := Parse("d.yaml", []byte("policies:\n  default:\n    preferred-lifetime: 3600\n    valid-lifetime: infinity\n    t1: 0\n    t2: 1w\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Policy("default")
	if p.PreferredLifetime != Duration(time.Hour) || p.ValidLifetime != Infinity || *p.T1 != 0 || *p.T2 != Duration(7*24*time.Hour) {
		t.Errorf("policy = %+v T1 %v T2 %v", p, *p.T1, *p.T2)
	}
	_, err = Parse("d.yaml", []byte("policies:\n  default:\n    valid-lifetime: [1h]\n"))
	if err == nil || err.Error() != "d.yaml:3: policies.default.valid-lifetime: expected a duration, got a list" {
		t.Errorf("err = %v", err)
	}
}
