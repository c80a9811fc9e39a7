package lab

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// perfdhcpOutput is perfdhcp 2.2.0's summary as printed on the lab.
const perfdhcpOutput = `Running: perfdhcp -6 -l c0 -r 500 -R 100000 -p 5
Scenario: basic.
Multi-thread mode enabled.
***Rate statistics***
Rate: 499.71 4-way exchanges/second, expected rate: 500

***Malformed Packets***
Malformed packets: 0
***Statistics for: SOLICIT-ADVERTISE***
sent packets: 2499
received packets: 2490
drops: 9
drops ratio: 0.36 %
orphans: 0
rejected leases: 0
non unique addresses: 0

min delay: 0.091 ms
avg delay: 0.238 ms
max delay: 1.744 ms
std deviation: 0.128 ms
collected packets: 0

***Statistics for: REQUEST-REPLY***
sent packets: 2490
received packets: 2489
drops: 1
drops ratio: 0.040 %
orphans: 2
rejected leases: 3
non unique addresses: 4

min delay: 0.073 ms
avg delay: 0.248 ms
max delay: 2.106 ms
std deviation: 0.136 ms
collected packets: 0
`

func TestParsePerfdhcp(t *testing.T) {
	r, err := ParsePerfdhcp(perfdhcpOutput)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rate != 499.71 || r.Malformed != 0 || len(r.Exchanges) != 2 {
		t.Fatalf("rate %v malformed %d exchanges %d", r.Rate, r.Malformed, len(r.Exchanges))
	}
	sa := r.Exchanges["SOLICIT-ADVERTISE"]
	want := PerfExchange{Sent: 2499, Received: 2490, Drops: 9, DropsRatio: 0.36,
		MinDelay: 91 * time.Microsecond, AvgDelay: 238 * time.Microsecond, MaxDelay: 1744 * time.Microsecond, StdDev: 128 * time.Microsecond}
	if sa != want {
		t.Errorf("SOLICIT-ADVERTISE %+v, want %+v", sa, want)
	}
	rr := r.Exchanges["REQUEST-REPLY"]
	if rr.Sent != 2490 || rr.Received != 2489 || rr.Orphans != 2 || rr.RejectedLeases != 3 || rr.NonUnique != 4 || rr.DropsRatio != 0.04 {
		t.Errorf("REQUEST-REPLY %+v", rr)
	}
	if _, err := ParsePerfdhcp("ERROR: running perfdhcp: Failed to bind socket\n"); err == nil {
		t.Error("an error output parsed as statistics")
	}
}

func TestParseEvents(t *testing.T) {
	evs := ParseEvents("event\nreason=BOUND6\nnew_ip6_address=2001:db8:1::5\nend\nevent\nreason=RENEW6\nnew_ip6_prefix=2001:db8:8000:100::/56\nend\nevent\nreason=HALF")
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2 (a half-written one is not an event)", len(evs))
	}
	if a, ok := evs[0].Addr("new_ip6_address"); evs[0].Reason != "BOUND6" || !ok || a != netip.MustParseAddr("2001:db8:1::5") {
		t.Errorf("first event %+v", evs[0])
	}
	if evs[1].Reason != "RENEW6" || evs[1].Vars["new_ip6_prefix"] != "2001:db8:8000:100::/56" {
		t.Errorf("second event %+v", evs[1])
	}
	dc := Event{Vars: map[string]string{"new_dhcp6_ia_pd1_prefix1": "2001:db8:8000:100::", "new_dhcp6_ia_pd1_prefix1_length": "56", "new_dhcp6_ia_na1_ia_addr1": "2001:db8:1::9"}}
	if p, ok := dc.DhcpcdPrefix("new"); !ok || p != netip.MustParsePrefix("2001:db8:8000:100::/56") {
		t.Errorf("dhcpcd prefix %v %v", p, ok)
	}
	if a, ok := dc.DhcpcdAddress("new"); !ok || a != netip.MustParseAddr("2001:db8:1::9") {
		t.Errorf("dhcpcd address %v %v", a, ok)
	}
}

func TestParseLeases(t *testing.T) {
	ls, err := ParseLeases([]byte(`[
	 {"prefix": "2001:db8:1::10/128", "kind": "na", "duid": "00:03:00:01:aa", "iaid": 1, "state": "leased", "link": "lan", "prefix-name": "lan-addr"},
	 {"prefix": "2001:db8:8000:100::/56", "kind": "pd", "duid": "00:03:00:01:aa", "iaid": 3, "state": "released", "link": "lan"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 {
		t.Fatalf("%d leases", len(ls))
	}
	l := ls[0]
	if l.Prefix != netip.MustParsePrefix("2001:db8:1::10/128") || l.Kind != "na" || l.State != "leased" || l.DUID != "00:03:00:01:aa" || l.IAID != 1 || l.Link != "lan" {
		t.Errorf("first lease %+v", l)
	}
	if ls[1].Kind != "pd" || ls[1].State != "released" || ls[1].IAID != 3 {
		t.Errorf("second lease %+v", ls[1])
	}
	if ls, err := ParseLeases([]byte(`[]`)); err != nil || len(ls) != 0 {
		t.Errorf("empty list: %v %v", ls, err)
	}
	if _, err := ParseLeases([]byte(`[{"kind": "na"}]`)); err == nil {
		t.Error("a lease without prefix parsed")
	}
}

func TestParseStats(t *testing.T) {
	s, err := ParseStats([]byte(`{"packets": {"dropped": 3, "dropped-by": {"malformed": 2, "invalid": 1}, "received": 10}, "extensions": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s["packets.dropped-by.malformed"] != 2 || s["packets.received"] != 10 || s.Sum("dropped-by") != 3 {
		t.Errorf("stats %v", s)
	}
	if got := s.Keys(); len(got) != 4 || got[0] != "packets.dropped" {
		t.Errorf("keys %v", got)
	}
}

func TestConfigYAML(t *testing.T) {
	pref := 255
	y, err := Config{
		Server:   ServerConfig{Interfaces: []string{"eth1"}, StateDir: "/var/lib/hook6"},
		Control:  ControlConfig{Socket: "/run/hook6/control.sock"},
		Policies: map[string]Policy{"default": {PreferredLifetime: "1h", Options: &PolicyOptions{Preference: &pref}}},
		Prefixes: []Prefix{{Name: "lan-pd", Address: "2001:db8:8000::/40", DHCPType: "prefix-delegation", PrefixLength: 56}},
	}.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"state-dir: /var/lib/hook6", "preferred-lifetime: 1h", "preference: 255", "prefix-length: 56", "dhcp-type: prefix-delegation"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("YAML lacks %q:\n%s", want, y)
		}
	}
	for _, absent := range []string{"links:", "range:", "failover:", "t1:"} {
		if strings.Contains(string(y), absent) {
			t.Errorf("YAML has the empty %q:\n%s", absent, y)
		}
	}
}
