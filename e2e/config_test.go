package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hook6/hook6/e2e/lab"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// issueConfig is the configuration of issue #2, which must load as
// written (interface name and paths aside).
const issueConfig = `server: {interfaces: [eth1], state-dir: /var/lib/hook6}
control: {socket: /run/hook6/control.sock}
policies:
  default:
    preferred-lifetime: 1h
    valid-lifetime: 2h
    allow-rapid-commit: true
    options: {preference: 255, dns-servers: [2001:db8::53]}
links:
  - {name: lan, interface: eth1}
prefixes:
  - {name: lan-addr, link: lan, address: 2001:db8:1::/64, range: 2001:db8:1::/65, dhcp-type: dhcp, policy: default}
  - {name: lan-pd, link: lan, address: 2001:db8:8000::/40, dhcp-type: prefix-delegation, prefix-length: 56, policy: default}
`

// hook6d -t accepts issue #2's configuration, and refuses one unknown key
// with the file, line and field.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := strings.NewReplacer("/var/lib/hook6", filepath.Join(dir, "state"), "/run/hook6/control.sock", filepath.Join(dir, "ctl.sock")).Replace(issueConfig)
	path := filepath.Join(dir, "hook6.yaml")
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := timeout(t, 30*time.Second)
	if out, err := exec.CommandContext(ctx, bins.Hook6d, "-t", "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("hook6d -t refused issue #2's configuration: %v\n%s", err, out)
	}

	bad := strings.Replace(good, "    allow-rapid-commit: true\n", "    allow-rapid-commit: true\n    prefered-lifetime: 1h\n", 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, bins.Hook6d, "-t", "-c", path).CombinedOutput()
	if err == nil {
		t.Fatalf("hook6d -t accepted an unknown key:\n%s", out)
	}
	if want := path + ":8:"; !strings.Contains(string(out), want) || !strings.Contains(string(out), "prefered-lifetime") {
		t.Errorf("error %q should name %s and the key prefered-lifetime", out, want)
	}
}

// hook6ctl reload and SIGHUP apply a new configuration without losing
// leases; a bad one is refused with its errors and the old one keeps
// serving.
func TestReload(t *testing.T) {
	x := newDirect(t, nil)
	ctx := timeout(t, 60*time.Second)
	dh := x.lab.Dhclient(x.cli, cliIf)
	dh.Start(lab.DhclientMode{NA: true})
	addr, _, err := dh.WaitAddress(ctx, 0, "BOUND6")
	if err != nil {
		t.Fatal(err)
	}
	if err := dh.Process().Stop(); err != nil {
		t.Fatal(err)
	}
	c := x.cli.Client6(cliIf)

	x.d.WriteConfig(withPreference(7))
	if _, err := x.d.Ctl().Run(ctx, "reload"); err != nil {
		t.Fatal(err)
	}
	if got := preference(t, ctx, c); got != 7 {
		t.Errorf("preference %d after reload, want the new 7", got)
	}
	if l := leaseOf(t, x.d, hostPrefix(addr)); l.State != "leased" {
		t.Errorf("lease of %v after reload: %q", addr, l.State)
	}

	y, err := withPreference(9).YAML()
	if err != nil {
		t.Fatal(err)
	}
	x.d.WriteConfigYAML(append(y, []byte("bogus-section: {}\n")...))
	out, err := x.d.Ctl().Run(ctx, "reload")
	if err == nil {
		t.Fatalf("reload accepted a configuration with an unknown section: %s", out)
	}
	if !strings.Contains(err.Error(), "bogus-section") || !strings.Contains(err.Error(), x.d.ConfigPath+":") {
		t.Errorf("reload error %q should name the file, line and key", err)
	}
	if got := preference(t, ctx, c); got != 7 {
		t.Errorf("preference %d after a refused reload, want the old 7", got)
	}

	x.d.WriteConfig(withPreference(9))
	if err := x.d.Process().Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := x.d.WaitLog(ctx, regexp.MustCompile(`(?i)reload`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for preference(t, ctx, c) != 9 {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not apply the new preference 9")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if l := leaseOf(t, x.d, hostPrefix(addr)); l.State != "leased" {
		t.Errorf("lease of %v after SIGHUP: %q", addr, l.State)
	}
	if x.d.Process().Exited() {
		t.Fatalf("hook6d exited: %v", x.d.Process().Err())
	}
}

func withPreference(p int) lab.Config {
	cfg := baseConfig()
	pol := cfg.Policies["default"]
	opts := *pol.Options
	opts.Preference = &p
	pol.Options = &opts
	cfg.Policies["default"] = pol
	return cfg
}

// preference solicits and returns the Advertise's preference.
func preference(t *testing.T, ctx context.Context, c *lab.Client6) uint8 {
	t.Helper()
	adv, err := c.Solicit(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if adv.GetOneOption(dhcpv6.OptionPreference) == nil {
		t.Fatalf("Advertise without a Preference option: %s", adv.Summary())
	}
	return adv.Options.Preference()
}
