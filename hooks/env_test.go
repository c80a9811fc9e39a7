package hooks

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestEnvServerKeysAreReadOnly: a server-provided key cannot be set or
// deleted by an extension, whether or not the server has set it yet, and
// reads give what the server set.
func TestEnvServerKeysAreReadOnly(t *testing.T) {
	e := NewEnv()
	e.SetServer(KeyClientDUID, "000100")
	for _, k := range ReadOnlyKeys {
		if err := e.Set(k, "x"); err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("Set(%q) = %v, want read-only", k, err)
		}
		if err := e.Delete(k); err == nil {
			t.Errorf("Delete(%q) succeeded", k)
		}
	}
	if v, ok := e.Get(KeyClientDUID); v != "000100" || !ok {
		t.Errorf("Get(duid) = %q, %v", v, ok)
	}
	if v, ok := e.Get(KeyLink); v != "" || ok {
		t.Errorf("Get(link) before the server set it = %q, %v; want unset", v, ok)
	}
	e.SetServer(KeyLink, "lan")
	if got := e.Value(KeyLink); got != "lan" {
		t.Errorf("link = %q", got)
	}
}

// TestEnvKeysMapAndReset: Keys and Map list the server's keys that are set
// and the extensions' keys together, Reset empties both.
func TestEnvKeysMapAndReset(t *testing.T) {
	e := NewEnv()
	e.SetServer(KeyMessageType, "SOLICIT")
	e.SetServer(KeyVendorClass, "")
	e.SetServer("site.region", "north") // not a server key: read-only too
	if err := e.Set("a.flag", "yes"); err != nil {
		t.Fatal(err)
	}
	if err := e.Set("site.region", "south"); err == nil {
		t.Error("a key given by SetServer could be overwritten")
	}
	want := []string{"a.flag", KeyMessageType, KeyVendorClass, "site.region"}
	slices.Sort(want)
	if got := e.Keys(); !slices.Equal(got, want) {
		t.Errorf("Keys = %v, want %v", got, want)
	}
	wantMap := map[string]string{"a.flag": "yes", KeyMessageType: "SOLICIT", KeyVendorClass: "", "site.region": "north"}
	if got := e.Map(); !maps.Equal(got, wantMap) {
		t.Errorf("Map = %v, want %v", got, wantMap)
	}
	if !e.IsTrue("a.flag") || e.IsTrue(KeyMessageType) {
		t.Error("IsTrue")
	}
	e.Reset()
	if ks := e.Keys(); len(ks) != 0 {
		t.Errorf("after Reset: %v", ks)
	}
	if err := e.Set("site.region", "south"); err != nil {
		t.Errorf("after Reset a former SetServer key is still read-only: %v", err)
	}
}

// BenchmarkServerEnv is what giving one packet its dictionary costs: the
// server's fifteen keys and two reads.
func BenchmarkServerEnv(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		e := NewEnv()
		for _, k := range ReadOnlyKeys {
			e.SetServer(k, "v")
		}
		if e.Value(KeyClientDUID) != "v" || e.Value("x") != "" {
			b.Fatal("lookup")
		}
	}
}
