package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/hook6/hook6/hooks"
	pb "github.com/hook6/hook6/hooks/plugin/proto"
)

// This file maps hooks.Context to the wire and back: encodeRequest and
// applyResponse run in hook6, decodeRequest and encodeResponse in the
// plugin.

// errGarbage is wrapped by every error about an answer that does not make
// sense (a malformed prefix, edits of something the point does not have).
var errGarbage = errors.New("invalid answer from plugin")

func garbage(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errGarbage, fmt.Sprintf(format, args...))
}

// encodeRequest serialises what c exposes at its point.
func encodeRequest(c *hooks.Context, logLevel slog.Level) *pb.HandleRequest {
	r := &pb.HandleRequest{Point: c.Point.String(), Packet: c.Packet, LogLevel: int32(logLevel)}
	if c.Request != nil {
		r.Request = encodeReq(c.Request)
	}
	if c.Response != nil {
		r.Response = encodeResp(c.Response, true)
	}
	if a := c.Allocation; a != nil {
		r.Allocation = &pb.Allocation{Ia: encodeIA(&a.IA), PrefixName: a.PrefixName, From: pbPrefix(a.From),
			Length: uint32(a.Length), Candidate: pbPrefix(a.Candidate), Acceptable: a.Acceptable}
	}
	if ev := c.Event; ev != nil {
		r.Event = &pb.LeaseEvent{Prefix: pbPrefix(ev.Prefix), Type: string(ev.Type), Iaid: ev.IAID, Duid: ev.DUID,
			From: ev.From, To: ev.To, ValidNs: int64(ev.Valid), PreferredNs: int64(ev.Preferred)}
	}
	if c.Env != nil {
		keys := c.Env.Keys()
		entries := make([]pb.Entry, len(keys))
		r.Env = make([]*pb.Entry, len(keys))
		for i, k := range keys {
			entries[i].Key, entries[i].Value = []byte(k), []byte(c.Env.Value(k))
			r.Env[i] = &entries[i]
		}
	}
	return r
}

func encodeReq(q *hooks.Request) *pb.Request {
	r := &pb.Request{MessageType: q.MessageType, TransactionId: q.TransactionID, ClientDuid: q.ClientDUID,
		Options: pbOptions(q.Options), SourceAddr: addrBytes(q.Source.Addr()), SourcePort: uint32(q.Source.Port()),
		Interface: q.Interface, Link: q.Link}
	r.Ias = make([]*pb.IA, len(q.IAs))
	for i := range q.IAs {
		r.Ias[i] = encodeIA(&q.IAs[i])
	}
	r.Relays = make([]*pb.Relay, len(q.Relays))
	for i, rl := range q.Relays {
		r.Relays[i] = &pb.Relay{HopCount: uint32(rl.HopCount), LinkAddress: addrBytes(rl.LinkAddress),
			PeerAddress: addrBytes(rl.PeerAddress), InterfaceId: rl.InterfaceID, RemoteId: rl.RemoteID,
			ClientLinkLayer: rl.ClientLinkLayer, Options: pbOptions(rl.Options)}
	}
	return r
}

// encodeResp serialises a response; withOptions says whether to include
// the server's options (hook6 → plugin) or only the edits (the answer).
func encodeResp(s *hooks.Response, withOptions bool) *pb.Response {
	r := &pb.Response{MessageType: s.MessageType, Preference: uint32(s.Preference), PreferenceSet: s.PreferenceSet,
		Add: pbOptions(s.Add), Remove: make([]uint32, len(s.Remove))}
	if withOptions {
		r.Options = pbOptions(s.Options)
	}
	for i, code := range s.Remove {
		r.Remove[i] = uint32(code)
	}
	return r
}

func encodeIA(ia *hooks.IA) *pb.IA {
	r := &pb.IA{Type: string(ia.Type), Iaid: ia.IAID, Hints: make([]*pb.Prefix, len(ia.Hints))}
	for i, h := range ia.Hints {
		r.Hints[i] = pbPrefix(h)
	}
	return r
}

func pbOptions(os []hooks.Option) []*pb.Option {
	if len(os) == 0 {
		return nil
	}
	vals := make([]pb.Option, len(os))
	r := make([]*pb.Option, len(os))
	for i, o := range os {
		vals[i].Code, vals[i].Data = uint32(o.Code), o.Data
		r[i] = &vals[i]
	}
	return r
}

func pbPrefix(p netip.Prefix) *pb.Prefix {
	if !p.IsValid() {
		return nil
	}
	return &pb.Prefix{Addr: p.Addr().AsSlice(), Bits: uint32(p.Bits())}
}

func addrBytes(a netip.Addr) []byte {
	if !a.IsValid() {
		return nil
	}
	return a.AsSlice()
}

// applyResponse applies the plugin's answer to c: environment changes,
// response edits, the lease chosen or refused. It applies what it can and
// reports every refusal; the point function's own error comes last.
func applyResponse(c *hooks.Context, r *pb.HandleResponse, log *slog.Logger) error {
	var errs []error
	for _, e := range r.EnvSet {
		if c.Env == nil {
			return garbage("environment set with no environment")
		}
		if err := c.Env.Set(string(e.Key), string(e.Value)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, k := range r.EnvDeleted {
		if err := c.Env.Delete(string(k)); err != nil {
			errs = append(errs, err)
		}
	}
	if r.Response != nil {
		errs = append(errs, applyResp(c, r.Response))
	}
	if r.Allocation != nil {
		errs = append(errs, applyAllocation(c, r.Allocation))
	}
	for _, rec := range r.Logs {
		emit(c.Ctx, log, rec)
	}
	if r.Error != "" {
		errs = append(errs, errors.New(r.Error))
	}
	return errors.Join(errs...)
}

func applyResp(c *hooks.Context, r *pb.Response) error {
	if c.Response == nil {
		return garbage("response edits at %s, which has no response", c.Point)
	}
	if r.Preference > 255 {
		return garbage("preference %d", r.Preference)
	}
	add, err := hookOptions(r.Add)
	if err != nil {
		return err
	}
	remove := make([]uint16, len(r.Remove))
	for i, code := range r.Remove {
		if code > 0xffff {
			return garbage("option code %d", code)
		}
		remove[i] = uint16(code)
	}
	s := c.Response
	s.Add, s.Remove = add, remove
	s.Preference, s.PreferenceSet = uint8(r.Preference), r.PreferenceSet
	return nil
}

func applyAllocation(c *hooks.Context, r *pb.Allocation) error {
	a := c.Allocation
	if a == nil {
		return garbage("allocation at %s, which has none", c.Point)
	}
	cand, err := hookPrefix(r.Candidate)
	if err != nil {
		return err
	}
	switch {
	case cand == a.Candidate:
	case c.Point == hooks.GenerateLease:
		if err := c.SetLease(cand); err != nil {
			return err
		}
	default:
		return garbage("candidate changed at %s", c.Point)
	}
	if c.Point == hooks.CheckLeaseAcceptable {
		a.Acceptable = r.Acceptable
	}
	return nil
}

func hookOptions(os []*pb.Option) ([]hooks.Option, error) {
	if len(os) == 0 {
		return nil, nil
	}
	r := make([]hooks.Option, len(os))
	for i, o := range os {
		if o.Code > 0xffff {
			return nil, garbage("option code %d", o.Code)
		}
		r[i] = hooks.Option{Code: uint16(o.Code), Data: o.Data}
	}
	return r, nil
}

func hookPrefix(p *pb.Prefix) (netip.Prefix, error) {
	if p == nil || len(p.Addr) == 0 {
		return netip.Prefix{}, nil
	}
	a, ok := netip.AddrFromSlice(p.Addr)
	if !ok || int(p.Bits) > a.BitLen() {
		return netip.Prefix{}, garbage("prefix %x/%d", p.Addr, p.Bits)
	}
	return netip.PrefixFrom(a, int(p.Bits)), nil
}

func hookAddr(b []byte) (netip.Addr, error) {
	if len(b) == 0 {
		return netip.Addr{}, nil
	}
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return a, garbage("address %x", b)
	}
	return a, nil
}

// emit logs a record the plugin made through c.Log.
func emit(ctx context.Context, log *slog.Logger, rec *pb.LogRecord) {
	if ctx == nil {
		ctx = context.Background()
	}
	level := slog.Level(rec.Level)
	if !log.Enabled(ctx, level) {
		return
	}
	args := make([]any, 0, len(rec.Attrs))
	for i := 0; i+1 < len(rec.Attrs); i += 2 {
		args = append(args, slog.String(rec.Attrs[i], rec.Attrs[i+1]))
	}
	log.Log(ctx, level, rec.Message, args...)
}

// decodeRequest rebuilds the Context a point function sees in the plugin.
func decodeRequest(ctx context.Context, r *pb.HandleRequest, log *slog.Logger) (*hooks.Context, error) {
	p, err := hooks.ParsePoint(r.Point)
	if err != nil {
		return nil, err
	}
	c := &hooks.Context{Point: p, Packet: r.Packet, Env: decodeEnv(r.Env), Log: log, Ctx: ctx}
	c.Env.AtPoint(p)
	if r.Request != nil {
		if c.Request, err = decodeReq(r.Request); err != nil {
			return nil, err
		}
	}
	if s := r.Response; s != nil {
		c.Response = &hooks.Response{MessageType: s.MessageType, Preference: uint8(s.Preference), PreferenceSet: s.PreferenceSet}
		c.Response.Options, _ = hookOptions(s.Options)
		c.Response.Add, _ = hookOptions(s.Add)
		for _, code := range s.Remove {
			c.Response.Remove = append(c.Response.Remove, uint16(code))
		}
	}
	if a := r.Allocation; a != nil {
		c.Allocation = &hooks.Allocation{PrefixName: a.PrefixName, Length: int(a.Length), Acceptable: a.Acceptable}
		if err := decodeIA(a.Ia, &c.Allocation.IA); err != nil {
			return nil, err
		}
		if c.Allocation.From, err = hookPrefix(a.From); err != nil {
			return nil, err
		}
		if c.Allocation.Candidate, err = hookPrefix(a.Candidate); err != nil {
			return nil, err
		}
	}
	if ev := r.Event; ev != nil {
		c.Event = &hooks.LeaseEvent{Type: hooks.IAType(ev.Type), IAID: ev.Iaid, DUID: ev.Duid, From: ev.From, To: ev.To,
			Valid: time.Duration(ev.ValidNs), Preferred: time.Duration(ev.PreferredNs)}
		if c.Event.Prefix, err = hookPrefix(ev.Prefix); err != nil {
			return nil, err
		}
	}
	return c, nil
}

var readOnly = func() map[string]bool {
	m := make(map[string]bool, len(hooks.ReadOnlyKeys))
	for _, k := range hooks.ReadOnlyKeys {
		m[k] = true
	}
	return m
}()

func decodeEnv(entries []*pb.Entry) *hooks.Env {
	env := hooks.NewEnv()
	for _, e := range entries {
		k, v := string(e.Key), string(e.Value)
		if readOnly[k] {
			env.SetServer(k, v)
		} else {
			_ = env.Set(k, v) // before AtPoint nothing is refused
		}
	}
	return env
}

func decodeReq(r *pb.Request) (*hooks.Request, error) {
	q := &hooks.Request{MessageType: r.MessageType, TransactionID: r.TransactionId, ClientDUID: r.ClientDuid,
		Interface: r.Interface, Link: r.Link}
	q.Options, _ = hookOptions(r.Options)
	src, err := hookAddr(r.SourceAddr)
	if err != nil {
		return nil, err
	}
	q.Source = netip.AddrPortFrom(src, uint16(r.SourcePort))
	q.IAs = make([]hooks.IA, len(r.Ias))
	for i, ia := range r.Ias {
		if err := decodeIA(ia, &q.IAs[i]); err != nil {
			return nil, err
		}
	}
	q.Relays = make([]hooks.Relay, len(r.Relays))
	for i, rl := range r.Relays {
		d := &q.Relays[i]
		d.HopCount, d.InterfaceID, d.RemoteID, d.ClientLinkLayer = uint8(rl.HopCount), rl.InterfaceId, rl.RemoteId, rl.ClientLinkLayer
		d.Options, _ = hookOptions(rl.Options)
		if d.LinkAddress, err = hookAddr(rl.LinkAddress); err != nil {
			return nil, err
		}
		if d.PeerAddress, err = hookAddr(rl.PeerAddress); err != nil {
			return nil, err
		}
	}
	return q, nil
}

func decodeIA(r *pb.IA, ia *hooks.IA) error {
	if r == nil {
		return nil
	}
	ia.Type, ia.IAID = hooks.IAType(r.Type), r.Iaid
	ia.Hints = make([]netip.Prefix, 0, len(r.Hints))
	for _, h := range r.Hints {
		p, err := hookPrefix(h)
		if err != nil {
			return err
		}
		ia.Hints = append(ia.Hints, p)
	}
	return nil
}

// encodeResponse serialises what the point function changed: env keys set
// or deleted relative to before, the response's edits, the allocation.
func encodeResponse(c *hooks.Context, before []*pb.Entry, callErr error, logs []*pb.LogRecord) *pb.HandleResponse {
	r := &pb.HandleResponse{Logs: logs}
	if callErr != nil {
		r.Error = strings.ToValidUTF8(callErr.Error(), "\uFFFD")
	}
	after := c.Env.Map()
	for _, e := range before {
		k := string(e.Key)
		v, ok := after[k]
		if !ok {
			r.EnvDeleted = append(r.EnvDeleted, e.Key)
		} else if v == string(e.Value) {
			delete(after, k)
		}
	}
	for _, k := range c.Env.Keys() { // sorted, so the answer is deterministic
		if v, ok := after[k]; ok {
			r.EnvSet = append(r.EnvSet, &pb.Entry{Key: []byte(k), Value: []byte(v)})
		}
	}
	if c.Response != nil {
		r.Response = encodeResp(c.Response, false)
	}
	if a := c.Allocation; a != nil {
		r.Allocation = &pb.Allocation{Candidate: pbPrefix(a.Candidate), Acceptable: a.Acceptable}
	}
	return r
}
