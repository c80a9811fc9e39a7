package core

import (
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// replyArena holds the objects of one answer (the message, its IAs, their
// addresses and prefixes), so that building the usual answer allocates
// nothing; a larger one takes what does not fit from the heap. It lives in
// the pooled packet context: nothing in it may outlive the packet (the
// answer is encoded into a new slice, extensions are given copies).
type replyArena struct {
	msgUsed bool
	msg     dhcpv6.Message
	opts    [12]dhcpv6.Option
	cid     [1]dhcpv6.OptionGeneric
	na      [2]dhcpv6.OptIANA
	pd      [2]dhcpv6.OptIAPD
	sub     [8]dhcpv6.Option
	addrs   [4]dhcpv6.OptIAAddress
	pfxs    [4]dhcpv6.OptIAPrefix
	nets    [4]net.IPNet
	sts     [2]dhcpv6.OptStatusCode
	ips     [8][net.IPv6len]byte

	nCID, nNA, nPD, nSub, nAddr, nPfx, nNet, nSt, nIP int
}

// take returns the next unused element of arr, counted by n, or a new one
// once arr is used up. The arena is zeroed between packets, so elements
// come zeroed.
func take[T any](arr []T, n *int) *T {
	if *n < len(arr) {
		p := &arr[*n]
		*n++
		return p
	}
	return new(T)
}

// message starts the answer.
func (a *replyArena) message(t dhcpv6.MessageType, xid dhcpv6.TransactionID) *dhcpv6.Message {
	if a.msgUsed {
		return &dhcpv6.Message{MessageType: t, TransactionID: xid}
	}
	a.msgUsed = true
	a.msg = dhcpv6.Message{MessageType: t, TransactionID: xid}
	a.msg.Options.Options = a.opts[:0]
	return &a.msg
}

// options returns an empty option list with room for n.
func (a *replyArena) options(n int) []dhcpv6.Option {
	if a.nSub+n <= len(a.sub) {
		s := a.sub[a.nSub : a.nSub : a.nSub+n]
		a.nSub += n
		return s
	}
	return make([]dhcpv6.Option, 0, n)
}

func (a *replyArena) generic(code dhcpv6.OptionCode, data []byte) *dhcpv6.OptionGeneric {
	o := take(a.cid[:], &a.nCID)
	o.OptionCode, o.OptionData = code, data
	return o
}

func (a *replyArena) ianaOpt() *dhcpv6.OptIANA        { return take(a.na[:], &a.nNA) }
func (a *replyArena) iapdOpt() *dhcpv6.OptIAPD        { return take(a.pd[:], &a.nPD) }
func (a *replyArena) iaAddress() *dhcpv6.OptIAAddress { return take(a.addrs[:], &a.nAddr) }
func (a *replyArena) iaPrefix() *dhcpv6.OptIAPrefix   { return take(a.pfxs[:], &a.nPfx) }
func (a *replyArena) ipNet() *net.IPNet               { return take(a.nets[:], &a.nNet) }
func (a *replyArena) ipBytes() *[net.IPv6len]byte     { return take(a.ips[:], &a.nIP) }

func (a *replyArena) status(code iana.StatusCode, msg string) *dhcpv6.OptStatusCode {
	o := take(a.sts[:], &a.nSt)
	o.StatusCode, o.StatusMessage = code, msg
	return o
}

// ip is p as a net.IP (as net.IP(p.AsSlice()) encodes: 16 bytes).
func (a *replyArena) ip(p netip.Addr) net.IP {
	b := a.ipBytes()
	*b = p.As16()
	return b[:]
}

// mask is net.CIDRMask(ones, 128).
func (a *replyArena) mask(ones int) net.IPMask {
	if ones < 0 || ones > 8*net.IPv6len {
		return nil
	}
	b := a.ipBytes()
	for i := range b {
		switch {
		case ones >= 8:
			b[i], ones = 0xff, ones-8
		case ones > 0:
			b[i], ones = ^byte(0xff>>uint(ones)), 0
		default:
			b[i] = 0
		}
	}
	return b[:]
}
