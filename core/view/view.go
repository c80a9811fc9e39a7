// Package view turns a decoded DHCPv6 message (github.com/insomniacslk/dhcp)
// into the request view extensions see (hooks.Request), and fills the
// server-provided keys of the environment dictionary. The server and the
// offline `hook6ctl script run` use the same conversion.
package view

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/hook6/hook6/hooks"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// FromMessage builds the request view of a client message, or of a
// Relay-forw chain (relays outermost first, then the client's message).
func FromMessage(d dhcpv6.DHCPv6) (*hooks.Request, error) {
	req := &hooks.Request{}
	for depth := 0; ; depth++ {
		switch m := d.(type) {
		case *dhcpv6.RelayMessage:
			if depth > 32 {
				return nil, fmt.Errorf("too many relay layers")
			}
			req.Relays = append(req.Relays, relayView(m))
			inner := m.Options.RelayMessage()
			if inner == nil {
				return nil, fmt.Errorf("relay message without a Relay Message option")
			}
			d = inner
		case *dhcpv6.Message:
			fillMessage(req, m)
			return req, nil
		default:
			return nil, fmt.Errorf("unexpected message %T", d)
		}
	}
}

func relayView(m *dhcpv6.RelayMessage) hooks.Relay {
	r := hooks.Relay{HopCount: m.HopCount, InterfaceID: m.Options.InterfaceID()}
	r.LinkAddress, _ = addrOf(m.LinkAddr)
	r.PeerAddress, _ = addrOf(m.PeerAddr)
	if rid := m.Options.RemoteID(); rid != nil {
		r.RemoteID = rid.RemoteID
	}
	_, r.ClientLinkLayer = m.Options.ClientLinkLayerAddress()
	for _, o := range m.Options.Options {
		if o.Code() != dhcpv6.OptionRelayMsg {
			r.Options = append(r.Options, hooks.Option{Code: uint16(o.Code()), Data: o.ToBytes()})
		}
	}
	return r
}

func fillMessage(req *hooks.Request, m *dhcpv6.Message) {
	req.MessageType = m.MessageType.String()
	req.TransactionID = uint32(m.TransactionID[0])<<16 | uint32(m.TransactionID[1])<<8 | uint32(m.TransactionID[2])
	for _, o := range m.Options.Options {
		req.Options = append(req.Options, hooks.Option{Code: uint16(o.Code()), Data: o.ToBytes()})
		switch ia := o.(type) {
		case *dhcpv6.OptIANA:
			v := hooks.IA{Type: hooks.IANA, IAID: binary.BigEndian.Uint32(ia.IaId[:])}
			for _, a := range ia.Options.Addresses() {
				if ad, ok := addrOf(a.IPv6Addr); ok {
					v.Hints = append(v.Hints, netip.PrefixFrom(ad, 128))
				}
			}
			req.IAs = append(req.IAs, v)
		case *dhcpv6.OptIAPD:
			v := hooks.IA{Type: hooks.IAPD, IAID: binary.BigEndian.Uint32(ia.IaId[:])}
			for _, p := range ia.Options.Prefixes() {
				if p.Prefix == nil {
					continue
				}
				ones, _ := p.Prefix.Mask.Size()
				if ad, ok := addrOf(p.Prefix.IP); ok {
					v.Hints = append(v.Hints, netip.PrefixFrom(ad, ones))
				}
			}
			req.IAs = append(req.IAs, v)
		}
	}
	if d, ok := req.Option(uint16(dhcpv6.OptionClientID)); ok {
		req.ClientDUID = d
	}
}

func addrOf(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

// ServerEnv sets the server-provided, read-only keys of env from req.
func ServerEnv(env *hooks.Env, req *hooks.Request) {
	env.SetServer(hooks.KeyMessageType, req.MessageType)
	env.SetServer(hooks.KeyClientDUID, hex.EncodeToString(req.ClientDUID))
	env.SetServer(hooks.KeyInterface, req.Interface)
	if req.Source.IsValid() {
		env.SetServer(hooks.KeySource, req.Source.Addr().String())
	}
	env.SetServer(hooks.KeyRelayed, strconv.FormatBool(len(req.Relays) > 0))
	env.SetServer(hooks.KeyRequestIAIDs, strconv.Itoa(len(req.IAs)))
	if d, ok := req.Option(uint16(dhcpv6.OptionVendorClass)); ok {
		env.SetServer(hooks.KeyVendorClass, firstString(d[min(4, len(d)):]))
	}
	if d, ok := req.Option(uint16(dhcpv6.OptionUserClass)); ok {
		env.SetServer(hooks.KeyUserClass, firstString(d))
	}
	if n := len(req.Relays); n > 0 {
		r := req.Relays[n-1]
		env.SetServer(hooks.KeyLinkAddress, r.LinkAddress.String())
		env.SetServer(hooks.KeyPeerAddress, r.PeerAddress.String())
		if len(r.InterfaceID) > 0 {
			env.SetServer(hooks.KeyInterfaceID, hex.EncodeToString(r.InterfaceID))
		}
		if len(r.RemoteID) > 0 {
			env.SetServer(hooks.KeyRemoteID, hex.EncodeToString(r.RemoteID))
		}
		if len(r.ClientLinkLayer) > 0 {
			env.SetServer(hooks.KeyClientMAC, net.HardwareAddr(r.ClientLinkLayer).String())
		}
	}
	if req.Link != "" {
		env.SetServer(hooks.KeyLink, req.Link)
	}
}

// firstString decodes the first length-prefixed string of a user-class or
// vendor-class data field.
func firstString(d []byte) string {
	if len(d) < 2 {
		return ""
	}
	n := int(binary.BigEndian.Uint16(d))
	if 2+n > len(d) {
		return ""
	}
	return string(d[2 : 2+n])
}
