// Package view turns a decoded DHCPv6 message (insomniacslk/dhcp) into the
// hooks.Request extensions see, and fills the server-provided keys of the
// environment dictionary. The server and `hook6ctl script run` share it, so
// a script sees offline exactly what it will see when deployed.
package view

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"

	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/hook6/hook6/hooks"
)

// Option codes read from the raw options.
const (
	optUserClass   = 15
	optVendorClass = 16
)

// maxRelays bounds the relay chain (RFC 8415 HOP_COUNT_LIMIT is 8).
const maxRelays = 32

// messageTypeNames are RFC 8415's names (and those of the RFCs adding
// message types).
var messageTypeNames = map[dhcpv6.MessageType]string{
	dhcpv6.MessageTypeSolicit:            "SOLICIT",
	dhcpv6.MessageTypeAdvertise:          "ADVERTISE",
	dhcpv6.MessageTypeRequest:            "REQUEST",
	dhcpv6.MessageTypeConfirm:            "CONFIRM",
	dhcpv6.MessageTypeRenew:              "RENEW",
	dhcpv6.MessageTypeRebind:             "REBIND",
	dhcpv6.MessageTypeReply:              "REPLY",
	dhcpv6.MessageTypeRelease:            "RELEASE",
	dhcpv6.MessageTypeDecline:            "DECLINE",
	dhcpv6.MessageTypeReconfigure:        "RECONFIGURE",
	dhcpv6.MessageTypeInformationRequest: "INFORMATION-REQUEST",
	dhcpv6.MessageTypeRelayForward:       "RELAY-FORW",
	dhcpv6.MessageTypeRelayReply:         "RELAY-REPL",
	dhcpv6.MessageTypeLeaseQuery:         "LEASEQUERY",
	dhcpv6.MessageTypeLeaseQueryReply:    "LEASEQUERY-REPLY",
	dhcpv6.MessageTypeLeaseQueryDone:     "LEASEQUERY-DONE",
	dhcpv6.MessageTypeLeaseQueryData:     "LEASEQUERY-DATA",
	dhcpv6.MessageTypeDHCPv4Query:        "DHCPV4-QUERY",
	dhcpv6.MessageTypeDHCPv4Response:     "DHCPV4-RESPONSE",
}

// MessageTypeName gives the RFC name of a message type ("SOLICIT",
// "INFORMATION-REQUEST"), or "TYPE-n" for an unknown one.
func MessageTypeName(t dhcpv6.MessageType) string {
	if n, ok := messageTypeNames[t]; ok {
		return n
	}
	return "TYPE-" + strconv.Itoa(int(t))
}

// FromMessage builds the request view of msg: for a Relay-forw, the relay
// chain outermost first and the client message inside it. Source,
// Interface and Link are left for the server to fill.
func FromMessage(msg dhcpv6.DHCPv6) (*hooks.Request, error) {
	req := &hooks.Request{}
	for depth := 0; msg != nil && msg.IsRelay(); depth++ {
		rm, ok := msg.(*dhcpv6.RelayMessage)
		if !ok {
			return nil, fmt.Errorf("relay message of type %T", msg)
		}
		if depth >= maxRelays {
			return nil, fmt.Errorf("more than %d relay layers", maxRelays)
		}
		req.Relays = append(req.Relays, relayView(rm))
		msg = rm.Options.RelayMessage()
		if msg == nil {
			return nil, fmt.Errorf("relay layer %d (link-address %v) carries no relay message option", depth, rm.LinkAddr)
		}
	}
	m, ok := msg.(*dhcpv6.Message)
	if !ok {
		return nil, fmt.Errorf("no client message (got %T)", msg)
	}
	req.MessageType = MessageTypeName(m.MessageType)
	req.TransactionID = uint32(m.TransactionID[0])<<16 | uint32(m.TransactionID[1])<<8 | uint32(m.TransactionID[2])
	if duid := m.Options.ClientID(); duid != nil {
		req.ClientDUID = duid.ToBytes()
	}
	req.Options = make([]hooks.Option, 0, len(m.Options.Options))
	for _, o := range m.Options.Options {
		req.Options = append(req.Options, hooks.Option{Code: uint16(o.Code()), Data: o.ToBytes()})
		switch ia := o.(type) {
		case *dhcpv6.OptIANA:
			req.IAs = append(req.IAs, ianaView(ia))
		case *dhcpv6.OptIAPD:
			req.IAs = append(req.IAs, iapdView(ia))
		}
	}
	return req, nil
}

func ianaView(ia *dhcpv6.OptIANA) hooks.IA {
	v := hooks.IA{Type: hooks.IANA, IAID: binary.BigEndian.Uint32(ia.IaId[:])}
	for _, a := range ia.Options.Addresses() {
		if addr, ok := netip.AddrFromSlice(a.IPv6Addr); ok {
			v.Hints = append(v.Hints, netip.PrefixFrom(addr, 128))
		}
	}
	return v
}

func iapdView(ia *dhcpv6.OptIAPD) hooks.IA {
	v := hooks.IA{Type: hooks.IAPD, IAID: binary.BigEndian.Uint32(ia.IaId[:])}
	for _, p := range ia.Options.Prefixes() {
		if p.Prefix == nil {
			continue
		}
		addr, ok := netip.AddrFromSlice(p.Prefix.IP)
		if !ok {
			addr = netip.IPv6Unspecified()
		}
		bits, _ := p.Prefix.Mask.Size()
		v.Hints = append(v.Hints, netip.PrefixFrom(addr, bits))
	}
	return v
}

// relayView gives one relay layer; its options exclude the Relay Message
// option (the layer inside).
func relayView(rm *dhcpv6.RelayMessage) hooks.Relay {
	r := hooks.Relay{HopCount: rm.HopCount, LinkAddress: addr(rm.LinkAddr), PeerAddress: addr(rm.PeerAddr)}
	r.InterfaceID = rm.Options.InterfaceID()
	if rid := rm.Options.RemoteID(); rid != nil {
		r.RemoteID = rid.RemoteID
	}
	if _, lla := rm.Options.ClientLinkLayerAddress(); lla != nil {
		r.ClientLinkLayer = lla
	}
	for _, o := range rm.Options.Options {
		if o.Code() == dhcpv6.OptionRelayMsg {
			continue
		}
		r.Options = append(r.Options, hooks.Option{Code: uint16(o.Code()), Data: o.ToBytes()})
	}
	return r
}

func addr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a
}

// ServerEnv sets every server-provided read-only key of env that comes from
// the request (all but server.name, which the server sets once it knows its
// name; see ServerEnvNamed). A key without a value (relay keys of a message
// that was not relayed, a class option the client did not send, the link
// before selection) is set to "" so that no extension can set it.
func ServerEnv(env *hooks.Env, req *hooks.Request) {
	env.SetServer(hooks.KeyMessageType, req.MessageType)
	env.SetServer(hooks.KeyClientDUID, hex.EncodeToString(req.ClientDUID))
	env.SetServer(hooks.KeyInterface, req.Interface)
	src := ""
	if req.Source.IsValid() {
		src = req.Source.Addr().String()
	}
	env.SetServer(hooks.KeySource, src)
	env.SetServer(hooks.KeyRelayed, strconv.FormatBool(len(req.Relays) > 0))
	var in hooks.Relay
	if n := len(req.Relays); n > 0 {
		in = req.Relays[n-1]
	}
	env.SetServer(hooks.KeyLinkAddress, addrString(in.LinkAddress))
	env.SetServer(hooks.KeyPeerAddress, addrString(in.PeerAddress))
	env.SetServer(hooks.KeyInterfaceID, hex.EncodeToString(in.InterfaceID))
	env.SetServer(hooks.KeyRemoteID, hex.EncodeToString(in.RemoteID))
	mac := ""
	if len(in.ClientLinkLayer) > 0 {
		mac = net.HardwareAddr(in.ClientLinkLayer).String()
	}
	env.SetServer(hooks.KeyClientMAC, mac)
	env.SetServer(hooks.KeyLink, req.Link)
	env.SetServer(hooks.KeyVendorClass, firstVendorClass(req))
	env.SetServer(hooks.KeyUserClass, firstUserClass(req))
	env.SetServer(hooks.KeyRequestIAIDs, strconv.Itoa(len(req.IAs)))
}

// ServerEnvNamed is ServerEnv plus server.name; an empty serverName means
// this host's name.
func ServerEnvNamed(env *hooks.Env, req *hooks.Request, serverName string) {
	ServerEnv(env, req)
	if serverName == "" {
		serverName, _ = os.Hostname()
	}
	env.SetServer(hooks.KeyServerName, serverName)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// firstVendorClass gives the first vendor-class-data item of option 16
// (after the 4-byte enterprise number).
func firstVendorClass(req *hooks.Request) string {
	b, ok := req.Option(optVendorClass)
	if !ok || len(b) < 4 {
		return ""
	}
	return firstItem(b[4:])
}

// firstUserClass gives the first user-class-data item of option 15.
func firstUserClass(req *hooks.Request) string {
	b, ok := req.Option(optUserClass)
	if !ok {
		return ""
	}
	return firstItem(b)
}

// firstItem reads the first of a list of 2-byte-length-prefixed items.
func firstItem(b []byte) string {
	if len(b) < 2 {
		return ""
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return ""
	}
	return string(b[2 : 2+n])
}
