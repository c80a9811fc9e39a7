package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// Client6 sends hand-made DHCPv6 messages from a namespace: what real
// clients will not send (malformed packets, chosen Confirms) and exact
// checks of a server's answers.
type Client6 struct {
	conn  *net.UDPConn
	iface *net.Interface
	dst   *net.UDPAddr
}

// Client6 opens the DHCPv6 client port (546) on iface in the namespace;
// it is closed in the test's cleanup.
func (n *Netns) Client6(iface string) *Client6 {
	t := n.lab.t
	t.Helper()
	ifi, err := n.Interface(iface)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	conn, err := n.ListenUDP(&net.UDPAddr{IP: net.IPv6unspecified, Port: dhcpv6.DefaultClientPort})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	// A numeric zone: a name would be resolved in the caller's namespace.
	dst := &net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers, Port: dhcpv6.DefaultServerPort, Zone: strconv.Itoa(ifi.Index)}
	return &Client6{conn: conn, iface: ifi, dst: dst}
}

// HardwareAddr is the MAC address of the client's interface.
func (c *Client6) HardwareAddr() net.HardwareAddr { return c.iface.HardwareAddr }

// SendRaw sends b as one UDP datagram to ff02::1:2 port 547.
func (c *Client6) SendRaw(b []byte) error {
	if _, err := c.conn.WriteToUDP(b, c.dst); err != nil {
		return fmt.Errorf("send %d bytes to %v: %w", len(b), c.dst, err)
	}
	return nil
}

// Receive returns the next message whose transaction id is xid; other and
// undecodable datagrams are skipped.
func (c *Client6) Receive(ctx context.Context, xid dhcpv6.TransactionID) (*dhcpv6.Message, error) {
	buf := make([]byte, 65536)
	for {
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(5 * time.Second)
		}
		if err := c.conn.SetReadDeadline(deadline); err != nil {
			return nil, fmt.Errorf("set read deadline: %w", err)
		}
		n, _, err := c.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, fmt.Errorf("no answer to transaction %v: %w", xid, context.DeadlineExceeded)
			}
			return nil, fmt.Errorf("receive: %w", err)
		}
		d, err := dhcpv6.FromBytes(buf[:n])
		if err != nil {
			continue
		}
		if m, ok := d.(*dhcpv6.Message); ok && m.TransactionID == xid {
			return m, nil
		}
	}
}

// Exchange sends m and waits for the answer with its transaction id,
// retransmitting every second until ctx ends.
func (c *Client6) Exchange(ctx context.Context, m *dhcpv6.Message) (*dhcpv6.Message, error) {
	for {
		if err := c.SendRaw(m.ToBytes()); err != nil {
			return nil, err
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		r, err := c.Receive(rctx, m.TransactionID)
		cancel()
		if err == nil {
			return r, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s exchange: %w", m.MessageType, err)
		}
	}
}

// Solicit sends a Solicit for one IA_NA (and one IA_PD when pd) and
// returns the Advertise.
func (c *Client6) Solicit(ctx context.Context, pd bool) (*dhcpv6.Message, error) {
	mods := []dhcpv6.Modifier{}
	if pd {
		mods = append(mods, dhcpv6.WithIAPD([4]byte{0, 0, 0, 2}))
	}
	sol, err := dhcpv6.NewSolicit(c.HardwareAddr(), mods...)
	if err != nil {
		return nil, fmt.Errorf("build solicit: %w", err)
	}
	return c.Exchange(ctx, sol)
}

// Close closes the client's socket (it is also closed in the cleanup).
func (c *Client6) Close() error { return c.conn.Close() }

// Collect returns every message that arrives within d.
func (c *Client6) Collect(d time.Duration) ([]*dhcpv6.Message, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		return nil, fmt.Errorf("set read deadline: %w", err)
	}
	var ms []*dhcpv6.Message
	buf := make([]byte, 65536)
	for {
		n, _, err := c.conn.ReadFromUDP(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return ms, nil
		}
		if err != nil {
			return ms, fmt.Errorf("receive: %w", err)
		}
		if m, err := dhcpv6.MessageFromBytes(buf[:n]); err == nil {
			ms = append(ms, m)
		}
	}
}

// SendRawTo sends b as one UDP datagram to addr port 547 (unicast).
func (c *Client6) SendRawTo(b []byte, addr netip.Addr) error {
	dst := &net.UDPAddr{IP: addr.AsSlice(), Port: dhcpv6.DefaultServerPort, Zone: c.dst.Zone}
	if _, err := c.conn.WriteToUDP(b, dst); err != nil {
		return fmt.Errorf("send %d bytes to %v: %w", len(b), dst, err)
	}
	return nil
}
