package labbench

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testPools = Pools{
	Interface: "srv0",
	Addr:      netip.MustParsePrefix("2001:db8:1::/64"),
	PD:        netip.MustParsePrefix("2001:db8:8000::/40"),
	PDLen:     56,
	Lifetime:  time.Hour,
}

// Kea's own checker (kea-dhcp6 -t) accepts the configuration.
func TestKeaConfigPassesKeaCheck(t *testing.T) {
	if _, err := exec.LookPath("kea-dhcp6"); err != nil {
		t.Fatal("kea-dhcp6 is not installed (make deps installs it)")
	}
	dir := t.TempDir()
	pools := testPools
	pools.Interface = "lo" // Kea checks that the interface exists
	b, err := pools.KeaConfig(2, 128).JSON(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kea.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("kea-dhcp6", "-t", path).CombinedOutput()
	if err != nil {
		t.Fatalf("kea-dhcp6 -t: %v\n%s\n%s", err, out, b)
	}
}

func TestKeaConfigMatchesPools(t *testing.T) {
	b, err := testPools.KeaConfig(4, 0).JSON("/state")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Dhcp6 struct {
			Preferred, Valid, Renew, Rebind int
			MT                              map[string]any `json:"multi-threading"`
			DB                              map[string]any `json:"lease-database"`
			Subnets                         []struct {
				Subnet string `json:"subnet"`
				Pools  []struct {
					Pool string `json:"pool"`
				} `json:"pools"`
				PD []struct {
					Prefix    string `json:"prefix"`
					Len       int    `json:"prefix-len"`
					Delegated int    `json:"delegated-len"`
				} `json:"pd-pools"`
			} `json:"subnet6"`
		}
	}
	// encoding/json matches field names case-insensitively, not dashes.
	s := strings.NewReplacer(`"preferred-lifetime"`, `"preferred"`, `"valid-lifetime"`, `"valid"`,
		`"renew-timer"`, `"renew"`, `"rebind-timer"`, `"rebind"`).Replace(string(b))
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		t.Fatal(err)
	}
	d := c.Dhcp6
	if d.Preferred != 3600 || d.Valid != 3600 || d.Renew != 1800 || d.Rebind != 2880 {
		t.Errorf("lifetimes %d/%d, timers %d/%d", d.Preferred, d.Valid, d.Renew, d.Rebind)
	}
	if d.MT["enable-multi-threading"] != true || d.MT["thread-pool-size"] != 4.0 || d.MT["packet-queue-size"] != nil {
		t.Errorf("multi-threading %v", d.MT)
	}
	if d.DB["type"] != "memfile" || d.DB["persist"] != true || d.DB["name"] != "/state/leases6.csv" {
		t.Errorf("lease database %v", d.DB)
	}
	if len(d.Subnets) != 1 || d.Subnets[0].Subnet != "2001:db8:1::/64" || d.Subnets[0].Pools[0].Pool != "2001:db8:1::/64" {
		t.Fatalf("subnets %+v", d.Subnets)
	}
	if pd := d.Subnets[0].PD; len(pd) != 1 || pd[0].Prefix != "2001:db8:8000::" || pd[0].Len != 40 || pd[0].Delegated != 56 {
		t.Errorf("pd-pools %+v", pd)
	}
}

func TestHook6ConfigMatchesPools(t *testing.T) {
	c := testPools.Hook6Config()
	p := c.Policies["default"]
	if p.PreferredLifetime != "3600s" || p.ValidLifetime != "3600s" || p.T1 != "" || p.T2 != "" {
		t.Errorf("policy %+v", p)
	}
	if len(c.Prefixes) != 2 || c.Prefixes[0].Address != "2001:db8:1::/64" || c.Prefixes[1].Address != "2001:db8:8000::/40" ||
		c.Prefixes[1].PrefixLength != 56 || c.Prefixes[1].DHCPType != "prefix-delegation" {
		t.Errorf("prefixes %+v", c.Prefixes)
	}
	if c.Log == nil || c.Log.Level != "warn" {
		t.Errorf("log %+v: want warn, so logging costs nothing per packet", c.Log)
	}
}
