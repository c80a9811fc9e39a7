package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace of a lab.
type Netns struct {
	Name string
	lab  *Lab
}

// Command returns a command that runs name inside the namespace.
func (n *Netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its combined output.
func (n *Netns) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := n.Command(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// ip runs `ip -n NS args...` and fails the test on error.
func (n *Netns) ip(ctx context.Context, args ...string) string {
	n.lab.t.Helper()
	out, err := run(ctx, "ip", append([]string{"-n", n.Name}, args...)...)
	if err != nil {
		n.lab.t.Fatalf("lab: ip -n %s %s: %v: %s", n.Name, strings.Join(args, " "), err, out)
	}
	return out
}

// AddAddr adds an address (with its prefix length) to iface, without
// duplicate address detection so it is usable at once.
func (n *Netns) AddAddr(iface string, p netip.Prefix) {
	n.lab.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.ip(ctx, "-6", "addr", "add", p.String(), "dev", iface, "nodad")
}

// AddRoute adds an IPv6 route to dst via gw on iface.
func (n *Netns) AddRoute(dst netip.Prefix, gw netip.Addr, iface string) {
	n.lab.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.ip(ctx, "-6", "route", "add", dst.String(), "via", gw.String(), "dev", iface)
}

// ifaddr is one entry of `ip -j addr show`.
type ifaddr struct {
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
		Tentative bool   `json:"tentative"`
		DADFailed bool   `json:"dadfailed"`
	} `json:"addr_info"`
}

// addrs returns the usable (not tentative) IPv6 addresses of iface with
// the given scope ("link" or "global").
func (n *Netns) addrs(ctx context.Context, iface, scope string) ([]netip.Prefix, error) {
	out, err := run(ctx, "ip", "-n", n.Name, "-j", "-6", "addr", "show", "dev", iface)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s in %s: %w: %s", iface, n.Name, err, out)
	}
	var ifs []ifaddr
	if err := json.Unmarshal([]byte(out), &ifs); err != nil {
		return nil, fmt.Errorf("parse addresses of %s: %w", iface, err)
	}
	var ps []netip.Prefix
	for _, i := range ifs {
		for _, a := range i.AddrInfo {
			if a.Family != "inet6" || a.Scope != scope || a.Tentative || a.DADFailed {
				continue
			}
			if addr, err := netip.ParseAddr(a.Local); err == nil {
				ps = append(ps, netip.PrefixFrom(addr, a.PrefixLen))
			}
		}
	}
	return ps, nil
}

// GlobalAddrs returns the global IPv6 addresses of iface, with their
// prefix lengths.
func (n *Netns) GlobalAddrs(ctx context.Context, iface string) ([]netip.Prefix, error) {
	return n.addrs(ctx, iface, "global")
}

// WaitGlobalAddr waits until iface has a global address that ok accepts.
func (n *Netns) WaitGlobalAddr(ctx context.Context, iface string, ok func(netip.Prefix) bool) (netip.Prefix, error) {
	for {
		ps, err := n.GlobalAddrs(ctx, iface)
		if err == nil {
			for _, p := range ps {
				if ok(p) {
					return p, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return netip.Prefix{}, fmt.Errorf("wait for an address on %s in %s (have %v): %w", iface, n.Name, ps, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// LinkLocal waits until iface has a link-local address that has left the
// tentative state and returns it.
func (n *Netns) LinkLocal(ctx context.Context, iface string) (netip.Addr, error) {
	for {
		if ps, err := n.addrs(ctx, iface, "link"); err == nil && len(ps) > 0 {
			return ps[0].Addr().WithZone(iface), nil
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, fmt.Errorf("wait for a link-local address on %s in %s: %w", iface, n.Name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// MustLinkLocal is LinkLocal with a 10s limit that fails the test on error.
func (n *Netns) MustLinkLocal(iface string) netip.Addr {
	n.lab.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := n.LinkLocal(ctx, iface)
	if err != nil {
		n.lab.t.Fatalf("lab: %v", err)
	}
	return a
}

// Do runs fn on an OS thread that has entered the namespace, so sockets fn
// opens belong to the namespace (and stay there once fn returns).
func (n *Netns) Do(fn func() error) error {
	target, err := os.Open("/run/netns/" + n.Name)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", n.Name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own namespace: %w", err)
			return
		}
		defer self.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", n.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked and is thrown away with this goroutine.
			errc <- fmt.Errorf("leave namespace %s: %w", n.Name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Interface returns the interface named name inside the namespace.
func (n *Netns) Interface(name string) (*net.Interface, error) {
	var ifi *net.Interface
	err := n.Do(func() error {
		var err error
		ifi, err = net.InterfaceByName(name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("interface %s in %s: %w", name, n.Name, err)
	}
	return ifi, nil
}

// ListenUDP opens a UDP socket inside the namespace.
func (n *Netns) ListenUDP(laddr *net.UDPAddr) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := n.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp6", laddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen udp %v in %s: %w", laddr, n.Name, err)
	}
	return c, nil
}

// pids returns the processes running in the namespace.
func (n *Netns) pids() []int {
	out, err := run(context.Background(), "ip", "netns", "pids", n.Name)
	if err != nil {
		return nil
	}
	var ps []int
	for _, f := range strings.Fields(out) {
		if p, err := strconv.Atoi(f); err == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// destroy kills what is left in the namespace and deletes it.
func (n *Netns) destroy() {
	for _, p := range n.pids() {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(n.pids()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := run(context.Background(), "ip", "netns", "del", n.Name); err != nil {
		n.lab.t.Errorf("lab: delete namespace %s: %v: %s", n.Name, err, out)
	}
}

// UDP6RcvbufErrors counts the UDP datagrams the namespace dropped because
// a socket's receive buffer was full (Udp6RcvbufErrors of
// /proc/net/snmp6): a reader too slow for what it was sent.
func (n *Netns) UDP6RcvbufErrors(ctx context.Context) (int, error) {
	out, err := n.Run(ctx, "cat", "/proc/net/snmp6")
	if err != nil {
		return 0, fmt.Errorf("reading /proc/net/snmp6 in %s: %v: %s", n.Name, err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "Udp6RcvbufErrors" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no Udp6RcvbufErrors in /proc/net/snmp6 of %s", n.Name)
}
