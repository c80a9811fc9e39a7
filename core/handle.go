package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hook6/hook6/core/lease"
	"github.com/hook6/hook6/core/view"
	"github.com/hook6/hook6/hooks"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
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
	// What was received (decodeMessage, decodeRelay): the client
	// message and its options, the relay layers, their addresses and
	// options.
	rx          dhcpv6.Message
	rxUsed      bool
	rxOpts      []dhcpv6.Option
	rxRelays    [maxRelayDepth + 1]dhcpv6.RelayMessage
	nRelays     int
	rxAddrs     [2 * (maxRelayDepth + 1)][16]byte
	rxRelayOpts [maxRelayDepth + 1][]dhcpv6.Option
	rxNA        [2]dhcpv6.OptIANA
	rxPD        [2]dhcpv6.OptIAPD
	rxSub       [8]dhcpv6.Option // the IAs' options
	rxGen       [1]dhcpv6.OptionGeneric
	rxLLT       [1]dhcpv6.DUIDLLT
	rxLL        [1]dhcpv6.DUIDLL
	nRxNA       int
	nRxPD       int
	nRxSub      int
	nRxGen      int
	nRxLLT      int
	nRxLL       int
}

var pctxPool = sync.Pool{New: func() any { return new(pctx) }}

// Handle processes one datagram and returns the bytes to send back to
// pkt.Source (a client or the outermost relay), or nil when nothing is to
// be sent. Leases in the answer are durable when Handle returns.
func (s *Server) Handle(ctx context.Context, pkt *Packet) []byte {
	s.stats.received.Add(1)
	pc := pctxPool.Get().(*pctx)
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
	clear(pc.relays)
	clear(pc.rxOpts)
	for i := range pc.rxRelayOpts {
		clear(pc.rxRelayOpts[i])
		pc.rxRelayOpts[i] = pc.rxRelayOpts[i][:0]
	}
	clear(pc.prefs)
	ias := pc.iaBuf[:cap(pc.iaBuf)]
	for i := range ias {
		ias[i].binding.DUID = "" // the client's: let it go
	}
	*pc = pctx{
		relays:      pc.relays[:0],
		claimed:     keep(pc.claimed),
		iaBuf:       keep(pc.iaBuf),
		resps:       keep(pc.resps),
		cands:       keep(pc.cands),
		prefs:       keep(pc.prefs),
		held:        keep(pc.held),
		enc:         pc.enc[:0], // bounded by encode
		rxOpts:      keep(pc.rxOpts),
		rxRelayOpts: pc.rxRelayOpts,
	}
	pctxPool.Put(pc)
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
	if t := dhcpv6.MessageType(data[0]); t == dhcpv6.MessageTypeRelayForward || t == dhcpv6.MessageTypeRelayReply {
		r, err := pc.decodeRelay(data)
		if err != nil {
			return DropMalformed
		}
		d = r
	} else {
		m, ok := pc.decodeMessage(data)
		if !ok {
			return DropMalformed
		}
		d = m
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

// parseOptions is Options.FromBytesWithParser without the buffer it
// allocates to read: the same options (each parsed from its data in b),
// the same failures (an option longer than what is left; 1 to 3 bytes
// left over).
func parseOptions(o *dhcpv6.Options, b []byte, parse dhcpv6.OptionParser) error {
	if *o == nil {
		*o = make(dhcpv6.Options, 0, 10)
	}
	for len(b) >= 4 {
		code, n := dhcpv6.OptionCode(binary.BigEndian.Uint16(b)), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return errMalformed
		}
		opt, err := parse(code, b[4:4+n])
		if err != nil {
			return err
		}
		*o = append(*o, opt)
		b = b[4+n:]
	}
	if len(b) > 0 {
		return errMalformed
	}
	return nil
}

// decodeMessage is dhcpv6.MessageFromBytes (data is not a relay message),
// decoding into the packet context's message and option list the first
// time (the options themselves are the library's, as ever). It reports
// whether data decoded.
func (pc *pctx) decodeMessage(data []byte) (*dhcpv6.Message, bool) {
	if pc.rxUsed {
		// Another Relay Message option of the same layer.
		m, err := dhcpv6.MessageFromBytes(data)
		return m, err == nil
	}
	if len(data) < 4 {
		return nil, false
	}
	pc.rxUsed = true
	m := &pc.rx
	m.MessageType = dhcpv6.MessageType(data[0])
	copy(m.TransactionID[:], data[1:4])
	m.Options.Options = pc.rxOpts[:0]
	err := parseOptions(&m.Options.Options, data[4:], pc.parseMessageOption)
	pc.rxOpts = m.Options.Options // its room, for the next packet
	return m, err == nil
}

// parseMessageOption is dhcpv6.ParseOption for a client message's options,
// but for these:
//   - The Client ID's DUID is decoded as DUIDFromBytes does, its variable
//     part left in the datagram: it is only read while the packet is
//     handled (the request view copies it; core keeps pc.duid, a copy of
//     the raw option).
//   - The Server ID: core only compares its bytes (rawIDs) and nothing
//     asks for its DUID, so it is kept as received, an OptionGeneric
//     (which encodes as the decoded DUID would), once checked as
//     DUIDFromBytes checks it.
//   - IA_NA and IA_PD are decoded as their FromBytes does (IAID, T1, T2,
//     then the options inside, by the library) into the packet context:
//     nothing outside Handle sees them but through copies (the request
//     view, the IAs parsed by ias).
func (pc *pctx) parseMessageOption(code dhcpv6.OptionCode, data []byte) (dhcpv6.Option, error) {
	switch code {
	case dhcpv6.OptionClientID:
		d, ok := pc.duidOf(data)
		if !ok {
			return nil, errMalformed
		}
		return dhcpv6.OptClientID(d), nil
	case dhcpv6.OptionServerID:
		if !duidDecodes(data) {
			return nil, errMalformed
		}
		o := take(pc.rxGen[:], &pc.nRxGen)
		o.OptionCode, o.OptionData = code, bytes.Clone(data) // a copy: the request view hands it out
		return o, nil
	case dhcpv6.OptionIANA:
		if len(data) < 12 {
			return nil, errMalformed
		}
		o := take(pc.rxNA[:], &pc.nRxNA)
		copy(o.IaId[:], data)
		o.T1, o.T2 = seconds(data[4:]), seconds(data[8:])
		o.Options.Options = pc.rxSub[pc.nRxSub:pc.nRxSub:len(pc.rxSub)]
		err := parseOptions(&o.Options.Options, data[12:], dhcpv6.ParseOption)
		pc.nRxSub = min(pc.nRxSub+len(o.Options.Options), len(pc.rxSub))
		if err != nil {
			return nil, err
		}
		return o, nil
	case dhcpv6.OptionIAPD:
		if len(data) < 12 {
			return nil, errMalformed
		}
		o := take(pc.rxPD[:], &pc.nRxPD)
		copy(o.IaId[:], data)
		o.T1, o.T2 = seconds(data[4:]), seconds(data[8:])
		o.Options.Options = pc.rxSub[pc.nRxSub:pc.nRxSub:len(pc.rxSub)]
		err := parseOptions(&o.Options.Options, data[12:], dhcpv6.ParseOption)
		pc.nRxSub = min(pc.nRxSub+len(o.Options.Options), len(pc.rxSub))
		if err != nil {
			return nil, err
		}
		return o, nil
	}
	return dhcpv6.ParseOption(code, data)
}

// seconds reads a lifetime as dhcpv6.Duration.Unmarshal does.
func seconds(b []byte) time.Duration {
	return time.Duration(binary.BigEndian.Uint32(b)) * time.Second
}

// duidOf is dhcpv6.DUIDFromBytes, the DUID's variable part aliasing d;
// a DUID-LLT or DUID-LL is the packet context's.
func (pc *pctx) duidOf(d []byte) (dhcpv6.DUID, bool) {
	if !duidDecodes(d) {
		return nil, false
	}
	be := binary.BigEndian
	rest := func(from int) []byte { return d[from:len(d):len(d)] }
	switch t := dhcpv6.DUIDType(be.Uint16(d)); t {
	case dhcpv6.DUID_LLT:
		o := take(pc.rxLLT[:], &pc.nRxLLT)
		*o = dhcpv6.DUIDLLT{HWType: iana.HWType(be.Uint16(d[2:])), Time: be.Uint32(d[4:]), LinkLayerAddr: rest(8)}
		return o, true
	case dhcpv6.DUID_LL:
		o := take(pc.rxLL[:], &pc.nRxLL)
		*o = dhcpv6.DUIDLL{HWType: iana.HWType(be.Uint16(d[2:])), LinkLayerAddr: rest(4)}
		return o, true
	case dhcpv6.DUID_EN:
		return &dhcpv6.DUIDEN{EnterpriseNumber: be.Uint32(d[2:]), EnterpriseIdentifier: rest(6)}, true
	case dhcpv6.DUID_UUID:
		u := &dhcpv6.DUIDUUID{}
		copy(u.UUID[:], d[2:])
		return u, true
	default:
		o := &dhcpv6.DUIDOpaque{Type: t}
		if len(d) > 2 {
			o.Data = rest(2)
		}
		return o, true
	}
}

// duidDecodes reports whether dhcpv6.DUIDFromBytes accepts d: a type,
// then at least the fixed fields of the types it knows (DUID-UUID exactly).
func duidDecodes(d []byte) bool {
	if len(d) < 2 {
		return false
	}
	switch dhcpv6.DUIDType(binary.BigEndian.Uint16(d)) {
	case dhcpv6.DUID_LLT:
		return len(d) >= 8 // hardware type, time
	case dhcpv6.DUID_LL:
		return len(d) >= 4 // hardware type
	case dhcpv6.DUID_EN:
		return len(d) >= 6 // enterprise number
	case dhcpv6.DUID_UUID:
		return len(d) == 18
	}
	return true
}

// errMalformed is a relay layer that does not decode.
var errMalformed = errors.New("malformed")

// decodeRelay is dhcpv6.RelayMessageFromBytes (data is a relay message),
// decoding into the packet context's relay layers and their option lists,
// and the layers and message inside them (parseRelayOption) likewise.
func (pc *pctx) decodeRelay(data []byte) (*dhcpv6.RelayMessage, error) {
	i := pc.nRelays
	if i == len(pc.rxRelays) {
		return dhcpv6.RelayMessageFromBytes(data)
	}
	if len(data) < dhcpv6.RelayHeaderSize {
		return nil, errMalformed
	}
	pc.nRelays++
	r := &pc.rxRelays[i]
	r.MessageType, r.HopCount = dhcpv6.MessageType(data[0]), data[1]
	la, pa := &pc.rxAddrs[2*i], &pc.rxAddrs[2*i+1]
	copy(la[:], data[2:18])
	copy(pa[:], data[18:34])
	r.LinkAddr, r.PeerAddr = la[:], pa[:]
	r.Options.Options = pc.rxRelayOpts[i][:0]
	err := parseOptions(&r.Options.Options, data[dhcpv6.RelayHeaderSize:], pc.parseRelayOption)
	pc.rxRelayOpts[i] = r.Options.Options
	return r, err
}

// parseRelayOption is dhcpv6.ParseOption for a relay layer's options, the
// Relay Message option decoded by decodeRelay or decodeMessage.
func (pc *pctx) parseRelayOption(code dhcpv6.OptionCode, data []byte) (dhcpv6.Option, error) {
	if code != dhcpv6.OptionRelayMsg {
		return dhcpv6.ParseOption(code, data)
	}
	if len(data) == 0 {
		return nil, errMalformed
	}
	if t := dhcpv6.MessageType(data[0]); t == dhcpv6.MessageTypeRelayForward || t == dhcpv6.MessageTypeRelayReply {
		r, err := pc.decodeRelay(data)
		if err != nil {
			return nil, err
		}
		return dhcpv6.OptRelayMessage(r), nil
	}
	m, ok := pc.decodeMessage(data)
	if !ok {
		return nil, errMalformed
	}
	return dhcpv6.OptRelayMessage(m), nil
}

// validate applies RFC 8415 §16's discard rules.
func (pc *pctx) validate() string {
	m := pc.msg
	// The IDs as received (the decoded options re-encode to the same
	// bytes); only the Client ID is kept, so only it is copied.
	clientID, serverID := rawIDs(pc.pkt.Data)
	if pc.s.verifyEncoding {
		if c, s := rawOption(m.Options.Options, dhcpv6.OptionClientID), rawOption(m.Options.Options, dhcpv6.OptionServerID); !bytes.Equal(c, clientID) || (c == nil) != (clientID == nil) || !bytes.Equal(s, serverID) || (s == nil) != (serverID == nil) {
			panic(fmt.Sprintf("raw IDs %x %x, decoded %x %x", clientID, serverID, c, s))
		}
	}
	if clientID != nil {
		pc.duidKey = string(clientID)
		pc.duid = []byte(pc.duidKey)
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
		c.Response = responseView(reply)
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
		req, err := view.FromMessage(pc.outer())
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

// rawIDs returns the data of the Client ID and Server ID options (the
// first of each, nil if absent) of the client message in data, inside
// its Relay-forw layers, as decode found them: data must have decoded.
// The slices alias data.
func rawIDs(data []byte) (clientID, serverID []byte) {
	for len(data) > 0 {
		switch dhcpv6.MessageType(data[0]) {
		case dhcpv6.MessageTypeRelayForward, dhcpv6.MessageTypeRelayReply:
			if len(data) < dhcpv6.RelayHeaderSize {
				return nil, nil
			}
			data = findOption(data[dhcpv6.RelayHeaderSize:], dhcpv6.OptionRelayMsg)
		default:
			if len(data) < 4 {
				return nil, nil
			}
			return findOption(data[4:], dhcpv6.OptionClientID), findOption(data[4:], dhcpv6.OptionServerID)
		}
	}
	return nil, nil
}

// findOption returns the data of the first option with code in the
// encoded options b, nil if absent.
func findOption(b []byte, code dhcpv6.OptionCode) []byte {
	for len(b) >= 4 {
		c, n := dhcpv6.OptionCode(binary.BigEndian.Uint16(b)), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return nil
		}
		if c == code {
			return b[4 : 4+n : 4+n]
		}
		b = b[4+n:]
	}
	return nil
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

// responseView gives extensions the answer being built.
func responseView(m *dhcpv6.Message) *hooks.Response {
	r := &hooks.Response{MessageType: view.MessageTypeName(m.MessageType)}
	for _, o := range m.Options.Options {
		// A copy: some options' data is shared (the Server ID, the
		// policies' options) or the packet's.
		r.Options = append(r.Options, hooks.Option{Code: uint16(o.Code()), Data: slices.Clone(o.ToBytes())})
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
