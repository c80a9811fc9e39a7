package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/hook6/hook6/core/lease"
	"github.com/hook6/hook6/core/view"
	"github.com/hook6/hook6/hooks"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// maxRelayDepth is RFC 8415's HOP_COUNT_LIMIT (8) with room for the
// outermost relay's own layer.
const maxRelayDepth = 9

// Packet is one received datagram.
type Packet struct {
	Data      []byte
	Source    netip.AddrPort
	Interface string // arrival interface name ("" if unknown)
	// Unicast is true when the destination was not a multicast address.
	Unicast bool
}

// pctx is the state of one packet's way through the pipeline.
//
// A pctx is pooled (Handle takes one and gives it back when done). Its
// scratch fields, the last group, keep their room for the next packet, so
// nothing in them may be handed to anything that can outlive Handle: the
// store, OnCommit, extensions, the sender. What does leave Handle (the
// client's DUID, the lease changes and events, the encoded answer) is
// allocated for the packet, and the pctx only lets go of it.
type pctx struct {
	s        *Server
	st       *state
	ctx      context.Context
	now      time.Time
	pkt      *Packet
	msg      *dhcpv6.Message
	relays   []*dhcpv6.RelayMessage // outermost first
	src      netip.AddrPort         // client's address (innermost peer-address when relayed)
	link     *link
	duid     []byte
	duidKey  string // string(duid): bindings and the client lock are keyed by it
	runner   hooks.Runner
	env      *hooks.Env
	req      *hooks.Request
	dropped  bool
	offering bool // allocating for an Advertise: claims are offers
	claimed  []netip.Prefix
	changes  []lease.Lease       // handed to the store and OnCommit: never reused
	events   []*hooks.LeaseEvent // handed to extensions: never reused

	// Scratch, reused from packet to packet.
	iaBuf []iaReq
	resps []iaResp
	cands []netip.Prefix // one algorithm's candidates
	prefs []*prefix      // candidate prefixes of one allocation
	held  []netip.Prefix // a binding's claims (offered)
	enc   []byte         // the answer being encoded
	arena replyArena     // the answer's objects
}

// Handle processes one datagram and returns the bytes to send back to
// pkt.Source (a client or the outermost relay), or nil when nothing is to
// be sent. Leases in the answer are durable when Handle returns.
func (s *Server) Handle(ctx context.Context, pkt *Packet) []byte {
	s.stats.received.Add(1)
	pc, _ := s.pctxs.Get().(*pctx)
	if pc == nil {
		pc = new(pctx)
	}
	pc.s, pc.st, pc.ctx, pc.now, pc.pkt, pc.src, pc.runner = s, s.st.Load(), ctx, s.opts.Now(), pkt, pkt.Source, s.Runner()
	out, reason := pc.handle()
	if reason != "" {
		s.stats.Drop(reason)
		if len(pc.claimed) > 0 && len(pc.changes) == 0 {
			s.claims.release(pc.claimed...)
		}
		out = nil
	} else {
		s.stats.sent.Add(1)
	}
	pc.recycle()
	return out
}

// recycle clears pc, keeping its scratch space, and pools it.
func (pc *pctx) recycle() {
	s := pc.s
	clear(pc.relays)
	clear(pc.prefs)
	ias := pc.iaBuf[:cap(pc.iaBuf)]
	for i := range ias {
		ias[i].binding.DUID = "" // the client's: let it go
	}
	*pc = pctx{
		relays:  pc.relays[:0],
		claimed: keep(pc.claimed),
		iaBuf:   keep(pc.iaBuf),
		resps:   keep(pc.resps),
		cands:   keep(pc.cands),
		prefs:   keep(pc.prefs),
		held:    keep(pc.held),
		enc:     pc.enc[:0], // bounded by encode
	}
	s.pctxs.Put(pc)
}

// keep returns s emptied for the next packet, or nil when an unusual
// packet (hundreds of IAs or options) grew it: pooled contexts stay small.
func keep[T any](s []T) []T {
	if cap(s) > 64 {
		return nil
	}
	return s[:0]
}

func (pc *pctx) handle() ([]byte, string) {
	if reason := pc.decode(); reason != "" {
		return nil, reason
	}
	pc.s.stats.rxType[pc.msg.MessageType].Add(1)
	if reason := pc.validate(); reason != "" {
		return nil, reason
	}
	if pc.has(hooks.PostPacketDecode) && !pc.runPoint(hooks.PostPacketDecode) {
		return nil, DropExtension
	}
	pc.selectLink()
	if pc.link == nil && pc.msg.MessageType != dhcpv6.MessageTypeInformationRequest {
		return nil, DropNoLink
	}
	if pc.env != nil && pc.link != nil {
		pc.env.SetServer(hooks.KeyLink, pc.link.name)
		pc.req.Link = pc.link.name
	}
	for _, p := range []hooks.Point{hooks.PreClientLookup, hooks.PostClientLookup} {
		if pc.has(p) && !pc.runPoint(p) {
			return nil, DropExtension
		}
	}
	// One client's messages are handled one at a time, so that a
	// retransmission racing its original cannot create two bindings.
	l := pc.s.clients.lock(pc.duidKey)
	defer pc.s.clients.unlock(pc.duidKey, l)
	reply := pc.dispatch()
	if pc.dropped {
		return nil, DropExtension
	}
	if reply == nil {
		return nil, DropNoAnswer
	}
	return pc.finish(reply)
}

// decode parses the datagram and unwraps Relay-forw layers.
func (pc *pctx) decode() string {
	// dhcpv6.FromBytes, without the buffer it allocates to read the type.
	data := pc.pkt.Data
	if len(data) == 0 {
		return DropMalformed
	}
	var d dhcpv6.DHCPv6
	var err error
	if t := dhcpv6.MessageType(data[0]); t == dhcpv6.MessageTypeRelayForward || t == dhcpv6.MessageTypeRelayReply {
		d, err = dhcpv6.RelayMessageFromBytes(data)
	} else {
		d, err = dhcpv6.MessageFromBytes(data)
	}
	if err != nil {
		return DropMalformed
	}
	for depth := 0; ; depth++ {
		switch m := d.(type) {
		case *dhcpv6.Message:
			pc.msg = m
			return ""
		case *dhcpv6.RelayMessage:
			if m.MessageType != dhcpv6.MessageTypeRelayForward {
				return DropNotForServer
			}
			if depth >= maxRelayDepth {
				return DropHopLimit
			}
			pc.relays = append(pc.relays, m)
			inner := m.Options.RelayMessage()
			if inner == nil {
				return DropMalformed
			}
			if peer, ok := netip.AddrFromSlice(m.PeerAddr); ok {
				pc.src = netip.AddrPortFrom(peer.Unmap(), dhcpv6.DefaultClientPort)
			}
			d = inner
		default:
			return DropMalformed
		}
	}
}

// validate applies RFC 8415 §16's discard rules.
func (pc *pctx) validate() string {
	m := pc.msg
	clientID := rawOption(m.Options.Options, dhcpv6.OptionClientID)
	serverID := rawOption(m.Options.Options, dhcpv6.OptionServerID)
	if clientID != nil {
		pc.duid, pc.duidKey = clientID, string(clientID)
	}
	unicast := pc.pkt.Unicast && len(pc.relays) == 0
	switch m.MessageType {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeConfirm, dhcpv6.MessageTypeRebind:
		if clientID == nil || serverID != nil {
			return DropInvalid
		}
		if unicast {
			return DropUnicast
		}
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		if clientID == nil || serverID == nil {
			return DropInvalid
		}
		if !sameDUID(serverID, pc.s.opts.ServerDUID) {
			return DropNotOurs
		}
	case dhcpv6.MessageTypeInformationRequest:
		if len(m.Options.IANA()) > 0 || len(m.Options.IAPD()) > 0 || len(m.Options.IATA()) > 0 {
			return DropInvalid
		}
		if serverID != nil && !sameDUID(serverID, pc.s.opts.ServerDUID) {
			return DropNotOurs
		}
		if unicast {
			return DropUnicast
		}
	case dhcpv6.MessageTypeAdvertise, dhcpv6.MessageTypeReply, dhcpv6.MessageTypeReconfigure,
		dhcpv6.MessageTypeRelayReply:
		return DropNotForServer
	default:
		return DropUnknownType
	}
	if admit := pc.s.opts.Admit; admit != nil && !admit(m.MessageType.String(), serverID != nil && sameDUID(serverID, pc.s.opts.ServerDUID)) {
		return DropNotAdmitted
	}
	return ""
}

// selectLink picks the client's link: the innermost relay's link-address,
// else its interface-id, else the arrival interface.
func (pc *pctx) selectLink() {
	if n := len(pc.relays); n > 0 {
		for i := n - 1; i >= 0; i-- {
			r := pc.relays[i]
			la, _ := netip.AddrFromSlice(r.LinkAddr)
			if l := pc.st.linkForRelay(la.Unmap(), r.Options.InterfaceID()); l != nil {
				pc.link = l
				return
			}
		}
		return
	}
	pc.link = pc.st.byInterface[pc.pkt.Interface]
	if pc.link == nil && len(pc.st.byInterface) == 0 && len(pc.st.links) == 1 && pc.pkt.Interface == "" {
		pc.link = pc.st.links[0]
	}
}

// dispatch handles the message by type and returns the answer, nil for none.
func (pc *pctx) dispatch() *dhcpv6.Message {
	switch pc.msg.MessageType {
	case dhcpv6.MessageTypeSolicit:
		return pc.solicit()
	case dhcpv6.MessageTypeRequest:
		return pc.request()
	case dhcpv6.MessageTypeRenew:
		return pc.renew(false)
	case dhcpv6.MessageTypeRebind:
		return pc.renew(true)
	case dhcpv6.MessageTypeRelease:
		return pc.release(false)
	case dhcpv6.MessageTypeDecline:
		return pc.release(true)
	case dhcpv6.MessageTypeConfirm:
		return pc.confirm()
	case dhcpv6.MessageTypeInformationRequest:
		return pc.infoRequest()
	}
	return nil
}

// finish commits the leases, runs the encode points, encodes and wraps the
// answer in Relay-repl layers.
func (pc *pctx) finish(reply *dhcpv6.Message) ([]byte, string) {
	if pc.has(hooks.PrePacketEncode) {
		c := pc.hookContext(hooks.PrePacketEncode)
		c.Response = pc.responseView(reply)
		if !pc.run(c) {
			return nil, DropExtension
		}
		applyResponse(reply, c.Response)
	}
	if len(pc.changes) > 0 {
		if err := pc.s.opts.Store.Put(pc.ctx, pc.changes...); err != nil {
			pc.log().Error("committing leases", "err", err)
			return nil, DropStore
		}
		pc.s.stats.committed.Add(uint64(len(pc.changes)))
		pc.s.claims.release(pc.claimed...)
		if pc.s.opts.OnCommit != nil {
			pc.s.opts.OnCommit(pc.changes)
		}
		pc.leaseEvents()
	}
	out := pc.encode(reply)
	if pc.s.verifyEncoding {
		if want := pc.wrap(reply).ToBytes(); !bytes.Equal(out, want) {
			panic(fmt.Sprintf("answer encoded as\n%x, Message.ToBytes gives\n%x", out, want))
		}
	}
	if pc.has(hooks.PostPacketEncode) {
		c := pc.hookContext(hooks.PostPacketEncode)
		c.Packet = out
		if !pc.run(c) {
			return nil, DropExtension
		}
	}
	pc.s.stats.txType[reply.MessageType].Add(1)
	return out, ""
}

func (pc *pctx) leaseEvents() {
	if !pc.has(hooks.LeaseStateChange) {
		return
	}
	for _, ev := range pc.events {
		c := pc.hookContext(hooks.LeaseStateChange)
		c.Event = ev
		pc.run(c)
	}
}

// wrap builds the Relay-repl chain mirroring the Relay-forw chain, echoing
// each layer's hop count, addresses and Interface-Id (encode writes the
// same without building it; tests compare the two).
func (pc *pctx) wrap(reply *dhcpv6.Message) dhcpv6.DHCPv6 {
	var out dhcpv6.DHCPv6 = reply
	for i := len(pc.relays) - 1; i >= 0; i-- {
		f := pc.relays[i]
		r := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayReply, HopCount: f.HopCount,
			LinkAddr: f.LinkAddr, PeerAddr: f.PeerAddr}
		if id := f.Options.InterfaceID(); id != nil {
			r.Options.Add(dhcpv6.OptInterfaceID(id))
		}
		r.Options.Add(dhcpv6.OptRelayMessage(out))
		out = r
	}
	return out
}

// has reports whether extensions run at p.
func (pc *pctx) has(p hooks.Point) bool {
	return pc.runner != nil && pc.runner.Has(p)
}

// hookContext returns a Context for p, building the request view and the
// environment on first use.
func (pc *pctx) hookContext(p hooks.Point) *hooks.Context {
	if pc.env == nil {
		pc.env = hooks.NewEnv()
		req, err := view.FromBytes(pc.pkt.Data, pc.outer())
		if err != nil {
			req = &hooks.Request{}
		}
		req.Source = pc.pkt.Source
		req.Interface = pc.pkt.Interface
		if pc.link != nil {
			req.Link = pc.link.name
		}
		pc.req = req
		view.ServerEnvNamed(pc.env, req, pc.s.hostname)
	}
	pc.env.AtPoint(p)
	return &hooks.Context{Point: p, Request: pc.req, Env: pc.env, Log: pc.s.opts.Logger, Ctx: pc.ctx}
}

// outer returns the message as received (the outermost relay layer).
func (pc *pctx) outer() dhcpv6.DHCPv6 {
	if len(pc.relays) > 0 {
		return pc.relays[0]
	}
	return pc.msg
}

// runPoint runs a point with a plain Context.
func (pc *pctx) runPoint(p hooks.Point) bool { return pc.run(pc.hookContext(p)) }

// run calls the runner and reports whether the packet goes on; it records
// a drop decided by an extension.
func (pc *pctx) run(c *hooks.Context) bool {
	if err := pc.runner.Run(c); err != nil {
		pc.log().Debug("extension failed, dropping packet", "point", c.Point, "err", err)
		pc.dropped = true
		return false
	}
	if pc.env.IsTrue(hooks.KeyDrop) {
		pc.dropped = true
		return false
	}
	return true
}

func (pc *pctx) log() *slog.Logger {
	return pc.s.opts.Logger.With("client", pc.src.Addr(), "xid", pc.msg.TransactionID.String())
}

// rawOption returns the data of the first option with code, nil if absent.
func rawOption(opts []dhcpv6.Option, code dhcpv6.OptionCode) []byte {
	for _, o := range opts {
		if o.Code() == code {
			b := o.ToBytes()
			if b == nil {
				b = []byte{}
			}
			return b
		}
	}
	return nil
}

// clientLinkLayer returns option 79's address without its type.
func clientLinkLayer(r *dhcpv6.RelayMessage) []byte {
	_, mac := r.Options.ClientLinkLayerAddress()
	return mac
}

// responseView gives extensions the answer being built. The options' data
// is a copy (some of it is shared: the Server ID, the policies' options,
// the packet's), written into one new buffer that the options share,
// each capped at its end so that an append to one cannot reach the next.
func (pc *pctx) responseView(m *dhcpv6.Message) *hooks.Response {
	r := &hooks.Response{MessageType: view.MessageTypeName(m.MessageType)}
	opts := m.Options.Options
	if len(opts) == 0 {
		return r
	}
	ends := make([]int, 0, 16)
	b := pc.enc[:0]
	for _, o := range opts {
		b = appendOptionData(b, o)
		ends = append(ends, len(b))
	}
	data := bytes.Clone(b)
	if cap(b) <= maxKeptEncodeBuffer {
		pc.enc = b
	}
	r.Options = make([]hooks.Option, len(opts))
	start := 0
	for i, o := range opts {
		r.Options[i] = hooks.Option{Code: uint16(o.Code()), Data: data[start:ends[i]:ends[i]]}
		start = ends[i]
	}
	return r
}

// applyResponse applies extensions' edits to the answer.
func applyResponse(m *dhcpv6.Message, r *hooks.Response) {
	for _, code := range r.Remove {
		m.Options.Del(dhcpv6.OptionCode(code))
	}
	if r.PreferenceSet {
		m.Options.Del(dhcpv6.OptionPreference)
		m.Options.Add(dhcpv6.OptPreference(r.Preference))
	}
	for _, o := range r.Add {
		m.Options.Add(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionCode(o.Code), OptionData: o.Data})
	}
}

func iaidOf(b [4]byte) uint32 { return binary.BigEndian.Uint32(b[:]) }
