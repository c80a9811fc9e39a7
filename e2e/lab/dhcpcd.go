package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Dhcpcd drives dhcpcd (Debian's dhcpcd-base) in DHCPv6-only mode on one
// interface. It runs with private run and database directories (bind
// mounted inside the namespace's own mount namespace), so several dhcpcd
// instances never share pid files, leases or DUIDs.
type Dhcpcd struct {
	ConfigPath string
	name       string
	ns         *Netns
	iface      string
	runDir     string
	dbDir      string
	rec        recorder
	proc       *Process
	runs       int
}

// DhcpcdOptions choose the IAs dhcpcd asks for.
type DhcpcdOptions struct {
	NA bool // ia_na 1
	PD bool // ia_pd 2, not assigned to any interface
	// Release makes dhcpcd send a Release when it is stopped.
	Release bool
}

// Dhcpcd writes a dhcpcd config for iface in ns; nothing runs yet.
func (l *Lab) Dhcpcd(ns *Netns, iface string, o DhcpcdOptions) *Dhcpcd {
	l.t.Helper()
	name := l.unique("dhcpcd")
	d := &Dhcpcd{name: name, ns: ns, iface: iface, rec: newRecorder(l, name)}
	d.runDir = l.MkdirTemp(name + "-run-")
	d.dbDir = l.MkdirTemp(name + "-db-")
	var c strings.Builder
	c.WriteString("duid\nnoipv6rs\nipv6only\n")
	c.WriteString("nohook resolv.conf, timesyncd, hostname, ntp.conf\n")
	fmt.Fprintf(&c, "script %s\n", d.rec.script)
	if o.Release {
		c.WriteString("release\n")
	}
	fmt.Fprintf(&c, "interface %s\n", iface)
	if o.NA {
		c.WriteString("  ia_na 1\n")
	}
	if o.PD {
		c.WriteString("  ia_pd 2 -\n")
	}
	d.ConfigPath = l.WriteFile(name+".conf", []byte(c.String()), 0o644)
	return d
}

// Start runs dhcpcd in the foreground as a lab process.
func (d *Dhcpcd) Start() *Process {
	t := d.ns.lab.t
	t.Helper()
	for _, dir := range []string{"/run/dhcpcd", "/var/lib/dhcpcd"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("lab: %v", err)
		}
	}
	// ip netns exec gives the command a mount namespace of its own whose
	// mounts do not propagate back, so these bind mounts stay private.
	script := fmt.Sprintf("mount --bind %q /run/dhcpcd && mount --bind %q /var/lib/dhcpcd && exec dhcpcd -f %q -6 -B -d %q",
		d.runDir, d.dbDir, d.ConfigPath, d.iface)
	d.runs++
	d.proc = d.ns.Start(fmt.Sprintf("%s#%d", d.name, d.runs), "sh", "-c", script)
	return d.proc
}

// Process is the dhcpcd started last.
func (d *Dhcpcd) Process() *Process { return d.proc }

// Events returns the hook script calls recorded so far.
func (d *Dhcpcd) Events() []Event { return d.rec.events() }

// WaitEvent waits for an event with the given reason (any when empty) at
// index >= from that match (if not nil) accepts.
func (d *Dhcpcd) WaitEvent(ctx context.Context, from int, reason string, match func(Event) bool) (Event, int, error) {
	return d.rec.wait(ctx, from, func(e Event) bool {
		return (reason == "" || e.Reason == reason) && (match == nil || match(e))
	})
}

// DhcpcdAddress returns the first IA_NA address of an event (new_ or old_).
func (e Event) DhcpcdAddress(prefix string) (netip.Addr, bool) {
	return e.Addr(prefix + "_dhcp6_ia_na1_ia_addr1")
}

// DhcpcdPrefix returns the first delegated prefix of an event.
func (e Event) DhcpcdPrefix(prefix string) (netip.Prefix, bool) {
	a, err := netip.ParseAddr(e.Vars[prefix+"_dhcp6_ia_pd1_prefix1"])
	if err != nil {
		return netip.Prefix{}, false
	}
	p, err := a.Prefix(atoi(e.Vars[prefix+"_dhcp6_ia_pd1_prefix1_length"]))
	if err != nil {
		return netip.Prefix{}, false
	}
	return p, true
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
