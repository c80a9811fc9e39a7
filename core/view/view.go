// Package view turns a decoded DHCPv6 message (insomniacslk/dhcp) into the
// hooks.Request extensions see, and fills the server-provided keys of the
// environment dictionary. The server and `hook6ctl script run` share it, so
// a script sees offline exactly what it will see when deployed.
package view

import (
	"bytes"
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
// Interface and Link are left for the server to fill. Each option's data
// is re-encoded from msg; FromBytes gives it as received.
func FromMessage(msg dhcpv6.DHCPv6) (*hooks.Request, error) {
	return fromMessage(msg, nil)
}

// FromBytes is FromMessage for msg decoded from data: the options are
// those of data, as the client and the relays sent them, sharing one copy
// of data (each capped at its end) rather than encoded again one by one.
// Where data does not split into options cleanly, FromMessage's encoding
// stands in.
func FromBytes(data []byte, msg dhcpv6.DHCPv6) (*hooks.Request, error) {
	return fromMessage(msg, bytes.Clone(data))
}

// Fixed parts before the options (RFC 8415 sections 8 and 9).
const (
	relayHeaderLen   = 34 // msg-type, hop-count, link-address, peer-address
	messageHeaderLen = 4  // msg-type, transaction-id
)

func fromMessage(msg dhcpv6.DHCPv6, raw []byte) (*hooks.Request, error) {
	req := &hooks.Request{}
	for depth := 0; msg != nil && msg.IsRelay(); depth++ {
		rm, ok := msg.(*dhcpv6.RelayMessage)
		if !ok {
			return nil, fmt.Errorf("relay message of type %T", msg)
		}
		if depth >= maxRelays {
			return nil, fmt.Errorf("more than %d relay layers", maxRelays)
		}
		r := relayView(rm)
		var ok2 bool
		if r.Options, raw, ok2 = splitOptions(raw, relayHeaderLen, uint16(dhcpv6.OptionRelayMsg)); !ok2 {
			r.Options = encodedOptions(rm.Options.Options, dhcpv6.OptionRelayMsg)
		}
		req.Relays = append(req.Relays, r)
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
	if req.Options, _, ok = splitOptions(raw, messageHeaderLen, 0); !ok {
		req.Options = encodedOptions(m.Options.Options, 0)
	}
	for _, o := range m.Options.Options {
		switch ia := o.(type) {
		case *dhcpv6.OptIANA:
			req.IAs = append(req.IAs, ianaView(ia))
		case *dhcpv6.OptIAPD:
			req.IAs = append(req.IAs, iapdView(ia))
		}
	}
	return req, nil
}

// splitOptions splits the options of a message (after its header of hdr
// bytes) into views of msg, each capped at its end, leaving out those with
// code inner and giving the data of the last of them: the message inside a
// relay layer. ok is false when msg is nil or does not split cleanly. The
// library's own option walker does the splitting; its parser here keeps
// each option's bytes as they are instead of decoding them.
func splitOptions(msg []byte, hdr int, inner uint16) (opts []hooks.Option, in []byte, ok bool) {
	if len(msg) < hdr {
		return nil, nil, false
	}
	opts = make([]hooks.Option, 0, 8)
	var walked dhcpv6.Options
	err := walked.FromBytesWithParser(msg[hdr:], func(code dhcpv6.OptionCode, data []byte) (dhcpv6.Option, error) {
		data = data[:len(data):len(data)]
		if inner != 0 && uint16(code) == inner {
			in = data
		} else {
			opts = append(opts, hooks.Option{Code: uint16(code), Data: data})
		}
		return nil, nil // kept in opts, not in walked
	})
	if err != nil {
		return nil, nil, false
	}
	return opts, in, true
}

// encodedOptions gives opts (but those with code skip) each encoded by
// its ToBytes.
func encodedOptions(opts []dhcpv6.Option, skip dhcpv6.OptionCode) []hooks.Option {
	out := make([]hooks.Option, 0, len(opts))
	for _, o := range opts {
		if skip != 0 && o.Code() == skip {
			continue
		}
		out = append(out, hooks.Option{Code: uint16(o.Code()), Data: o.ToBytes()})
	}
	return out
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

// relayView gives one relay layer but its options (which exclude the
// Relay Message option, the layer inside).
func relayView(rm *dhcpv6.RelayMessage) hooks.Relay {
	r := hooks.Relay{HopCount: rm.HopCount, LinkAddress: addr(rm.LinkAddr), PeerAddress: addr(rm.PeerAddr)}
	r.InterfaceID = rm.Options.InterfaceID()
	if rid := rm.Options.RemoteID(); rid != nil {
		r.RemoteID = rid.RemoteID
	}
	if _, lla := rm.Options.ClientLinkLayerAddress(); lla != nil {
		r.ClientLinkLayer = lla
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
