package lab

import (
	"context"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// Two namespaces joined by a veth: addresses are usable at once, sockets
// opened through Do live in their namespace, and a Client6 multicast to
// ff02::1:2 reaches a listener on the other side.
func TestNamespacesLinkAndSockets(t *testing.T) {
	l := New(t)
	a, b := l.Namespace("a"), l.Namespace("b")
	l.Link(a, "va", b, "vb")
	a.AddAddr("va", netip.MustParsePrefix("2001:db8:7::1/64"))
	b.AddAddr("vb", netip.MustParsePrefix("2001:db8:7::2/64"))
	lla := a.MustLinkLocal("va")
	if !lla.IsLinkLocalUnicast() || lla.Zone() != "va" {
		t.Fatalf("link-local %v", lla)
	}
	b.MustLinkLocal("vb")

	ifa, err := a.Interface("va")
	if err != nil {
		t.Fatal(err)
	}
	var mc *net.UDPConn
	err = a.Do(func() error {
		var err error
		mc, err = net.ListenMulticastUDP("udp6", ifa, &net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers, Port: dhcpv6.DefaultServerPort})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	c := b.Client6("vb")
	if err := c.SendRaw([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = mc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := mc.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "hello" || from.Port != dhcpv6.DefaultClientPort || !from.IP.IsLinkLocalUnicast() {
		t.Fatalf("got %q from %v", buf[:n], from)
	}

	// Unicast between the global addresses, and nothing of it in the root
	// namespace: the socket stays where it was opened.
	srv, err := a.ListenUDP(&net.UDPAddr{IP: net.ParseIP("2001:db8:7::1"), Port: 7000})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cl, err := b.ListenUDP(&net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.WriteToUDP([]byte("ping"), &net.UDPAddr{IP: net.ParseIP("2001:db8:7::1"), Port: 7000}); err != nil {
		t.Fatal(err)
	}
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err = srv.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "ping" || from.IP.String() != "2001:db8:7::2" {
		t.Fatalf("unicast: %q from %v: %v", buf[:n], from, err)
	}
}

// Namespaces and the processes in them are gone after the test.
func TestCleanupRemovesNamespacesAndProcesses(t *testing.T) {
	var name string
	var pid int
	t.Run("lab", func(t *testing.T) {
		l := New(t)
		n := l.Namespace("x")
		name = n.Name
		p := n.Start("sleeper", "sh", "-c", "echo ready; exec sleep 600")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.WaitOutput(ctx, regexp.MustCompile(`ready`)); err != nil {
			t.Fatal(err)
		}
		pid = p.Pid()
	})
	out, err := run(context.Background(), "ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, name) {
		t.Errorf("namespace %s still listed: %s", name, out)
	}
	if _, err := run(context.Background(), "kill", "-0", strconv.Itoa(pid)); err == nil {
		t.Errorf("process %d still alive", pid)
	}
}

// A process's output is kept for the test and its exit is seen.
func TestProcessOutputAndStop(t *testing.T) {
	l := New(t)
	n := l.Namespace("p")
	p := n.Start("looper", "sh", "-c", "trap 'echo bye; exit 0' TERM; echo one; echo two; while :; do sleep 0.1; done")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitOutput(ctx, regexp.MustCompile(`one\ntwo`)); err != nil {
		t.Fatal(err)
	}
	if p.Exited() {
		t.Fatal("exited early")
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() || !strings.Contains(p.Output(), "bye") {
		t.Fatalf("after Stop: exited %v, output %q", p.Exited(), p.Output())
	}
}
