package extensions

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/hooks"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
)

func TestExamplePreferenceForOneClass(t *testing.T) {
	ch := build(t, &config.Extension{Name: "prefer", Script: examplePath(t, "preference.go"),
		Points: []string{"pre-packet-encode"}, InitArgs: map[string]string{"vendor-class": "acme-cpe"}})
	req, env := client{mac: macA, vendorClass: "acme-cpe"}.packet(t)
	out := pipeline(t, ch, req, env)
	if r := out.response; !r.PreferenceSet || r.Preference != 255 {
		t.Errorf("acme client: preference %d set %v, want 255", r.Preference, r.PreferenceSet)
	}
	req, env = client{mac: macB, vendorClass: "other"}.packet(t)
	if r := pipeline(t, ch, req, env).response; r.PreferenceSet {
		t.Errorf("other client got preference %d", r.Preference)
	}

	// The config of DESIGN.md: only value, every client.
	ch = build(t, &config.Extension{Name: "prefer", Script: examplePath(t, "preference.go"),
		Points: []string{"pre-packet-encode"}, InitArgs: map[string]string{"value": "200"}})
	req, env = client{mac: macB}.packet(t)
	if r := pipeline(t, ch, req, env).response; !r.PreferenceSet || r.Preference != 200 {
		t.Errorf("value 200: got %d set %v", r.Preference, r.PreferenceSet)
	}

	ch = build(t, &config.Extension{Name: "prefer", Script: examplePath(t, "preference.go"),
		InitArgs: map[string]string{"duid-prefix": "00:03:00:01:02:00:00:00:00:0a"}})
	req, env = client{mac: macA, relayed: true}.packet(t)
	if r := pipeline(t, ch, req, env).response; !r.PreferenceSet || r.Preference != 255 {
		t.Errorf("duid-prefix match: got %d set %v", r.Preference, r.PreferenceSet)
	}
}

func TestExampleDropByVendorClass(t *testing.T) {
	ch := build(t, &config.Extension{Name: "drop-vendor", Script: examplePath(t, "drop-vendor.go"),
		Points: []string{"post-packet-decode"}, InitArgs: map[string]string{"vendor-class": "evil, rogue-box"}})
	req, env := client{mac: macA, vendorClass: "rogue-box", relayed: true}.packet(t)
	out := pipeline(t, ch, req, env)
	if !out.dropped || out.droppedAt != hooks.PostPacketDecode {
		t.Errorf("rogue-box not dropped at post-packet-decode: %+v", out)
	}
	req, env = client{mac: macB, vendorClass: "good-box"}.packet(t)
	if out := pipeline(t, ch, req, env); out.dropped {
		t.Errorf("good-box dropped at %v", out.droppedAt)
	}
	if s := ch.Stats()["drop-vendor"]; s.Calls != 2 || s.Drops != 1 || s.Errors != 0 {
		t.Errorf("stats %+v", s)
	}
	if _, err := Build([]*config.Extension{{Name: "d", Script: examplePath(t, "drop-vendor.go")}}, BuildOptions{}); err == nil {
		t.Error("drop-vendor without vendor-class loaded")
	}
}

func TestExampleDUIDTable(t *testing.T) {
	ch := build(t, &config.Extension{Name: "table", Script: examplePath(t, "duid-table.go"),
		Points: []string{"generate-lease", "pre-packet-encode"}, InitArgs: map[string]string{
			"unknown":                       "drop",
			"00:03:00:01:02:00:00:00:00:0a": "2001:db8:1::100, 2001:db8:8000:100::/56",
		}})
	req, env := client{mac: macA, pd: true}.packet(t)
	out := pipeline(t, ch, req, env)
	want := []netip.Prefix{netip.MustParsePrefix("2001:db8:1::100/128"), netip.MustParsePrefix("2001:db8:8000:100::/56")}
	if out.dropped || len(out.leases) != 2 || out.leases[0] != want[0] || out.leases[1] != want[1] {
		t.Errorf("known client: %+v", out)
	}
	req, env = client{mac: macB, pd: true}.packet(t)
	out = pipeline(t, ch, req, env)
	if out.skipped != 2 || len(out.leases) != 0 || !out.dropped || out.droppedAt != hooks.PrePacketEncode {
		t.Errorf("unknown client: %+v", out)
	}
}

func TestExampleEnvHandoff(t *testing.T) {
	ch := build(t, &config.Extension{Name: "tier", Script: examplePath(t, "env-handoff.go"),
		Points: []string{"post-packet-decode", "pre-packet-encode"}, InitArgs: map[string]string{"gold-dns": "2001:db8::5353"}})
	req, env := client{mac: macA, userClass: "gold"}.packet(t)
	out := pipeline(t, ch, req, env)
	dns := netip.MustParseAddr("2001:db8::5353").As16()
	r := out.response
	if env.Value("example.tier") != "gold" || len(r.Add) != 1 || r.Add[0].Code != 23 || !bytes.Equal(r.Add[0].Data, dns[:]) {
		t.Errorf("gold client: env %v, response %+v", env.Map(), r)
	}
	if len(r.Remove) != 1 || r.Remove[0] != 23 {
		t.Errorf("gold client: option 23 not replaced: %+v", r)
	}
	req, env = client{mac: macB, userClass: "silver"}.packet(t)
	out = pipeline(t, ch, req, env)
	if env.Value("example.tier") != "standard" || len(out.response.Add) != 0 {
		t.Errorf("silver client: env %v, response %+v", env.Map(), out.response)
	}
}
