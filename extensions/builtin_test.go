package extensions

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hook6/hook6/core/config"
	"github.com/hook6/hook6/hooks"
	"github.com/hook6/hook6/hooks/script"
)

func TestDropFlagTurnsFlagIntoDrop(t *testing.T) {
	ch := build(t,
		&config.Extension{Name: "flagger", Builtin: "env-lease", InitArgs: map[string]string{"key": "lease", "skip-missing": "true"}},
		&config.Extension{Name: "drop-unknown", Builtin: "drop-flag", InitArgs: map[string]string{"flag": "no-lease"}})
	if !ch.Has(hooks.PrePacketEncode) || !ch.Has(hooks.GenerateLease) {
		t.Fatal("default points missing")
	}
	req, env := client{mac: macA}.packet(t)
	if err := env.Set("no-lease", "yes"); err != nil {
		t.Fatal(err)
	}
	out := pipeline(t, ch, req, env)
	if !out.dropped || out.droppedAt != hooks.PrePacketEncode || out.skipped != 1 {
		t.Errorf("flagged client: %+v", out)
	}
	req, env = client{mac: macB}.packet(t)
	env.Set("lease", "2001:db8:1::9")
	out = pipeline(t, ch, req, env)
	if out.dropped || len(out.leases) != 1 || out.leases[0] != netip.MustParsePrefix("2001:db8:1::9/128") {
		t.Errorf("client with a lease: %+v", out)
	}
	if _, err := NewDropFlag("x", []hooks.Point{hooks.GenerateLease}, map[string]string{"flag": "f"}); err == nil {
		t.Error("drop-flag accepted generate-lease, where drop is refused")
	}
	if _, err := NewDropFlag("x", nil, map[string]string{}); err == nil {
		t.Error("drop-flag without flag accepted")
	}
}

func TestPreferenceCondition(t *testing.T) {
	ch := build(t, &config.Extension{Name: "pref", Builtin: "preference",
		InitArgs: map[string]string{"value": "255", "when-env": hooks.KeyVendorClass, "equals": "acme-cpe"}})
	req, env := client{mac: macA, vendorClass: "acme-cpe"}.packet(t)
	if r := pipeline(t, ch, req, env).response; !r.PreferenceSet || r.Preference != 255 {
		t.Errorf("matching client: %+v", r)
	}
	req, env = client{mac: macB, vendorClass: "acme"}.packet(t)
	if r := pipeline(t, ch, req, env).response; r.PreferenceSet {
		t.Errorf("other client: %+v", r)
	}

	ch = build(t, &config.Extension{Name: "pref", Builtin: "preference", InitArgs: map[string]string{"value": "7", "when-env": "vip"}})
	req, env = client{mac: macB}.packet(t)
	env.Set("vip", "true")
	if r := pipeline(t, ch, req, env).response; !r.PreferenceSet || r.Preference != 7 {
		t.Errorf("vip flag: %+v", r)
	}
	for _, args := range []map[string]string{{"value": "256"}, {}, {"value": "1", "equals": "x"}, {"value": "1", "colour": "red"}} {
		if _, err := NewPreference("p", nil, args); err == nil {
			t.Errorf("preference accepted %v", args)
		}
	}
	if _, err := NewPreference("p", []hooks.Point{hooks.PostPacketDecode}, map[string]string{"value": "1"}); err == nil {
		t.Error("preference accepted post-packet-decode, which has no response")
	}
}

func TestEnvLease(t *testing.T) {
	ch := build(t, &config.Extension{Name: "el", Builtin: "env-lease", InitArgs: map[string]string{"key": "ldap.address", "pd-key": "ldap.prefix"}})
	req, env := client{mac: macA, pd: true}.packet(t)
	env.Set("ldap.address", "2001:db8:1::77")
	env.Set("ldap.prefix", "2001:db8:8000:4200::/56")
	out := pipeline(t, ch, req, env)
	if len(out.leases) != 2 || out.leases[0] != netip.MustParsePrefix("2001:db8:1::77/128") ||
		out.leases[1] != netip.MustParsePrefix("2001:db8:8000:4200::/56") {
		t.Errorf("leases %v", out.leases)
	}

	// Missing key without skip-missing: the next algorithm chooses.
	req, env = client{mac: macB}.packet(t)
	if out := pipeline(t, ch, req, env); len(out.leases) != 0 || out.skipped != 0 {
		t.Errorf("missing key: %+v", out)
	}

	// An answer outside the prefix is refused and counted.
	req, env = client{mac: macB}.packet(t)
	env.Set("ldap.address", "2001:db8:99::1")
	if out := pipeline(t, ch, req, env); len(out.leases) != 0 {
		t.Errorf("outside lease accepted: %v", out.leases)
	}
	if s := ch.Stats()["el"]; s.Errors != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestBuildRefusesBadSpecs(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.go")
	os.WriteFile(bad, []byte("package main\n\nimport \"github.com/hook6/hook6/hooks\"\n\nfunc PrePacketEncode(c *hooks.Context) error {\n\treturn undefinedThing\n}\n"), 0o644)
	specs := []*config.Extension{
		{Name: "two", Builtin: "preference", Script: "x.go"},
		{Name: "nobody", Builtin: "no-such"},
		{Name: "badpoint", Builtin: "drop-flag", Points: []string{"pre-lunch"}, InitArgs: map[string]string{"flag": "f"}},
		{Name: "badmode", Builtin: "drop-flag", FailureMode: "explode", InitArgs: map[string]string{"flag": "f"}},
		{Name: "allow", Builtin: "drop-flag", InitArgs: map[string]string{"flag": "f"}, Allow: config.ExtensionAllow{Network: true}},
		{Name: "broken", Script: bad},
		{Name: "plug", Plugin: "p@1"},
		{Name: "missing", Script: examplePath(t, "preference.go"), Points: []string{"generate-lease"}},
	}
	_, err := Build(specs, BuildOptions{})
	if err == nil {
		t.Fatal("bad specs built")
	}
	msg := err.Error()
	for _, want := range []string{"extension two:", "extension nobody: unknown builtin", "extension badpoint:", "extension badmode:",
		"extension allow:", bad + ":6:", "undefined", "extension plug: plugins are not available", "extension missing:", "generate-lease"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	var ce script.CompileErrors
	if !errors.As(err, &ce) || ce[0].Line != 6 {
		t.Errorf("compile error not found as CompileErrors: %v", err)
	}
}

// plugged is what the test's plugin factory builds.
type plugged struct{ name string }

func (p *plugged) Name() string                  { return p.name }
func (p *plugged) Points() []hooks.Point         { return []hooks.Point{hooks.PostPacketEncode} }
func (p *plugged) Handle(c *hooks.Context) error { return c.Env.Set("plugged", "yes") }

func TestBuildUsesPluginFactoryAndConfigOrder(t *testing.T) {
	var gotPoints []hooks.Point
	opts := BuildOptions{Plugin: func(_ context.Context, spec *config.Extension, points []hooks.Point) (hooks.Extension, error) {
		gotPoints = points
		return &plugged{name: spec.Name}, nil
	}}
	specs := []*config.Extension{
		{Name: "pl", Plugin: "thing@1.0.0", Points: []string{"post-packet-encode"}, Budget: config.Duration(20 * time.Millisecond), FailureMode: "drop"},
		{Name: "df", Builtin: "drop-flag", Points: []string{"post-packet-encode"}, InitArgs: map[string]string{"flag": "plugged"}},
	}
	ch, err := Build(specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if len(gotPoints) != 1 || gotPoints[0] != hooks.PostPacketEncode {
		t.Errorf("factory got points %v", gotPoints)
	}
	env := hooks.NewEnv()
	if err := ch.Run(&hooks.Context{Point: hooks.PostPacketEncode, Env: env}); err != nil {
		t.Fatal(err)
	}
	if !env.IsTrue(hooks.KeyDrop) {
		t.Error("the built-in after the plugin did not see its env key")
	}
}

func TestBuildResolvesScriptsAgainstBaseDir(t *testing.T) {
	dir := filepath.Dir(examplePath(t, "preference.go"))
	ch, err := Build([]*config.Extension{{Name: "p", Script: "preference.go"}}, BuildOptions{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if !ch.Has(hooks.PrePacketEncode) {
		t.Error("the script's point is missing")
	}
}

// TestEnvLeaseJudgesHeldLeases: at check-lease-acceptable, env-lease refuses
// a lease other than the one its key names (the directory changed), and
// has no opinion when the key is missing.
func TestEnvLeaseJudgesHeldLeases(t *testing.T) {
	ch := build(t, &config.Extension{Name: "el", Builtin: "env-lease", Points: []string{"generate-lease", "check-lease-acceptable"},
		InitArgs: map[string]string{"key": "ldap.prefix"}})
	judge := func(envValue, held string) bool {
		env := hooks.NewEnv()
		if envValue != "" {
			env.Set("ldap.prefix", envValue)
		}
		c := &hooks.Context{Point: hooks.CheckLeaseAcceptable, Env: env, Request: &hooks.Request{},
			Allocation: &hooks.Allocation{IA: hooks.IA{Type: hooks.IAPD}, From: netip.MustParsePrefix("2001:db8:8000::/40"),
				Length: 56, Candidate: netip.MustParsePrefix(held), Acceptable: true}}
		env.AtPoint(hooks.CheckLeaseAcceptable)
		if err := ch.Run(c); err != nil {
			t.Fatal(err)
		}
		return c.Allocation.Acceptable
	}
	if !judge("2001:db8:8000:4200::/56", "2001:db8:8000:4200::/56") {
		t.Error("the lease the key names was refused")
	}
	if judge("2001:db8:8000:4300::/56", "2001:db8:8000:4200::/56") {
		t.Error("a lease other than the key's was accepted")
	}
	if !judge("", "2001:db8:8000:4200::/56") {
		t.Error("no key: want no opinion (accepted)")
	}
}
