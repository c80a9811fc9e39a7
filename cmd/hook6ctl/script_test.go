package main

import (
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// solicitHex is a relayed Solicit with an IA_NA, an IA_PD and a vendor
// class, in hex as `script run --packet` takes it.
func solicitHex(t *testing.T, mac net.HardwareAddr, vendorClass string) string {
	t.Helper()
	m, err := dhcpv6.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = dhcpv6.MessageTypeSolicit
	m.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mac}))
	m.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}})
	m.AddOption(&dhcpv6.OptIAPD{IaId: [4]byte{0, 0, 0, 2}})
	m.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 4491, Data: [][]byte{[]byte(vendorClass)}})
	r, err := dhcpv6.EncapsulateRelay(m, dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:1::1"), net.ParseIP("fe80::9"))
	if err != nil {
		t.Fatal(err)
	}
	r.AddOption(dhcpv6.OptInterfaceID([]byte("port7")))
	return hex.EncodeToString(r.ToBytes())
}

func example(name string) string { return filepath.Join("..", "..", "examples", "scripts", name) }

func TestScriptCheck(t *testing.T) {
	code, out, errb := runCLI(t, "", "script", "check", example("duid-table.go"))
	if code != 0 || !strings.Contains(out, "points: generate-lease, pre-packet-encode") {
		t.Fatalf("exit %d\n%s%s", code, out, errb)
	}
	bad := filepath.Join(t.TempDir(), "bad.go")
	os.WriteFile(bad, []byte("package main\n\nimport \"github.com/hook6/hook6/hooks\"\n\nfunc GenerateLease(c *hooks.Context) error {\n\treturn missing\n}\n"), 0o644)
	code, _, errb = runCLI(t, "", "script", "check", bad)
	if code != 1 || !strings.Contains(errb, bad+":6:") || !strings.Contains(errb, "undefined") {
		t.Fatalf("broken script: exit %d, stderr %s", code, errb)
	}
	code, out, _ = runCLI(t, "", "-o", "json", "script", "check", example("env-handoff.go"))
	var v struct{ Points []string }
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || strings.Join(v.Points, ",") != "post-packet-decode,pre-packet-encode" {
		t.Fatalf("json: exit %d, %s", code, out)
	}
	if code, _, _ := runCLI(t, "", "script", "check"); code != 2 {
		t.Errorf("check without a file: exit %d", code)
	}
}

func TestScriptRun(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 0x0a}
	pkt := solicitHex(t, mac, "acme-cpe")
	code, out, errb := runCLI(t, "", "script", "run", example("duid-table.go"), "--packet", pkt, "--budget", "5s",
		"--init", "unknown=drop", "--init", "00:03:00:01:02:00:00:00:00:0a=2001:db8:1::100,2001:db8:8000:100::/56")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errb)
	}
	for _, want := range []string{"request: SOLICIT", "drop: no", "2001:db8:1::100/128", "2001:db8:8000:100::/56",
		"request.vendor-class  acme-cpe", "relay.interface-id    706f727437"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, errb = runCLI(t, "", "-o", "json", "script", "run", example("duid-table.go"), "--packet", pkt, "--budget", "5s", "--init", "unknown=drop")
	var rep runReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("exit %d\n%s%s", code, out, errb)
	}
	if !rep.Dropped || rep.DroppedAt != "pre-packet-encode" || len(rep.SkipLease) != 2 || rep.Env["duid-table.unknown"] != "true" {
		t.Errorf("unknown client: %+v", rep)
	}

	code, out, _ = runCLI(t, "", "-o", "json", "script", "run", example("preference.go"), "--packet", pkt, "--budget", "5s", "--init", "vendor-class=acme-cpe")
	rep = runReport{}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Preference == nil || *rep.Preference != 255 {
		t.Errorf("preference: exit %d %s", code, out)
	}

	code, out, _ = runCLI(t, "", "-o", "json", "script", "run", example("drop-vendor.go"), "--packet", pkt, "--budget", "5s", "--init", "vendor-class=acme-cpe")
	rep = runReport{}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.DroppedAt != "post-packet-decode" || len(rep.Calls) != 1 {
		t.Errorf("drop-vendor: exit %d %s", code, out)
	}

	code, out, _ = runCLI(t, "", "-o", "json", "script", "run", example("env-handoff.go"), "--packet", pkt, "--budget", "5s")
	rep = runReport{}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Env["example.tier"] != "standard" || len(rep.Added) != 0 {
		t.Errorf("env-handoff: exit %d %s", code, out)
	}
}

func TestScriptRunReportsFailures(t *testing.T) {
	p := filepath.Join(t.TempDir(), "boom.go")
	os.WriteFile(p, []byte("package main\n\nimport \"github.com/hook6/hook6/hooks\"\n\nfunc PostPacketDecode(c *hooks.Context) error {\n\tpanic(\"boom\")\n}\n\nfunc PrePacketEncode(c *hooks.Context) error {\n\tc.Response.AddOption(23, []byte{1})\n\treturn nil\n}\n"), 0o644)
	pkt := solicitHex(t, net.HardwareAddr{2, 0, 0, 0, 0, 1}, "x")
	code, out, errb := runCLI(t, "", "-o", "json", "script", "run", p, "--packet", pkt, "--budget", "5s")
	var rep runReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("exit %d\n%s%s", code, out, errb)
	}
	if len(rep.Calls) != 2 || rep.Calls[0].Status != "panic" || !strings.Contains(rep.Calls[0].Error, "boom") || len(rep.Added) != 1 {
		t.Errorf("continue: %+v", rep)
	}
	code, out, _ = runCLI(t, "", "-o", "json", "script", "run", p, "--packet", pkt, "--budget", "5s", "--failure-mode-drop")
	rep = runReport{}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.DroppedAt != "post-packet-decode" {
		t.Errorf("drop: exit %d %s", code, out)
	}
	if code, _, errb := runCLI(t, "", "script", "run", p, "--packet", "zz"); code != 2 || !strings.Contains(errb, "--packet") {
		t.Errorf("bad hex: exit %d %s", code, errb)
	}
	if code, _, _ := runCLI(t, "", "script", "run", p); code != 2 {
		t.Errorf("missing --packet: exit %d", code)
	}
}
