package lab

import (
	"fmt"
	"os"
	"strings"
)

// Dhcp6c drives WIDE-DHCPv6's dhcp6c (Debian's wide-dhcpv6-client). It
// configures what it gets on the interfaces itself: the address on the
// client interface, and an address from the delegated prefix on the
// prefix interface, so tests read the result from the interfaces. Its
// DUID file lives in a private directory bind mounted in its own mount
// namespace.
type Dhcp6c struct {
	ConfigPath string
	name       string
	ns         *Netns
	iface      string
	duidDir    string
	proc       *Process
	runs       int
}

// Dhcp6cOptions choose the IAs dhcp6c asks for.
type Dhcp6cOptions struct {
	NA bool
	// PrefixInterface, when set, asks for a delegated prefix (IA_PD) and
	// numbers this interface from it, with a /64 (sla-id 1) inside.
	PrefixInterface string
	// SLALen is the prefix interface's sla-len: 64 minus the delegated
	// prefix length (8 for a /56).
	SLALen int
}

// Dhcp6c writes a dhcp6c config for iface in ns; nothing runs yet.
func (l *Lab) Dhcp6c(ns *Netns, iface string, o Dhcp6cOptions) *Dhcp6c {
	l.t.Helper()
	name := l.unique("dhcp6c")
	d := &Dhcp6c{name: name, ns: ns, iface: iface, duidDir: l.MkdirTemp(name + "-duid-")}
	var c strings.Builder
	fmt.Fprintf(&c, "interface %s {\n", iface)
	if o.NA {
		c.WriteString("  send ia-na 1;\n")
	}
	if o.PrefixInterface != "" {
		c.WriteString("  send ia-pd 2;\n")
	}
	c.WriteString("  request domain-name-servers;\n};\n")
	if o.NA {
		c.WriteString("id-assoc na 1 { };\n")
	}
	if o.PrefixInterface != "" {
		fmt.Fprintf(&c, "id-assoc pd 2 {\n  prefix-interface %s { sla-id 1; sla-len %d; };\n};\n", o.PrefixInterface, o.SLALen)
	}
	d.ConfigPath = l.WriteFile(name+".conf", []byte(c.String()), 0o644)
	return d
}

// Start runs dhcp6c in the foreground (-f) with debug output (-D). On
// SIGTERM it releases what it holds.
func (d *Dhcp6c) Start() *Process {
	t := d.ns.lab.t
	t.Helper()
	if err := os.MkdirAll("/var/lib/dhcpv6", 0o755); err != nil {
		t.Fatalf("lab: %v", err)
	}
	script := fmt.Sprintf("mount --bind %q /var/lib/dhcpv6 && exec dhcp6c -c %q -p %q -f -D %q",
		d.duidDir, d.ConfigPath, d.ns.lab.Path(d.name+".pid"), d.iface)
	d.runs++
	d.proc = d.ns.Start(fmt.Sprintf("%s#%d", d.name, d.runs), "sh", "-c", script)
	return d.proc
}

// Process is the dhcp6c started last.
func (d *Dhcp6c) Process() *Process { return d.proc }
