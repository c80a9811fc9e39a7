package core

import (
	"encoding/binary"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// The answer is built as a dhcpv6.Message, as extensions see and edit it,
// and encoded here into one reused buffer instead of by Message.ToBytes,
// which allocates a buffer (and grows it) for every message, relay layer,
// option list and option, nested ones included: that was a third of the
// allocations of a Solicit. The options core builds are written field by
// field exactly as their ToBytes writes them; any other option (one an
// extension added, or a type core does not build) is written by its own
// ToBytes. Tests compare every answer with Message.ToBytes's encoding
// (Server.verifyEncoding).

// encode returns reply wrapped in Relay-repl layers mirroring the
// Relay-forw chain (each layer's hop count, addresses and Interface-Id
// echoed), as wrap(reply).ToBytes() would, in a new slice of exactly its
// length (the answer leaves Handle, so it is never reused).
func (pc *pctx) encode(reply *dhcpv6.Message) []byte {
	b := pc.enc[:0]
	var lens [maxRelayDepth + 1]int // offsets of the relay-msg lengths to fill in
	n := len(pc.relays)
	for i, f := range pc.relays {
		b = append(b, byte(dhcpv6.MessageTypeRelayReply), f.HopCount)
		b = appendIP16(b, f.LinkAddr)
		b = appendIP16(b, f.PeerAddr)
		if id := f.Options.InterfaceID(); id != nil {
			b = binary.BigEndian.AppendUint16(b, uint16(dhcpv6.OptionInterfaceID))
			b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
			b = append(b, id...)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(dhcpv6.OptionRelayMsg))
		lens[i] = len(b)
		b = append(b, 0, 0)
	}
	b = append(b, byte(reply.MessageType))
	b = append(b, reply.TransactionID[:]...)
	b = appendOptions(b, reply.Options.Options)
	// Each relay-msg option is the last thing in its layer: it runs to
	// the end of the buffer.
	for i := n - 1; i >= 0; i-- {
		binary.BigEndian.PutUint16(b[lens[i]:], uint16(len(b)-lens[i]-2))
	}
	out := make([]byte, len(b))
	copy(out, b)
	if cap(b) <= maxKeptEncodeBuffer {
		pc.enc = b
	}
	return out
}

// maxKeptEncodeBuffer bounds the encoding buffer a pooled packet context
// keeps for the next packet.
const maxKeptEncodeBuffer = 16 << 10

// appendOptions writes opts as Options.ToBytes does.
func appendOptions(b []byte, opts []dhcpv6.Option) []byte {
	for _, o := range opts {
		b = binary.BigEndian.AppendUint16(b, uint16(o.Code()))
		at := len(b)
		b = append(b, 0, 0)
		b = appendOptionData(b, o)
		binary.BigEndian.PutUint16(b[at:], uint16(len(b)-at-2))
	}
	return b
}

// appendOptionData writes o's data as o.ToBytes() returns it.
func appendOptionData(b []byte, o dhcpv6.Option) []byte {
	switch o := o.(type) {
	case *dhcpv6.OptionGeneric:
		return append(b, o.OptionData...)
	case *dhcpv6.OptIANA:
		b = append(b, o.IaId[:]...)
		b = appendDuration(b, o.T1)
		b = appendDuration(b, o.T2)
		return appendOptions(b, o.Options.Options)
	case *dhcpv6.OptIAPD:
		b = append(b, o.IaId[:]...)
		b = appendDuration(b, o.T1)
		b = appendDuration(b, o.T2)
		return appendOptions(b, o.Options.Options)
	case *dhcpv6.OptIAAddress:
		b = appendIP16(b, o.IPv6Addr)
		b = appendDuration(b, o.PreferredLifetime)
		b = appendDuration(b, o.ValidLifetime)
		return appendOptions(b, o.Options.Options)
	case *dhcpv6.OptIAPrefix:
		b = appendDuration(b, o.PreferredLifetime)
		b = appendDuration(b, o.ValidLifetime)
		if o.Prefix != nil {
			ones, _ := o.Prefix.Mask.Size()
			b = append(b, uint8(ones))
			b = appendIP16(b, o.Prefix.IP)
		} else {
			b = append(b, 0)
			b = appendIP16(b, nil)
		}
		return appendOptions(b, o.Options.Options)
	case *dhcpv6.OptStatusCode:
		b = binary.BigEndian.AppendUint16(b, uint16(o.StatusCode))
		return append(b, o.StatusMessage...)
	}
	return append(b, o.ToBytes()...)
}

// appendDuration writes d as dhcpv6.Duration.Marshal does: whole seconds,
// rounded, in 32 bits.
func appendDuration(b []byte, d time.Duration) []byte {
	return binary.BigEndian.AppendUint32(b, uint32(d.Round(time.Second)/time.Second))
}

// appendIP16 writes ip in 16 bytes, zeros when it is not an IP address,
// as the library's write16 does.
func appendIP16(b []byte, ip net.IP) []byte {
	if ip16 := ip.To16(); ip16 != nil {
		return append(b, ip16...)
	}
	var zeros [net.IPv6len]byte
	return append(b, zeros[:]...)
}
