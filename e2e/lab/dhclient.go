package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Dhclient drives ISC dhclient -6 on one interface of a namespace, with a
// private lease file, pid file and a hook script that records each event.
type Dhclient struct {
	LeaseFile string
	PidFile   string
	name      string
	ns        *Netns
	iface     string
	rec       recorder
	proc      *Process
	runs      int
}

// DhclientMode selects what dhclient asks for.
type DhclientMode struct {
	NA bool // -N: an address (IA_NA)
	PD bool // -P: a delegated prefix (IA_PD)
	// Stateless (-S) asks only for configuration (Information-request).
	Stateless bool
}

func (m DhclientMode) flags() []string {
	var f []string
	if m.NA {
		f = append(f, "-N")
	}
	if m.PD {
		f = append(f, "-P")
	}
	if m.Stateless {
		f = append(f, "-S")
	}
	return f
}

// Dhclient prepares a dhclient for iface in ns; nothing runs yet.
func (l *Lab) Dhclient(ns *Netns, iface string) *Dhclient {
	name := l.unique("dhclient")
	return &Dhclient{
		name:      name,
		LeaseFile: l.Path(name + ".leases"),
		PidFile:   l.Path(name + ".pid"),
		ns:        ns,
		iface:     iface,
		rec:       newRecorder(l, name),
	}
}

func (d *Dhclient) args(mode DhclientMode, extra ...string) []string {
	a := append([]string{"-6"}, mode.flags()...)
	a = append(a, extra...)
	return append(a, "-d", "-v", "-lf", d.LeaseFile, "-pf", d.PidFile, "-sf", d.rec.script, d.iface)
}

// Start runs dhclient in the foreground (-d) as a lab process; it keeps
// running, renewing and rebinding, until stopped.
func (d *Dhclient) Start(mode DhclientMode) *Process {
	d.ns.lab.t.Helper()
	d.runs++
	d.proc = d.ns.Start(fmt.Sprintf("%s#%d", d.name, d.runs), "dhclient", d.args(mode)...)
	return d.proc
}

// Process is the dhclient started last.
func (d *Dhclient) Process() *Process { return d.proc }

// Events returns the hook script calls recorded so far.
func (d *Dhclient) Events() []Event { return d.rec.events() }

// WaitEvent waits for an event with the given reason (any when empty) at
// index >= from in Events, where match (if not nil) also accepts it; it returns the event
// and its index.
func (d *Dhclient) WaitEvent(ctx context.Context, from int, reason string, match func(Event) bool) (Event, int, error) {
	return d.rec.wait(ctx, from, func(e Event) bool {
		return (reason == "" || e.Reason == reason) && (match == nil || match(e))
	})
}

// WaitAddress waits for an event with reason carrying an address
// (new_ip6_address) and returns it.
func (d *Dhclient) WaitAddress(ctx context.Context, from int, reason string) (netip.Addr, int, error) {
	e, i, err := d.WaitEvent(ctx, from, reason, func(e Event) bool { return e.Vars["new_ip6_address"] != "" })
	if err != nil {
		return netip.Addr{}, 0, err
	}
	a, err := netip.ParseAddr(e.Vars["new_ip6_address"])
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("dhclient event address: %w", err)
	}
	return a, i, nil
}

// WaitPrefix waits for an event with reason carrying a delegated prefix
// (new_ip6_prefix) and returns it.
func (d *Dhclient) WaitPrefix(ctx context.Context, from int, reason string) (netip.Prefix, int, error) {
	e, i, err := d.WaitEvent(ctx, from, reason, func(e Event) bool { return e.Vars["new_ip6_prefix"] != "" })
	if err != nil {
		return netip.Prefix{}, 0, err
	}
	p, err := netip.ParsePrefix(e.Vars["new_ip6_prefix"])
	if err != nil {
		return netip.Prefix{}, 0, fmt.Errorf("dhclient event prefix: %w", err)
	}
	return p, i, nil
}

// Release stops the running dhclient and runs `dhclient -6 -r` with the
// same lease file, which sends a Release for the leases and exits.
func (d *Dhclient) Release(ctx context.Context, mode DhclientMode) (string, error) {
	if d.proc != nil {
		if err := d.proc.Stop(); err != nil {
			return "", err
		}
	}
	a := append([]string{"-6", "-r"}, mode.flags()...)
	a = append(a, "-v", "-lf", d.LeaseFile, "-pf", d.PidFile, "-sf", d.rec.script, d.iface)
	out, err := d.ns.Run(ctx, "dhclient", a...)
	if err != nil {
		return out, fmt.Errorf("dhclient -r: %w: %s", err, out)
	}
	return out, nil
}

// RewriteLeaseAddresses replaces every address the lease file records
// with to, so a restarted dhclient Confirms an address of the lab's
// choosing.
func (d *Dhclient) RewriteLeaseAddresses(from, to netip.Addr) error {
	b, err := os.ReadFile(d.LeaseFile)
	if err != nil {
		return fmt.Errorf("read dhclient lease file: %w", err)
	}
	s := strings.ReplaceAll(string(b), "iaaddr "+from.String()+" ", "iaaddr "+to.String()+" ")
	if s == string(b) {
		return fmt.Errorf("dhclient lease file holds no iaaddr %s", from)
	}
	if err := os.WriteFile(d.LeaseFile, []byte(s), 0o644); err != nil {
		return fmt.Errorf("write dhclient lease file: %w", err)
	}
	return nil
}
